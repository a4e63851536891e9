"""The few SQL expressions that SQLite and PostgreSQL spell differently, as SQLAlchemy constructs.

SQLite keeps datetimes as text (``YYYY-MM-DD HH:MM:SS.ffffff``, as SQLAlchemy writes them) and dates as
``YYYY-MM-DD``; its date functions take and return text, so results are formatted back into the same
shape so that comparisons with stored values stay exact.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Date, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlmodel.sql.sqltypes import UTCDateTime


class days_between(FunctionElement[float]):  # noqa: N801 - reads like the SQL function it is
    """``later − earlier`` in days (fractional for datetimes); both dates or both datetimes."""

    type = Float()
    inherit_cache = True


class minutes_between(FunctionElement[float]):  # noqa: N801
    """``later − earlier`` in minutes, for two datetimes."""

    type = Float()
    inherit_cache = True


class add_days(FunctionElement[Any]):  # noqa: N801
    """A datetime plus a (literal, integer) number of days."""

    type = UTCDateTime()
    inherit_cache = True


class add_months(FunctionElement[Any]):  # noqa: N801
    """A date plus a (literal, integer) number of months."""

    type = Date()
    inherit_cache = True


class least_of(FunctionElement[Any]):  # noqa: N801
    """The smallest non-null argument (PostgreSQL ``LEAST``); null only when all are null."""

    inherit_cache = True


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(argument, **kw) for argument in element.clauses]


def _literal_int(element: FunctionElement[Any]) -> int:
    value = list(element.clauses)[1]
    return int(value.value)  # type: ignore[attr-defined]


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    # julianday() is a double of ~2.46e6 days: round to milliseconds to drop its float noise.
    return f"(round((julianday({later}) - julianday({earlier})) * 86400000.0) / 86400000.0)"


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    # date - date is an integer; timestamp - timestamp an interval: epoch seconds covers both once cast.
    return f"(EXTRACT(EPOCH FROM (CAST({later} AS TIMESTAMP) - CAST({earlier} AS TIMESTAMP))) / 86400.0)"


@compiles(minutes_between, "sqlite")
def _minutes_between_sqlite(element: minutes_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    return f"(round((julianday({later}) - julianday({earlier})) * 86400000.0) / 60000.0)"


@compiles(minutes_between, "postgresql")
def _minutes_between_pg(element: minutes_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 60.0)"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    instant = compiler.process(list(element.clauses)[0], **kw)
    days = _literal_int(element)
    # %f gives seconds with milliseconds; pad to the microseconds SQLAlchemy stores.
    return f"(strftime('%Y-%m-%d %H:%M:%f', {instant}, '{days:+d} days') || '000')"


@compiles(add_days, "postgresql")
def _add_days_pg(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    instant = compiler.process(list(element.clauses)[0], **kw)
    return f"({instant} + INTERVAL '{_literal_int(element)} days')"


@compiles(add_months, "sqlite")
def _add_months_sqlite(element: add_months, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(list(element.clauses)[0], **kw)
    return f"date({day}, '{_literal_int(element):+d} months')"


@compiles(add_months, "postgresql")
def _add_months_pg(element: add_months, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(list(element.clauses)[0], **kw)
    return f"CAST({day} + INTERVAL '{_literal_int(element)} months' AS DATE)"


@compiles(least_of, "sqlite")
def _least_sqlite(element: least_of, compiler: SQLCompiler, **kw: Any) -> str:
    arguments = _args(element, compiler, **kw)
    # SQLite's min(a, b) is null when any argument is; rotate coalesce so each slot falls back.
    rotated = [", ".join(arguments[i:] + arguments[:i]) for i in range(len(arguments))]
    return "min(" + ", ".join(f"coalesce({names})" for names in rotated) + ")"


@compiles(least_of, "postgresql")
def _least_pg(element: least_of, compiler: SQLCompiler, **kw: Any) -> str:
    return "LEAST(" + ", ".join(_args(element, compiler, **kw)) + ")"


def as_number(condition: ColumnElement[bool]) -> ColumnElement[float]:
    """1 where ``condition`` holds, else 0 (PostgreSQL cannot sum booleans)."""
    from sqlalchemy import case, literal

    return case((condition, literal(1)), else_=literal(0))


class sequential(FunctionElement[Any]):  # noqa: N801
    """A column that SQLite must not look up through an index (``+column``; the value is unchanged).

    SQLite has no estimate of how many rows a range keeps (it assumes few), so for a year of periods
    it reads most of a table through an index on the time column, a random row lookup each, several
    times slower than one sequential pass; and a pass that rejects rows out of the range early is
    cheap even when the range is narrow.  PostgreSQL has histograms and judges for itself."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type  # compared as the column is: bounds get its bind processing


@compiles(sequential)
def _sequential_default(element: sequential, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(sequential, "sqlite")
def _sequential_sqlite(element: sequential, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(+{compiler.process(list(element.clauses)[0], **kw)})"


class row_filter(FunctionElement[bool]):  # noqa: N801
    """A condition tested row by row that SQLite must not plan index lookups from.

    An OR of every measure's filters (calls, emails, meetings, ...) keeps most of a table, yet each
    branch names an indexed ``kind``, so SQLite answers it with a multi-index OR: a lookup per row, twice
    as slow as one pass.  Wrapped in a CASE it is only a filter.  PostgreSQL costs an OR itself."""

    type = Boolean()
    inherit_cache = True


@compiles(row_filter)
def _row_filter_default(element: row_filter, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(list(element.clauses)[0], **kw)})"


@compiles(row_filter, "sqlite")
def _row_filter_sqlite(element: row_filter, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(CASE WHEN {compiler.process(list(element.clauses)[0], **kw)} THEN 1 ELSE 0 END = 1)"
