"""HubSpot property values (always strings on the wire) turned into Python values.

A value that cannot be read raises :class:`BadRecord` naming the property, so the record is quarantined
with that reason while the rest of its page lands.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?$")


class BadRecord(ValueError):
    """A record that cannot be normalized; the message is the quarantine reason."""


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_instant(value: object, what: str) -> datetime | None:
    """An instant as HubSpot sends it (ISO 8601 with Z, or epoch milliseconds) as an aware UTC datetime."""
    if is_blank(value):
        return None
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BadRecord(f"{what} {text!r} is not a date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def local_date(value: object, timezone: ZoneInfo, what: str) -> date | None:
    """A date-like HubSpot datetime (closedate) as the local date in the org timezone.

    HubSpot stores date-only values as midnight UTC: that instant means its own calendar date, whatever
    the timezone (converting it would move every close date west of UTC back a day). Any other instant
    is a real moment and is read in the org timezone.
    """
    instant = parse_instant(value, what)
    if instant is None:
        return None
    if instant.time() == time(0, 0):
        return instant.date()
    return instant.astimezone(timezone).date()


def parse_number(value: object, what: str) -> float | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise BadRecord(f"{what} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise BadRecord(f"{what} {text!r} is not a finite number")
    return number


def parse_bool(value: object) -> bool:
    return str(value).strip().lower() == "true" if value is not None else False


def text_or_none(value: object, limit: int | None = None) -> str | None:
    if is_blank(value):
        return None
    text = str(value).strip()
    return text[:limit] if limit else text


def probability(value: object, what: str) -> float | None:
    """A probability 0–1; a value above 1 is read as a percentage (some portals store 0–100)."""
    number = parse_number(value, what)
    if number is None:
        return None
    if number > 1.0:
        number /= 100.0
    if not 0.0 <= number <= 1.0:
        raise BadRecord(f"{what} {value!r} is not a probability between 0 and 1")
    return number


def duration_months(value: object) -> int | None:
    """An ISO 8601 period such as 'P12M' or 'P1Y' (hs_recurring_billing_period) in whole months."""
    if is_blank(value):
        return None
    match = _DURATION.match(str(value).strip().upper())
    if match is None:
        return None
    years, months = int(match["years"] or 0), int(match["months"] or 0)
    days = int(match["days"] or 0) + 7 * int(match["weeks"] or 0)
    total = years * 12 + months + round(days / 30)
    return total or None


def epoch_ms(moment: datetime) -> int:
    # Integer arithmetic: float seconds * 1000 can land one millisecond short.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
