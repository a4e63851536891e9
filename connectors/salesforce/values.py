"""Salesforce values as the cache wants them, and SOQL literals that are safe to paste.

REST answers typed JSON (numbers, booleans, ``"2024-01-05T10:11:12.000+0000"``); Bulk API 2.0 answers CSV
where every value is a string and an empty one is null.  The readers here accept both, and raise
:class:`BadValue` (which quarantines the record) for what cannot be read.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo


class BadValue(ValueError):
    """A field value that cannot be read: the record is quarantined with this reason."""


_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_SOQL_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
                 "\f": "\\f"}


def soql_string(value: str) -> str:
    """A SOQL string literal: quotes and backslashes escaped as the SOQL reference says, so a value can
    never end the literal early (the SOQL injection that ``'`` in a filter value would otherwise allow)."""
    return "'" + "".join(_SOQL_ESCAPES.get(char, char) for char in str(value)) + "'"


def soql_id(value: str) -> str:
    """An id literal; anything that is not 15 or 18 alphanumerics is refused rather than quoted."""
    if not _ID.match(value or ""):
        raise ValueError(f"{value!r} is not a Salesforce id (15 or 18 letters and digits)")
    return f"'{value}'"


def soql_datetime(moment: datetime) -> str:
    """A datetime literal (unquoted, UTC, milliseconds): 2024-01-05T10:11:12.000Z."""
    if moment.tzinfo is None:
        raise ValueError("a SOQL datetime literal needs an aware datetime")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def soql_list(values: list[str], literal: Any = soql_string) -> str:
    return "(" + ", ".join(literal(value) for value in values) + ")"


def text(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value)
    return value if value != "" else None


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, ""):
        return False
    lowered = str(value).strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadValue(f"{value!r} is not a boolean")


def number(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(f"{field} {value!r} is not a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BadValue(f"{field} {value!r} is not a number") from None
    if math.isnan(result) or math.isinf(result):
        raise BadValue(f"{field} {value!r} is not a finite number")
    return result


def integer(value: Any, field: str) -> int | None:
    result = number(value, field)
    return None if result is None else int(result)


def instant(value: Any, field: str) -> datetime | None:
    """A Salesforce datetime (``...+0000``, ``...Z``) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise BadValue(f"{field} {value!r} is not a date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day(value: Any, field: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise BadValue(f"{field} {value!r} is not a date") from None


def local_midnight(value: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(value, time.min, zone).astimezone(UTC)


def local_day_end(value: date, zone: ZoneInfo) -> datetime:
    """The first instant after ``value``'s local day (a date covers ``[d 00:00, d+1 00:00)``)."""
    return local_midnight(value + timedelta(days=1), zone)


def related(record: dict[str, Any], path: str) -> Any:
    """``Owner.Email`` of a REST record (nested objects) or of a CSV row (flat ``Owner.Email`` key)."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
