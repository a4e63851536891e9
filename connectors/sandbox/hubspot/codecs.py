"""How a neutral world value becomes the string HubSpot sends, and how a filter value goes back.

Every HubSpot property value on the wire is a string (or null): numbers as "1500" or "1500.5", booleans as
"true"/"false", instants as millisecond ISO 8601 in UTC ("2026-03-04T09:15:00.000Z"). A filter value in a
search request comes the other way: a string that must be compared with the stored column, so each codec
also turns it into the stored value(s) the SQL compares against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any


class FilterValueError(ValueError):
    """A filter value that cannot be compared with the property (HubSpot answers 400)."""


def format_number(value: Any) -> str | None:
    """A number the way HubSpot writes it: integral values without a decimal point."""
    if value is None or value == "":
        return None
    number = float(value)
    if math.isfinite(number) and number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def format_instant(value: Any) -> str | None:
    """Any stored instant or date as HubSpot's millisecond UTC ISO string."""
    if value is None or value == "":
        return None
    parsed = parse_instant(str(value))
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> datetime:
    """A stored or sent instant: ISO 8601 (with or without time, fraction, zone) or epoch milliseconds."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch_ms(value: Any) -> int | None:
    """A stored instant as epoch milliseconds (for history timestamps and comparisons in tests)."""
    if value is None or value == "":
        return None
    return int(parse_instant(str(value)).timestamp() * 1000)


@dataclass(frozen=True)
class Codec:
    """Plain text: the stored value is the HubSpot value; text comparisons ignore case, as HubSpot's do."""

    case_insensitive: bool = True

    def to_hubspot(self, stored: Any) -> str | None:
        if stored is None:
            return None
        return str(stored)

    def stored_values(self, value: str) -> list[Any]:
        """The stored values a HubSpot value stands for (EQ / IN compare against all of them)."""
        return [value]

    def stored_scalar(self, value: str) -> Any:
        """The stored value to compare with for LT, GT, BETWEEN and sorting-order comparisons."""
        return value


@dataclass(frozen=True)
class NumberCodec(Codec):
    case_insensitive: bool = False
    scale: float = 1.0  # stored * scale = HubSpot value (e.g. seconds -> milliseconds)

    def to_hubspot(self, stored: Any) -> str | None:
        if stored is None or stored == "":
            return None
        return format_number(float(stored) * self.scale)

    def stored_values(self, value: str) -> list[Any]:
        return [self.stored_scalar(value)]

    def stored_scalar(self, value: str) -> Any:
        try:
            return float(value) / self.scale
        except (TypeError, ValueError) as error:
            raise FilterValueError(f"{value!r} is not a number") from error


@dataclass(frozen=True)
class InstantCodec(Codec):
    """Stored ISO instants (the world's own millisecond format) compared as strings, which sort in time."""

    case_insensitive: bool = False

    def to_hubspot(self, stored: Any) -> str | None:
        return format_instant(stored)

    def stored_values(self, value: str) -> list[Any]:
        return [self.stored_scalar(value)]

    def stored_scalar(self, value: str) -> Any:
        try:
            return format_instant(value)
        except (TypeError, ValueError) as error:
            raise FilterValueError(f"{value!r} is not a date: send epoch milliseconds or ISO 8601") from error


@dataclass(frozen=True)
class BoolCodec(Codec):
    case_insensitive: bool = False

    def to_hubspot(self, stored: Any) -> str | None:
        if stored is None:
            return None
        return "true" if int(stored) else "false"

    def stored_values(self, value: str) -> list[Any]:
        return [self.stored_scalar(value)]

    def stored_scalar(self, value: str) -> Any:
        lowered = str(value).strip().lower()
        if lowered not in ("true", "false"):
            raise FilterValueError(f"{value!r} is not a boolean: send true or false")
        return 1 if lowered == "true" else 0


@dataclass(frozen=True)
class IdCodec(Codec):
    """A world id shown as a HubSpot numeric id: `base + id` (owners, companies, products...)."""

    base: int = 0
    case_insensitive: bool = False

    def to_hubspot(self, stored: Any) -> str | None:
        if stored is None or stored == "":
            return None
        return str(self.base + int(stored))

    def stored_values(self, value: str) -> list[Any]:
        return [self.stored_scalar(value)]

    def stored_scalar(self, value: str) -> Any:
        try:
            return int(str(value).strip()) - self.base
        except ValueError as error:
            raise FilterValueError(f"{value!r} is not a numeric id") from error


@dataclass(frozen=True)
class EnumCodec(Codec):
    """Neutral values mapped onto HubSpot's internal option values; values not in the map pass through.

    The map may be many-to-one (upsell and cross_sell are both `existingbusiness`), so a filter value
    stands for every stored value that maps onto it. Matching ignores case on the stored side.
    """

    mapping: Mapping[str, str] = field(default_factory=dict)  # stored (lower-cased) -> HubSpot value
    passthrough: bool = True

    def to_hubspot(self, stored: Any) -> str | None:
        if stored is None or stored == "":
            return None
        mapped = self.mapping.get(str(stored).lower())
        if mapped is not None:
            return mapped
        return str(stored) if self.passthrough else None

    def stored_values(self, value: str) -> list[Any]:
        wanted = str(value).lower()
        matches = [stored for stored, shown in self.mapping.items() if shown.lower() == wanted]
        if self.passthrough and wanted not in self.mapping:
            matches.append(wanted)
        return matches

    def stored_scalar(self, value: str) -> Any:
        values = self.stored_values(value)
        return values[0] if values else str(value).lower()


@dataclass(frozen=True)
class KeyCodec(Codec):
    """World ids (stage_id, pipeline_id) shown as HubSpot's string ids from a fixed map."""

    mapping: Mapping[int, str] = field(default_factory=dict)  # world id -> HubSpot id
    case_insensitive: bool = False

    def to_hubspot(self, stored: Any) -> str | None:
        if stored is None or stored == "":
            return None
        return self.mapping.get(int(stored), str(stored))

    def stored_values(self, value: str) -> list[Any]:
        return [key for key, shown in self.mapping.items() if shown == str(value)]

    def stored_scalar(self, value: str) -> Any:
        values = self.stored_values(value)
        return values[0] if values else -1
