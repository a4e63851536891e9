"""Calendar periods in the org timezone, and the ``period`` table that KPI queries range-join.

Each period is kept both as local dates (for date-only fields such as a close date) and as naive-UTC
instants (for timestamps), so bucketing is a plain range join that runs alike on SQLite and PostgreSQL.
Quarters and years follow the fiscal year start month; weeks are ISO weeks (Monday start).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, Select, and_, case, delete, insert, literal, null, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import UTCDateTime

from agent.kpi.spec import PeriodWindow
from agent.models import Period

GRAINS = ("day", "week", "month", "quarter", "year")
PERIOD = Period.__table__


class PeriodError(ValueError):
    """A grain or date that periods cannot be made of."""


def _months_between_fiscal_start(month: int, fiscal_start_month: int) -> int:
    return (month - fiscal_start_month) % 12


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def period_start(grain: str, day: date, fiscal_start_month: int = 1) -> date:
    """The first local date of the ``grain`` period that contains ``day``."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    first_of_month = day.replace(day=1)
    if grain == "month":
        return first_of_month
    offset = _months_between_fiscal_start(day.month, fiscal_start_month)
    if grain == "quarter":
        return _add_months(first_of_month, -(offset % 3))
    if grain == "year":
        return _add_months(first_of_month, -offset)
    raise PeriodError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")


def shift(grain: str, start: date, count: int) -> date:
    """The start of the period ``count`` periods after the one starting at ``start`` (negative: before)."""
    if grain == "day":
        return start + timedelta(days=count)
    if grain == "week":
        return start + timedelta(weeks=count)
    months = {"month": 1, "quarter": 3, "year": 12}.get(grain)
    if months is None:
        raise PeriodError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    return _add_months(start, months * count)


def local_midnight_utc(day: date, timezone: str) -> datetime:
    """The instant (aware, UTC) at which local ``day`` begins in ``timezone``."""
    local = datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


def to_local(instant_utc: datetime, timezone: str) -> datetime:
    aware = instant_utc if instant_utc.tzinfo else instant_utc.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(timezone))


def to_utc(instant: datetime, timezone: str) -> datetime:
    """An aware UTC instant from an aware datetime, or from a naive one meant as local time."""
    aware = instant if instant.tzinfo else instant.replace(tzinfo=ZoneInfo(timezone))
    return aware.astimezone(UTC)


def window(grain: str, start: date, timezone: str) -> PeriodWindow:
    end = shift(grain, start, 1)
    return PeriodWindow(start, end, local_midnight_utc(start, timezone), local_midnight_utc(end, timezone))


def instant_of(at: date | datetime | None, timezone: str) -> datetime:
    """The computation instant, aware UTC: now; a datetime as given (naive: UTC); a date: the end of
    that local day (its whole day has happened)."""
    if at is None:
        return datetime.now(UTC)
    if isinstance(at, datetime):
        return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return local_midnight_utc(at + timedelta(days=1), timezone)


def local_day_of(instant_utc: datetime, timezone: str) -> date:
    """The local date an instant belongs to; an instant at local midnight closes the day before, as the
    end of a date ``--at`` does."""
    local = to_local(instant_utc, timezone)
    return local.date() - timedelta(days=1) if local.time() == time(0) else local.date()


def elapsed_days(period: PeriodWindow, now_utc: datetime, timezone: str) -> int:
    """Local days of ``period`` touched by ``now`` (today counts): the span growth compares."""
    day = local_day_of(now_utc, timezone)
    return max(0, min((day - period.start_date).days + 1, (period.end_date - period.start_date).days))


def history(grain: str, running_start: date, count: int, timezone: str) -> list[PeriodWindow]:
    """``count`` periods ending with the running one, oldest first."""
    return [window(grain, shift(grain, running_start, -back), timezone) for back in range(count - 1, -1, -1)]


def ensure_periods(
    connection: Connection, grain: str, starts: Iterable[date], timezone: str, fiscal_start_month: int
) -> int:
    """Make the ``period`` table hold exactly these periods for the org's timezone and fiscal start;
    rows built for another timezone are replaced.  Returns how many rows were written."""
    wanted = {start: window(grain, start, timezone) for start in starts}
    if not wanted:
        return 0
    existing = connection.execute(
        select(PERIOD.c.start_date, PERIOD.c.end_date, PERIOD.c.timezone, PERIOD.c.fiscal_start_month).where(
            PERIOD.c.grain == grain, PERIOD.c.start_date.in_(list(wanted))
        )
    ).all()
    stale = [
        row.start_date
        for row in existing
        if (row.timezone, row.fiscal_start_month, row.end_date)
        != (timezone, fiscal_start_month, wanted[row.start_date].end_date)
    ]
    present = {row.start_date for row in existing} - set(stale)
    if stale:
        connection.execute(delete(PERIOD).where(PERIOD.c.grain == grain, PERIOD.c.start_date.in_(stale)))
    rows = [
        {
            "grain": grain,
            "start_date": period.start_date,
            "end_date": period.end_date,
            "start_utc": period.start_utc,
            "end_utc": period.end_utc,
            "timezone": timezone,
            "fiscal_start_month": fiscal_start_month,
        }
        for start, period in wanted.items()
        if start not in present
    ]
    if rows:
        connection.execute(insert(PERIOD), rows)
    return len(rows)


def windows_select(grain: str, starts: Sequence[date]) -> Select:
    """The ``period`` rows of ``starts`` with the following period's dates (for "next period" KPIs)."""
    following = PERIOD.alias("following")
    return (
        select(
            PERIOD.c.start_date.label("period_start"),
            PERIOD.c.start_date,
            PERIOD.c.end_date,
            PERIOD.c.start_utc,
            PERIOD.c.end_utc,
            following.c.start_date.label("next_start_date"),
            following.c.end_date.label("next_end_date"),
        )
        .select_from(
            PERIOD.outerjoin(
                following, and_(following.c.grain == PERIOD.c.grain, following.c.start_date == PERIOD.c.end_date)
            )
        )
        .where(PERIOD.c.grain == grain, PERIOD.c.start_date.in_(list(starts)))
    )


def literal_windows(labelled: Sequence[tuple[date, PeriodWindow]]) -> Select:
    """Windows that are not calendar periods (a truncated previous period), labelled with the period
    they stand for; same columns as :func:`windows_select` (without the next period)."""
    selects = [
        select(
            literal(label, Date()).label("period_start"),
            literal(period.start_date, Date()).label("start_date"),
            literal(period.end_date, Date()).label("end_date"),
            literal(period.start_utc, UTCDateTime()).label("start_utc"),
            literal(period.end_utc, UTCDateTime()).label("end_utc"),
        )
        for label, period in labelled
    ]
    return selects[0] if len(selects) == 1 else union_all(*selects)  # type: ignore[return-value]


def previous_windows(
    grain: str, periods: Sequence[PeriodWindow], running: PeriodWindow, now_utc: datetime, timezone: str
) -> list[tuple[date, PeriodWindow]]:
    """For each period, the window of the one before it — truncated to the elapsed span for the running
    period, as the catalog's growth convention asks."""
    labelled = []
    for period in periods:
        before = window(grain, shift(grain, period.start_date, -1), timezone)
        if period == running:
            days = elapsed_days(period, now_utc, timezone)
            end = min(before.start_date + timedelta(days=days), before.end_date)
            before = PeriodWindow(before.start_date, end, before.start_utc, local_midnight_utc(end, timezone))
        labelled.append((period.start_date, before))
    return labelled


Bound = date | datetime
LabelledSpan = tuple[date, Bound, Bound]
"""A window as (the period it stands for, first value in it, first value after it)."""

_FLAT_CASE = 4
"""Windows a CASE tests one after the other; more are split in halves (a day grain has hundreds)."""


def spans(labelled: Sequence[tuple[date, PeriodWindow]], kind: str) -> list[LabelledSpan]:
    """Windows as spans of a time column: local dates for a date-only column, UTC instants otherwise."""
    if kind == "date":
        return [(label, period.start_date, period.end_date) for label, period in labelled]
    return [(label, period.start_utc, period.end_utc) for label, period in labelled]


def disjoint(windows: Sequence[LabelledSpan]) -> bool:
    ordered = sorted(windows, key=lambda span: span[1])
    # Each window with the next: ordered[1:] is one shorter on purpose, hence strict=False.
    return all(before[2] <= after[1] for before, after in zip(ordered, ordered[1:], strict=False))


def bucket(column: ColumnElement[Any], windows: Sequence[LabelledSpan], kind: str) -> ColumnElement[Any]:
    """The period a value of ``column`` falls in, as a scalar expression over the row itself.

    A range join against the ``period`` table makes the planner loop over the periods and scan the
    table once per period (SQLite) or nest-loop it (PostgreSQL); one expression per row lets it read
    the table once, through an index on the column when the range is narrow.  The windows must be
    disjoint; values in none of them give null (the caller's WHERE keeps only :func:`within` rows)."""
    ordered = sorted(windows, key=lambda span: span[1])
    bound_type = _bound_type(kind)
    return _bucket(column, ordered, bound_type)


def _bucket(column: ColumnElement[Any], ordered: Sequence[LabelledSpan], bound_type: Any) -> ColumnElement[Any]:
    if len(ordered) > _FLAT_CASE:
        middle = len(ordered) // 2
        lower, upper = _bucket(column, ordered[:middle], bound_type), _bucket(column, ordered[middle:], bound_type)
        return case((column < literal(ordered[middle][1], bound_type), lower), else_=upper)
    # The first window's start needs no test (the WHERE or the enclosing CASE has made it), nor does
    # the start of a window that follows the previous one without a gap.
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    previous_end: Bound | None = ordered[0][1] if ordered else None
    for label, start, end in ordered:
        if start != previous_end:
            whens.append((column < literal(start, bound_type), null()))
        whens.append((column < literal(end, bound_type), literal(label, Date())))
        previous_end = end
    return case(*whens, else_=null()) if whens else null()


def within(column: ColumnElement[Any], windows: Sequence[LabelledSpan], kind: str) -> ColumnElement[bool]:
    """``column`` in one of the windows, as index-friendly ranges (adjacent windows merged: a year of
    months is one range)."""
    bound_type = _bound_type(kind)
    merged: list[list[Bound]] = []
    for _, start, end in sorted(windows, key=lambda span: span[1]):
        if merged and merged[-1][1] >= start:
            merged[-1][1] = max(merged[-1][1], end)  # type: ignore[type-var]
        else:
            merged.append([start, end])
    ranges = [and_(column >= literal(start, bound_type), column < literal(end, bound_type)) for start, end in merged]
    return ranges[0] if len(ranges) == 1 else or_(*ranges)


def _bound_type(kind: str) -> Any:
    # The period table's own column types: bounds are written exactly as the range join compared them.
    return PERIOD.c.start_date.type if kind == "date" else PERIOD.c.start_utc.type
