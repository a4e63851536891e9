"""KPI definitions: the frozen dataclasses a plugin passes to ``register``.

A KPI says *what* it measures; the engine decides *how* to run it.  Most KPIs are declarative:

- :class:`Aggregate` — a sum or count over a cache *source* (see :mod:`agent.kpi.sources`), attributed
  to a period by one of the source's time columns (``at``);
- :class:`AsOf` — a sum or count over a state as it stood at the period's start or end (open
  pipeline, active contracts);
- :class:`Previous` — an aggregate over the previous period (the same elapsed span for the running one);
- :class:`Ratio` — ``numerator ÷ denominator × scale`` of two of the above;
- :class:`Formula` — any function of several measures, evaluated per scope after roll-up;
- :class:`Derived` — a function of other KPIs' numbers (retention from churn, ARR from MRR).

What the declarative forms cannot say goes in a :class:`Custom` measure: a function of the
:class:`KpiContext` that returns a SQLAlchemy ``Select`` (or rows).

Every measure is additive over reps: the engine computes it per period × rep (× dimension) in one grouped
query per source, time column and grain, then rolls reps up to teams and the org by summing, and only
then divides.  So a team's win rate is Σwon ÷ Σclosed of its reps, never the mean of their rates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, FromClause
    from sqlalchemy.engine import Connection

    from agent.config import AgentConfig

SCOPES: tuple[str, ...] = ("org", "team", "rep", "unassigned")
"""Where a KPI value can be: the whole org, a team, a rep, and the records owned by no rep."""

DIMENSIONS: tuple[str, ...] = ("lead_source", "region", "pipeline", "crm", "deal_type", "product", "stage")
"""What a KPI can be sliced by; each source says which of these it supports."""

NO_VALUE = "(none)"
"""The dimension value of records that have none (a deal without lead source)."""

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,79}$")


class Unit(StrEnum):
    MONEY = "money"
    COUNT = "count"
    PERCENT = "%"
    RATIO = "ratio"
    DAYS = "days"
    MINUTES = "minutes"


class Direction(StrEnum):
    """Whether a higher value is better (``UP``) or a lower one (``DOWN``); goals and nudges use it."""

    UP = "up"
    DOWN = "down"


class _Now:
    """Stands for the computation instant in a :class:`Condition` (e.g. meetings held *by now*)."""

    def __repr__(self) -> str:
        return "NOW"


NOW = _Now()

Operator = Literal["=", "!=", "in", "not in", "is null", "is not null", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Condition:
    """A filter on one column of a source: ``column op value``; ``value`` may be :data:`NOW`."""

    column: str
    op: Operator
    value: Any = None


def eq(column: str, value: Any) -> Condition:
    return Condition(column, "=", value)


def ne(column: str, value: Any) -> Condition:
    return Condition(column, "!=", value)


def isin(column: str, values: Iterable[Any]) -> Condition:
    return Condition(column, "in", tuple(values))


def not_null(column: str) -> Condition:
    return Condition(column, "is not null")


@dataclass(frozen=True)
class Aggregate:
    """Σ ``value`` (or a count of rows when ``value`` is None) over the rows of ``source`` that match
    ``where``, in the period their ``at`` time column falls in.

    ``at`` is None only for sources that carry their own period (``costs``, ``customers``) or none at
    all (``reps``, counted in every period).
    """

    source: str
    value: str | None = None
    where: tuple[Condition, ...] = ()
    at: str | None = None


@dataclass(frozen=True)
class AsOf:
    """Σ ``value`` (or a count) over a state source as it stood at the period's ``instant``."""

    source: str
    instant: Literal["start", "end"] = "end"
    value: str | None = None
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Previous:
    """``measure`` over the previous period; for the running period, over the same number of elapsed
    days at the start of the previous one (so growth compares like with like)."""

    measure: Aggregate


@dataclass(frozen=True)
class Custom:
    """An imperative measure.  ``function(ctx)`` returns a SQLAlchemy ``Select`` or an iterable of
    mappings with the columns:

    - ``rollup=True`` (rep grain, summed up by the engine): ``period_start``, ``rep_id``, optionally
      ``team_id`` (for records owned by a team, not a rep) and ``dimension_value``, and ``column``;
    - ``rollup=False`` (already per scope): ``period_start``, ``scope_kind``, ``scope_id``, optionally
      ``dimension_value``, and ``column``.

    Measures with the same ``name`` and ``function`` share one call (name several columns of one query).
    """

    name: str
    function: Callable[[KpiContext], Any] = field(compare=True)
    column: str = "value"
    rollup: bool = True


Measure = Aggregate | AsOf | Previous | Custom


@dataclass(frozen=True)
class KpiNumbers:
    """One KPI value and what it is made of; ratios keep both terms so that scopes roll up."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None


def ratio(numerator: float | None, denominator: float | None, scale: float = 1.0) -> KpiNumbers:
    """``numerator ÷ denominator × scale``; no value when the denominator is 0 or unknown."""
    if numerator is None or denominator is None or denominator == 0:
        return KpiNumbers(None, numerator, denominator)
    return KpiNumbers(numerator / denominator * scale, numerator, denominator)


def total(value: float | None) -> KpiNumbers:
    return KpiNumbers(value, value, None)


@dataclass(frozen=True)
class Ratio:
    """``numerator ÷ denominator × scale`` (scale 100 for a percentage).

    ``denominator_sliced=False``: the denominator ignores the dimension (a share of the scope's total,
    as in sales by location).  ``numerator_required=True``: a team or rep has a value only where the
    numerator has data (costs given per team).
    """

    numerator: Measure
    denominator: Measure
    scale: float = 1.0
    denominator_sliced: bool = True
    numerator_required: bool = False


Combine = Callable[[Mapping[str, float | None]], KpiNumbers]


@dataclass(frozen=True)
class Formula:
    """``combine`` of several named measures, per period and scope after roll-up.

    ``unsliced``: measures that ignore the dimension.  ``required``: measures without which a team or
    rep scope has no row at all (e.g. costs given only for some teams).
    """

    measures: tuple[tuple[str, Measure], ...]
    combine: Combine
    unsliced: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, combine: Combine, *, unsliced: Iterable[str] = (), required: Iterable[str] = (), **measures: Measure
    ) -> Formula:
        return cls(tuple(measures.items()), combine, tuple(unsliced), tuple(required))


DeriveFunction = Callable[[Mapping[str, KpiNumbers]], KpiNumbers]


@dataclass(frozen=True)
class Derived:
    """A KPI computed from other KPIs' numbers at the same period, scope and dimension."""

    inputs: tuple[str, ...]
    combine: DeriveFunction


Computation = Aggregate | AsOf | Previous | Custom | Ratio | Formula | Derived


@dataclass(frozen=True, kw_only=True)
class KpiDefinition:
    """One KPI, as a plugin registers it.

    Args:
        key: unique snake_case key (``win_rate``); config and goals refer to it.
        title: a short human name.
        unit: what the value is in.
        direction: whether higher is better.
        description: the formula in words, with its edge cases; shown by ``kpi-agent plugins``.
        compute: how it is computed (see the module docstring).
        scopes: where it has values (a subset of :data:`SCOPES`).
        dimensions: what it can be sliced by, on request.
        required_dimension: a dimension it is always and only computed by (``product_performance``).
        tags: free labels; ``"activity"`` marks the KPIs whose significance is measured.
        references: where the definition comes from (``"[004] #11"``).
    """

    key: str
    title: str
    unit: Unit
    direction: Direction
    description: str
    compute: Computation
    scopes: tuple[str, ...] = SCOPES
    dimensions: tuple[str, ...] = ()
    required_dimension: str | None = None
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        """What is wrong with this definition, each with a fix; empty when it is valid."""
        found = []
        if not KEY_PATTERN.match(self.key):
            found.append(f"key {self.key!r} must be snake_case (a-z, 0-9, _), at most 80 characters")
        bad_scopes = [scope for scope in self.scopes if scope not in SCOPES]
        if bad_scopes or not self.scopes:
            found.append(f"scopes {self.scopes!r}: use a non-empty subset of {SCOPES}")
        wanted = [*self.dimensions, *([self.required_dimension] if self.required_dimension else [])]
        bad_dimensions = [dimension for dimension in wanted if dimension not in DIMENSIONS]
        if bad_dimensions:
            found.append(f"dimensions {bad_dimensions!r} are unknown; use some of {DIMENSIONS}")
        if not isinstance(self.compute, Computation):
            found.append(f"compute is a {type(self.compute).__name__}; use Aggregate, Ratio, Formula, ...")
        if not isinstance(self.unit, Unit) or not isinstance(self.direction, Direction):
            found.append("unit and direction must be agent.kpi.Unit and agent.kpi.Direction members")
        return found


@dataclass(frozen=True)
class PeriodWindow:
    """A period as local dates and as (aware) UTC instants, half-open ``[start, end)``."""

    start_date: date
    end_date: date
    start_utc: datetime
    end_utc: datetime


@dataclass(frozen=True)
class KpiContext:
    """What a :class:`Custom` function gets: the run's settings and the periods it computes."""

    config: AgentConfig
    dialect: str
    grain: str
    timezone: str
    periods: tuple[PeriodWindow, ...]
    running: PeriodWindow
    now: datetime
    dimension: str | None = None
    connection: Connection | None = field(default=None, compare=False, repr=False)
    """The read connection the run uses, for Custom functions that return rows rather than a Select."""

    def windows(self) -> FromClause:
        """The computed periods from the ``period`` table, one row each: ``period_start``,
        ``start_date``, ``end_date``, ``start_utc``, ``end_utc``, ``next_start_date``, ``next_end_date``."""
        from agent.kpi.periods import windows_select

        return windows_select(self.grain, [period.start_date for period in self.periods]).subquery("windows")

    def period_of(
        self, column: ColumnElement[Any], kind: Literal["date", "instant"] = "instant"
    ) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
        """The computed period a row's time falls in, as ``(period_start, condition)``: put
        ``period_start`` in the SELECT and GROUP BY and ``condition`` in the WHERE.

        ``kind``: ``"date"`` for a date-only column (local dates), ``"instant"`` for a UTC timestamp.
        Prefer it to joining :meth:`windows` on a range: a range join has the planner scan the rows
        once per period (or recompute a subquery per period), this reads them once."""
        from agent.kpi.periods import bucket, disjoint, spans, within
        from agent.kpi.sqlfuncs import sequential

        windows = spans([(period.start_date, period) for period in self.periods], kind)
        if not disjoint(windows):  # periods of one grain never overlap; kept for a caller's own list
            raise ValueError("period_of needs disjoint periods")
        return bucket(column, windows, kind), within(sequential(column), windows, kind)

    def with_dimension(self, dimension: str | None) -> KpiContext:
        from dataclasses import replace

        return replace(self, dimension=dimension)
