"""Rendering world values in Salesforce's wire formats, and SOQL date literals as instants.

World instants are ISO 8601 UTC strings with milliseconds (`2026-03-04T09:15:00.000Z`); Salesforce writes
`2026-03-04T09:15:00.000+0000`. SOQL datetime literals (`2026-01-01T00:00:00Z`, `...+02:00`) become world
instants, so a filter on `SystemModstamp` is a plain string comparison on the indexed `updated_at` column.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .ids import make_id


def parse_instant(text: str) -> datetime:
    """A world or SOQL instant as an aware UTC datetime."""
    value = text.strip().replace(" ", "T")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) >= 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]  # +0000 -> +00:00
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def world_instant(moment: datetime) -> str:
    """The world's text form of an instant (what `updated_at` holds)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def salesforce_datetime(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) == 10:  # a date where a datetime is expected: midnight UTC
        text += "T00:00:00Z"
    moment = parse_instant(text)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def salesforce_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:10]


def render(field_type: str, value: Any, reference_prefix: str | None = None) -> Any:
    """One field value as Salesforce's JSON has it."""
    if field_type == "boolean":
        return bool(value) if value is not None else False
    if value is None:
        return None
    if field_type in ("id", "reference"):
        if isinstance(value, str) and ":" in value:  # polymorphic lookup: "PREFIX:number"
            prefix, number = value.split(":", 1)
            return make_id(prefix, int(number))
        return make_id(reference_prefix or "000", int(value))
    if field_type == "datetime":
        return salesforce_datetime(value)
    if field_type == "date":
        return salesforce_date(value)
    if field_type in ("currency", "double", "percent"):
        return float(value)
    if field_type == "int":
        return int(value)
    return value if isinstance(value, str) else str(value)


def csv_text(value: Any) -> str:
    """A rendered value in Bulk API 2.0 CSV: booleans lower-case, nulls empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ----------------------------------------------------------------------------------- date literals

def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def _week_start(day: date) -> date:
    # Salesforce weeks start on Sunday in the default (en_US) locale
    return day - timedelta(days=(day.weekday() + 1) % 7)


def date_literal_range(name: str, number: int | None, today: date) -> tuple[date, date]:
    """[start, end) in org-local dates for a SOQL date literal such as TODAY or LAST_N_DAYS:30.

    Raises KeyError for literal names outside the sandbox's subset (fiscal periods).
    """
    n = number or 0
    simple: dict[str, tuple[date, date]] = {
        "TODAY": (today, today + timedelta(days=1)),
        "YESTERDAY": (today - timedelta(days=1), today),
        "TOMORROW": (today + timedelta(days=1), today + timedelta(days=2)),
        "LAST_WEEK": (_week_start(today) - timedelta(days=7), _week_start(today)),
        "THIS_WEEK": (_week_start(today), _week_start(today) + timedelta(days=7)),
        "NEXT_WEEK": (_week_start(today) + timedelta(days=7), _week_start(today) + timedelta(days=14)),
        "LAST_MONTH": (_add_months(today, -1), _add_months(today, 0)),
        "THIS_MONTH": (_add_months(today, 0), _add_months(today, 1)),
        "NEXT_MONTH": (_add_months(today, 1), _add_months(today, 2)),
        "LAST_90_DAYS": (today - timedelta(days=90), today + timedelta(days=1)),
        "NEXT_90_DAYS": (today + timedelta(days=1), today + timedelta(days=91)),
        "THIS_QUARTER": (_quarter_start(today), _add_months(_quarter_start(today), 3)),
        "LAST_QUARTER": (_add_months(_quarter_start(today), -3), _quarter_start(today)),
        "NEXT_QUARTER": (_add_months(_quarter_start(today), 3), _add_months(_quarter_start(today), 6)),
        "THIS_YEAR": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
        "LAST_N_DAYS": (today - timedelta(days=n), today + timedelta(days=1)),
        "NEXT_N_DAYS": (today + timedelta(days=1), today + timedelta(days=n + 1)),
        "N_DAYS_AGO": (today - timedelta(days=n), today - timedelta(days=n - 1)),
        "LAST_N_WEEKS": (_week_start(today) - timedelta(days=7 * n), _week_start(today)),
        "NEXT_N_WEEKS": (_week_start(today) + timedelta(days=7), _week_start(today) + timedelta(days=7 * (n + 1))),
        "N_WEEKS_AGO": (_week_start(today) - timedelta(days=7 * n), _week_start(today) - timedelta(days=7 * (n - 1))),
        "LAST_N_MONTHS": (_add_months(today, -n), _add_months(today, 0)),
        "NEXT_N_MONTHS": (_add_months(today, 1), _add_months(today, n + 1)),
        "N_MONTHS_AGO": (_add_months(today, -n), _add_months(today, -n + 1)),
        "LAST_N_QUARTERS": (_add_months(_quarter_start(today), -3 * n), _quarter_start(today)),
        "NEXT_N_QUARTERS": (_add_months(_quarter_start(today), 3), _add_months(_quarter_start(today), 3 * (n + 1))),
        "N_QUARTERS_AGO": (_add_months(_quarter_start(today), -3 * n),
                           _add_months(_quarter_start(today), -3 * (n - 1))),
        "LAST_N_YEARS": (date(today.year - n, 1, 1), date(today.year, 1, 1)),
        "NEXT_N_YEARS": (date(today.year + 1, 1, 1), date(today.year + n + 1, 1, 1)),
        "N_YEARS_AGO": (date(today.year - n, 1, 1), date(today.year - n + 1, 1, 1)),
    }
    return simple[name]


def local_midnight_instant(day: date, zone: ZoneInfo) -> str:
    """The world instant of midnight starting `day` in the org's time zone."""
    return world_instant(datetime(day.year, day.month, day.day, tzinfo=zone))
