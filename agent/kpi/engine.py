"""The KPI engine: plans a run, computes measures in grouped SQL, rolls scopes up, stores values.

A run:

1. picks the periods: the running one and ``recompute_periods`` before it, plus any of the last
   ``history_periods`` that a KPI has no stored value for (older values stay as stored);
2. makes sure the ``period`` table holds them for the org timezone and fiscal start;
3. keeps snapshots of the open pipeline at each period boundary and of ``revenue_forecast`` at each
   period start (history the CRM does not keep), rebuilding missing past ones from stage history;
4. groups the measures of every KPI into batches that share a source, time column, window and dimension
   — each batch is ONE grouped query (period × rep × dimension) whose result is rolled up to teams, the
   unassigned bucket and the org in the same statement (Σ over reps, never an average of rates);
5. if a batch fails, runs its measures one by one, so one broken KPI fails alone;
6. combines measures into values per scope (ratios divide the rolled-up sums) and writes them, with
   numerator and denominator, in one transaction; failed KPIs get a ``failed`` row naming the error.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import Label
from sqlalchemy.sql.selectable import SelectBase
from sqlmodel.sql.sqltypes import UTCDateTime

from agent.kpi.bulk import insert_rows
from agent.kpi.periods import (
    LabelledSpan,
    bucket,
    disjoint,
    ensure_periods,
    history,
    instant_of,
    literal_windows,
    local_day_of,
    period_start,
    previous_windows,
    shift,
    spans,
    to_local,
    windows_select,
    within,
)
from agent.kpi.registry import KpiRegistry, RegisteredKpi, collect_kpis
from agent.kpi.sources import NO_DIMENSION, REP, SourceRequest, get_source
from agent.kpi.spec import (
    NOW,
    Aggregate,
    AsOf,
    Condition,
    Custom,
    Derived,
    Formula,
    KpiContext,
    KpiDefinition,
    KpiNumbers,
    Measure,
    PeriodWindow,
    Previous,
    Ratio,
    eq,
    ratio,
    total,
)
from agent.kpi.sqlfuncs import row_filter, sequential
from agent.models import ForecastSnapshot, KpiRun, KpiValue, Opportunity, Team

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.db import Database
    from agent.plugins import PluginHost

log = logging.getLogger(__name__)

KPI_VALUE = KpiValue.__table__
KPI_RUN = KpiRun.__table__
FORECAST = ForecastSnapshot.__table__
TEAM = Team.__table__
OPPORTUNITY = Opportunity.__table__

LIVE_SNAPSHOT_WINDOW = timedelta(days=1)
"""A snapshot taken within this time of its instant is the live state; older ones are rebuilt."""

ScopeKey = tuple[date, str, str, str]
"""period start, scope kind, scope id, dimension value"""
MeasureValues = dict[ScopeKey, float | None]
MeasureRequest = tuple[Measure, str | None]


@dataclass(frozen=True)
class RunResult:
    """What one run did.  ``status``: ok, partial (some KPIs failed) or failed."""

    run_id: int
    status: str
    grain: str
    periods: tuple[date, ...]
    computed: tuple[str, ...]
    failed: dict[str, str]
    values_written: int
    snapshots_taken: int
    seconds: Mapping[str, float] = field(default_factory=dict)
    """Wall time per phase: plan (periods and run row), snapshots, compute (the queries and the
    combining), store (the values written)."""


@dataclass(frozen=True)
class _Plan:
    entry: RegisteredKpi
    formula: Formula | Derived
    passes: tuple[str | None, ...]
    stored: bool = True

    @property
    def definition(self) -> KpiDefinition:
        return self.entry.definition


# --- planning --------------------------------------------------------------------------------------


def as_formula(compute: Any) -> Formula | Derived:
    """Every computation as a Formula of named measures (or a Derived)."""
    if isinstance(compute, (Formula, Derived)):
        return compute
    if isinstance(compute, Ratio):
        return Formula(
            (("numerator", compute.numerator), ("denominator", compute.denominator)),
            partial(_ratio_of, compute.scale),
            unsliced=() if compute.denominator_sliced else ("denominator",),
            required=("numerator",) if compute.numerator_required else (),
        )
    return Formula((("value", compute),), _total_of)


def _ratio_of(scale: float, values: Mapping[str, float | None]) -> KpiNumbers:
    return ratio(values["numerator"], values["denominator"], scale)


def _total_of(values: Mapping[str, float | None]) -> KpiNumbers:
    return total(values["value"])


def _passes(definition: KpiDefinition, dimensions: Sequence[str]) -> tuple[str | None, ...]:
    if definition.required_dimension:
        # The org total too: every KPI then has a row in every computed period, which is how the next
        # run knows the period is stored.
        return (None, definition.required_dimension)
    return (None, *[dimension for dimension in dimensions if dimension in definition.dimensions])


def plan_run(registry: KpiRegistry, dimensions: Sequence[str] = ()) -> list[_Plan]:
    plans = [
        _Plan(entry, as_formula(entry.definition.compute), _passes(entry.definition, dimensions))
        for entry in registry.definitions.values()
    ]
    needed_hidden = {
        name for plan in plans if isinstance(plan.formula, Derived) for name in plan.formula.inputs
    } & set(registry.hidden)
    plans += [
        _Plan(entry, as_formula(entry.definition.compute), _passes(entry.definition, dimensions), stored=False)
        for key, entry in registry.hidden.items()
        if key in needed_hidden
    ]
    return plans


# --- measures in SQL -------------------------------------------------------------------------------


def _inner(measure: Measure) -> Aggregate | AsOf:
    return measure.measure if isinstance(measure, Previous) else measure  # type: ignore[return-value]


def batch_key(measure: Measure, dimension: str | None) -> tuple[Any, ...]:
    """Measures with equal keys run as one grouped query."""
    if isinstance(measure, Custom):
        return ("custom", measure.name, measure.function, measure.rollup, dimension)
    if isinstance(measure, Previous):
        return ("aggregate", measure.measure.source, measure.measure.at, "previous", dimension)
    if isinstance(measure, AsOf):
        return ("as_of", measure.source, measure.instant, dimension)
    return ("aggregate", measure.source, measure.at, "current", dimension)


def describe(measure: Measure) -> str:
    if isinstance(measure, Custom):
        return f"custom {measure.name}.{measure.column}"
    if isinstance(measure, Previous):
        return f"previous({describe(measure.measure)})"
    what = f"sum({measure.value})" if measure.value else "count"
    where = " and ".join(f"{c.column} {c.op} {c.value!r}" for c in measure.where)
    timing = f"as of {measure.instant}" if isinstance(measure, AsOf) else f"by {measure.at}"
    return f"{what} of {measure.source} {timing}" + (f" where {where}" if where else "")


def _condition(column: ColumnElement[Any], condition: Condition, ctx: KpiContext) -> ColumnElement[bool]:
    value = literal(ctx.now, UTCDateTime()) if condition.value is NOW else condition.value
    if condition.op == "=" and isinstance(value, bool):
        if isinstance(column.type, Boolean):
            # The bare expression, not "IS 1": once SQLite flattens the source into the query it can
            # then use an index on the columns behind it (kind, is_won, ...).
            return column if value else not_(column)
        return column.is_(value)
    operators: dict[str, Callable[[], ColumnElement[bool]]] = {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "in": lambda: column.in_(list(value)),
        "not in": lambda: column.not_in(list(value)),
        "is null": lambda: column.is_(None),
        "is not null": lambda: column.isnot(None),
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
    }
    return operators[condition.op]()


def _where(
    columns: Mapping[str, ColumnElement[Any]], measure: Aggregate | AsOf, ctx: KpiContext
) -> ColumnElement[bool] | None:
    if not measure.where:
        return None
    return and_(*[_condition(columns[c.column], c, ctx) for c in measure.where])


def _constant(facts: FromClause, name: str) -> ColumnElement[Any] | None:
    """The expression behind a column of a subquery when it reads no table (a typed null, '')."""
    select_ = getattr(facts, "element", None)
    if not isinstance(select_, Select) or name not in select_.selected_columns:
        return None
    expression = _unlabelled(select_.selected_columns[name])
    return expression if not expression._from_objects else None


def _common_conditions(measures: Sequence[Aggregate | AsOf]) -> tuple[Condition, ...]:
    """The filters every measure has (``is_won`` for revenue and deals won): safe for the batch's WHERE."""
    first, *rest = [measure.where for measure in measures]
    return tuple(condition for condition in first if all(condition in where for where in rest))


def _without(where: tuple[Condition, ...], common: Sequence[Condition]) -> tuple[Condition, ...]:
    return tuple(condition for condition in where if condition not in common)


def _unlabelled(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The expression behind a labelled column of a select (what a WHERE on the select itself needs)."""
    return column.element if isinstance(column, Label) else column


def _aggregate(
    columns: Mapping[str, ColumnElement[Any]], measure: Aggregate | AsOf, ctx: KpiContext
) -> ColumnElement[Any]:
    condition = _where(columns, measure, ctx)
    if measure.value is None:
        counted = literal(1) if condition is None else case((condition, literal(1)), else_=literal(0))
        return func.sum(counted)
    column = columns[measure.value]
    # 0, not null, for a rep whose rows in this batch match none of the measure's conditions.
    return func.coalesce(func.sum(column if condition is None else case((condition, column), else_=null())), 0)


def _grouped(
    facts: FromClause,
    frm: FromClause,
    period_column: ColumnElement[Any],
    aggregates: Sequence[tuple[str, ColumnElement[Any]]],
    condition: ColumnElement[bool] | None = None,
) -> Any:
    """Period × rep × dimension sums, with each rep's current team (or the row's own team).

    Grouped by rep first, then joined to the rep's team: the join then looks up a few thousand
    grouped rows, not every fact row."""
    has_team = "team_id" in facts.c
    has_dimension = "dimension_value" in facts.c
    keys = [period_column.label("period_start"), facts.c.rep_id.label("rep_id")]
    constants: list[Label[Any]] = []
    for name, label in (("team_id", "row_team_id"), ("dimension_value", "dimension_value")):
        if name not in facts.c:
            continue
        constant = _constant(facts, name)
        if constant is None:
            keys.append(facts.c[name].label(label))
        else:  # no team of its own, no dimension asked for: selected, not grouped by (a narrower sort)
            constants.append(constant.label(label))
    per_rep = (
        select(*keys, *constants, *[expression.label(label) for label, expression in aggregates])
        .select_from(frm)
        .group_by(*[key.element for key in keys])
    )
    if condition is not None:
        per_rep = per_rep.where(condition)
    rows = per_rep.subquery("per_rep")
    owner = REP.alias("owner")
    team = func.coalesce(owner.c.team_id, rows.c.row_team_id) if has_team else owner.c.team_id
    dimension = rows.c.dimension_value if has_dimension else NO_DIMENSION.label("dimension_value")
    statement = select(
        rows.c.period_start,
        rows.c.rep_id,
        team.label("team_id"),
        dimension,
        *[rows.c[label] for label, _ in aggregates],
    ).select_from(rows.outerjoin(owner, owner.c.id == rows.c.rep_id))
    # Referenced four times by the roll-up: computed once (SQLite would otherwise inline it four times).
    return statement.cte("grouped").prefix_with("MATERIALIZED")


def _rollup(grouped: Any, labels: Sequence[str]) -> SelectBase:
    """Rep rows rolled up to teams, the unassigned bucket and the org, in the same statement."""
    g = grouped.c

    def level(kind: str, scope_id: ColumnElement[Any], where: ColumnElement[bool], group: list[Any]) -> Select:
        return (
            select(
                g.period_start,
                literal_column(f"'{kind}'", String).label("scope_kind"),
                scope_id.label("scope_id"),
                g.dimension_value,
                *[func.sum(g[label]).label(label) for label in labels],
            )
            .where(where)
            .group_by(g.period_start, *group, g.dimension_value)
        )

    nobody = literal_column("''", String)
    return union_all(
        level("rep", cast(g.rep_id, String), g.rep_id.isnot(None), [g.rep_id]),
        level("team", cast(g.team_id, String), g.team_id.isnot(None), [g.team_id]),
        level("unassigned", nobody, and_(g.rep_id.is_(None), g.team_id.is_(None)), []),
        level("org", nobody, true(), []),
    )


def _range_join(column: ColumnElement[Any], windows: FromClause, kind: str) -> ColumnElement[bool]:
    if kind == "date":
        return and_(column >= windows.c.start_date, column < windows.c.end_date)
    return and_(column >= windows.c.start_utc, column < windows.c.end_utc)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


class Evaluation:
    """Computes measures and KPI values for one context on one read connection."""

    def __init__(self, connection: Connection, ctx: KpiContext) -> None:
        self.connection = connection
        self.ctx = replace(ctx, connection=connection)
        self._settings()
        rows = connection.execute(select(REP.c.id, REP.c.team_id, REP.c.active)).all()
        self.rep_teams: dict[str, str | None] = {
            str(row.id): (str(row.team_id) if row.team_id is not None else None) for row in rows
        }
        self.active_reps = [str(row.id) for row in rows if row.active]
        self.teams = [str(team_id) for team_id in connection.execute(select(TEAM.c.id)).scalars()]

    # measures

    def measures(
        self, requests: Iterable[MeasureRequest]
    ) -> tuple[dict[MeasureRequest, MeasureValues], dict[MeasureRequest, str]]:
        batches: dict[tuple[Any, ...], list[Measure]] = defaultdict(list)
        for measure, dimension in requests:
            key = batch_key(measure, dimension)
            if measure not in batches[key]:
                batches[key].append(measure)
        values: dict[MeasureRequest, MeasureValues] = {}
        failures: dict[MeasureRequest, str] = {}
        for key, measures in batches.items():
            dimension = key[-1]
            started = time.perf_counter()
            try:
                found = self._run_batch(measures, dimension)
            except Exception as error:  # one broken measure must not take the batch down: retry alone
                self._recover()
                log.warning("KPI batch %s failed (%s); retrying its measures one by one", key[:3], error)
                found = self._run_alone(measures, dimension, failures)
            values.update({(measure, dimension): result for measure, result in found.items()})
            log.debug("KPI batch %s (%d measures): %.3f s", key[:3], len(measures), time.perf_counter() - started)
        return values, failures

    def _run_alone(
        self, measures: list[Measure], dimension: str | None, failures: dict[MeasureRequest, str]
    ) -> dict[Measure, MeasureValues]:
        found: dict[Measure, MeasureValues] = {}
        for measure in measures:
            try:
                found.update(self._run_batch([measure], dimension))
            except Exception as error:  # recorded against the KPIs that use it
                self._recover()
                failures[(measure, dimension)] = f"{describe(measure)}: {type(error).__name__}: {error}"
        return found

    def _recover(self) -> None:
        if self.connection.in_transaction():
            self.connection.rollback()
            self._settings()

    def _settings(self) -> None:
        """PostgreSQL: no JIT for this read transaction.  It compiles every batch whose estimated cost
        passes jit_above_cost (grouping by a computed period makes PostgreSQL guess a group per row, so
        nearly all do), 0.2-0.4 s a batch at 100k deals, more than the batch then runs."""
        if self.connection.dialect.name == "postgresql":
            self.connection.exec_driver_sql("SET LOCAL jit = off")

    def _run_batch(self, measures: list[Measure], dimension: str | None) -> dict[Measure, MeasureValues]:
        if isinstance(measures[0], Custom):
            return self._run_custom(measures, dimension)  # type: ignore[arg-type]
        statement = self._declarative(measures, dimension)
        rows = self.connection.execute(statement).all()
        return self._collect(rows, measures, [f"m{index}" for index in range(len(measures))])

    def _windows(self, previous: bool) -> FromClause:
        ctx = self.ctx
        if previous:
            labelled = previous_windows(ctx.grain, ctx.periods, ctx.running, ctx.now, ctx.timezone)
            return literal_windows(labelled).subquery("windows")
        return windows_select(ctx.grain, [period.start_date for period in ctx.periods]).subquery("windows")

    def _declarative(self, measures: list[Measure], dimension: str | None) -> SelectBase:
        first = _inner(measures[0])
        source = get_source(first.source)
        previous = isinstance(measures[0], Previous)
        inner = [_inner(measure) for measure in measures]
        columns: set[str] = set()
        for measure in inner:
            columns |= {measure.value} if measure.value else set()
            columns |= {condition.column for condition in measure.where}
        at = first.at if isinstance(first, Aggregate) else None
        if at is not None:
            columns.add(at)
        instant = first.instant if isinstance(first, AsOf) else None
        windows = self._windows(previous)
        request = SourceRequest(self.ctx.with_dimension(dimension), frozenset(columns), dimension, windows, instant)
        built = source.build(request)
        spans_ = self._spans(previous, source.time_kind(at)) if source.kind == "event" and at is not None else None
        if spans_ is not None and at is not None and disjoint(spans_):
            facts = self._bucketed(built, inner, at, spans_, source.time_kind(at)).subquery("facts")
            frm, period_column, narrowing = facts, facts.c.period_start, None
        else:
            facts = built.subquery("facts")
            frm, period_column = self._joined(facts, windows, source, at)
            conditions = [_where(facts.c, measure, self.ctx) for measure in inner]
            narrowing = or_(*conditions) if all(c is not None for c in conditions) else None  # type: ignore[arg-type]
        aggregates = [(f"m{index}", _aggregate(facts.c, measure, self.ctx)) for index, measure in enumerate(inner)]
        grouped = _grouped(facts, frm, period_column, aggregates, narrowing)
        return _rollup(grouped, [label for label, _ in aggregates])

    def _spans(self, previous: bool, kind: str) -> list[LabelledSpan]:
        ctx = self.ctx
        if previous:
            return spans(previous_windows(ctx.grain, ctx.periods, ctx.running, ctx.now, ctx.timezone), kind)
        return spans([(period.start_date, period) for period in ctx.periods], kind)

    def _bucketed(
        self, built: Select, measures: Sequence[Aggregate | AsOf], at: str, windows: Sequence[LabelledSpan], kind: str
    ) -> Select:
        """The source's rows in the windows, each with its period as a column; the time range and the
        measures' filters go in the source's own WHERE, on its own expressions.  The planner then sees
        ``kind IN (...)`` on the table (an index) and reads it once, where a range join of a subquery's
        flags with the period table had SQLite scan it once per period."""
        if built._group_by_clauses or built._having_criteria:  # a WHERE would change what it groups
            built = select(built.subquery("grouped_source"))
        exposed = {name: _unlabelled(column) for name, column in built.selected_columns.items()}
        time = exposed[at]
        statement = built.add_columns(bucket(time, windows, kind).label("period_start"))
        statement = statement.where(within(sequential(time), windows, kind))
        common = _common_conditions(measures)
        if common:  # what every measure asks (revenue and deals won: is_won): the index may use it
            statement = statement.where(*[_condition(exposed[c.column], c, self.ctx) for c in common])
        residual = [
            _where(exposed, replace(measure, where=_without(measure.where, common)), self.ctx) for measure in measures
        ]
        if all(condition is not None for condition in residual):
            # A row none of the measures counts adds nothing (and a group of only such rows would be a
            # row of zeros): leave it out, as a plain filter.
            statement = statement.where(row_filter(or_(*residual)))  # type: ignore[arg-type]
        return statement

    def _joined(
        self, facts: FromClause, windows: FromClause, source: Any, at: str | None
    ) -> tuple[FromClause, ColumnElement[Any]]:
        if source.kind in ("period", "state"):
            return facts, facts.c.period_start
        if source.kind == "static" or at is None:
            return facts.join(windows, true()), windows.c.period_start
        return facts.join(windows, _range_join(facts.c[at], windows, source.time_kind(at))), windows.c.period_start

    def _run_custom(self, measures: list[Custom], dimension: str | None) -> dict[Measure, MeasureValues]:
        first = measures[0]
        result = first.function(self.ctx.with_dimension(dimension))
        labels = [measure.column for measure in measures]
        if isinstance(result, SelectBase):
            facts = result.subquery("facts")
            if first.rollup:
                aggregates = [(f"m{index}", func.sum(facts.c[label])) for index, label in enumerate(labels)]
                statement = _rollup(
                    _grouped(facts, facts, facts.c.period_start, aggregates), [a for a, _ in aggregates]
                )
                return self._collect(self.connection.execute(statement).all(), measures, [a for a, _ in aggregates])
            rows = self.connection.execute(select(facts)).mappings().all()
        else:
            rows = [dict(row) for row in result]
            if first.rollup:
                rows = self._rollup_rows(rows, labels)
        return self._collect_mappings(rows, measures)

    def _rollup_rows(self, rows: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
        """Rep-grain rows from Python (a CSV, say) rolled up exactly as SQL batches are."""
        sums: dict[ScopeKey, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for row in rows:
            rep = str(row["rep_id"]) if row.get("rep_id") is not None else None
            team = self.rep_teams.get(rep) if rep else None
            team = team or (str(row["team_id"]) if row.get("team_id") is not None else None)
            period, dimension = _as_date(row["period_start"]), str(row.get("dimension_value") or "")
            scopes = [("org", "")]
            scopes += [("rep", rep)] if rep else []
            scopes += [("team", team)] if team else []
            scopes += [("unassigned", "")] if not rep and not team else []
            for kind, scope_id in scopes:
                for label in labels:
                    sums[(period, kind, scope_id, dimension)][label] += float(row.get(label) or 0)
        return [
            {"period_start": key[0], "scope_kind": key[1], "scope_id": key[2], "dimension_value": key[3], **values}
            for key, values in sums.items()
        ]

    def _collect(
        self, rows: Sequence[Any], measures: Sequence[Measure], labels: Sequence[str]
    ) -> dict[Measure, MeasureValues]:
        found: dict[Measure, MeasureValues] = {measure: {} for measure in measures}
        for row in rows:
            mapping = row._mapping
            key = (
                _as_date(mapping["period_start"]),
                mapping["scope_kind"],
                str(mapping["scope_id"] or ""),
                str(mapping["dimension_value"] or ""),
            )
            for measure, label in zip(measures, labels, strict=True):
                found[measure][key] = _number(mapping[label])
        return found

    def _collect_mappings(
        self, rows: Sequence[Mapping[str, Any]], measures: Sequence[Custom]
    ) -> dict[Measure, MeasureValues]:
        found: dict[Measure, MeasureValues] = {measure: {} for measure in measures}
        for row in rows:
            key = (
                _as_date(row["period_start"]),
                str(row["scope_kind"]),
                str(row.get("scope_id") or ""),
                str(row.get("dimension_value") or ""),
            )
            for measure in measures:
                found[measure][key] = _number(row.get(measure.column))
        return found

    # KPI values

    def grid(self, dimension: str | None, present: Iterable[ScopeKey]) -> set[ScopeKey]:
        """Where a KPI gets a row: every period × (org, each team, each active rep) undimensioned, plus
        every scope and dimension value the data has."""
        keys = {key for key in present if (key[3] != "") == (dimension is not None)}
        if dimension is None:
            scopes = [("org", ""), *[("team", t) for t in self.teams], *[("rep", r) for r in self.active_reps]]
            keys |= {
                (period.start_date, kind, scope_id, "") for period in self.ctx.periods for kind, scope_id in scopes
            }
        return keys

    def combine(
        self, plan: _Plan, dimension: str | None, values: Mapping[MeasureRequest, MeasureValues]
    ) -> dict[ScopeKey, KpiNumbers]:
        formula = plan.formula
        assert isinstance(formula, Formula)
        maps: dict[str, MeasureValues] = {}
        for name, measure in formula.measures:
            maps[name] = values[(measure, None if name in formula.unsliced else dimension)]
        sliced = [maps[name] for name, _ in formula.measures if name not in formula.unsliced]
        present = [key for measure_map in sliced for key in measure_map]
        results: dict[ScopeKey, KpiNumbers] = {}
        org_only = dimension is None and plan.definition.required_dimension is not None
        for key in self.grid(dimension, present):
            if key[1] not in plan.definition.scopes or (org_only and key[1] != "org"):
                continue
            inputs, missing = {}, set()
            for name, measure in formula.measures:
                lookup = key if name not in formula.unsliced else (key[0], key[1], key[2], "")
                if lookup not in maps[name]:
                    missing.add(name)
                inputs[name] = maps[name].get(lookup, _default(measure))
            if missing & set(formula.required):
                # Without its required data a team or rep has no row; the org shows "no value".
                if key[1] == "org":
                    results[key] = KpiNumbers(None)
                continue
            results[key] = formula.combine(inputs)
        return results

    def derive(
        self, plan: _Plan, dimension: str | None, inputs: Mapping[str, Mapping[ScopeKey, KpiNumbers]]
    ) -> dict[ScopeKey, KpiNumbers]:
        formula = plan.formula
        assert isinstance(formula, Derived)
        keys = {key for name in formula.inputs for key in inputs[name]}
        empty = KpiNumbers(None)
        return {
            key: formula.combine({name: inputs[name].get(key, empty) for name in formula.inputs})
            for key in keys
            if key[1] in plan.definition.scopes
        }


def _default(measure: Measure) -> float | None:
    """What a measure is where it has no rows: 0 for sums and counts, unknown for per-scope customs."""
    return None if isinstance(measure, Custom) and not measure.rollup else 0.0


# --- evaluating a plan -----------------------------------------------------------------------------


@dataclass
class _Outcome:
    values: dict[str, dict[str | None, dict[ScopeKey, KpiNumbers]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def evaluate(evaluation: Evaluation, plans: Sequence[_Plan]) -> _Outcome:
    """Every plan's values per dimension pass and scope; failures recorded per KPI."""
    requests: set[MeasureRequest] = set()
    for plan in plans:
        if isinstance(plan.formula, Formula):
            for dimension in plan.passes:
                for name, measure in plan.formula.measures:
                    requests.add((measure, None if name in plan.formula.unsliced else dimension))
    values, failures = evaluation.measures(requests)
    outcome = _Outcome()
    for plan in plans:
        if isinstance(plan.formula, Formula):
            _combine_plan(evaluation, plan, values, failures, outcome)
    for plan in _in_dependency_order([p for p in plans if isinstance(p.formula, Derived)]):
        _derive_plan(evaluation, plan, outcome)
    return outcome


def _combine_plan(
    evaluation: Evaluation,
    plan: _Plan,
    values: Mapping[MeasureRequest, MeasureValues],
    failures: Mapping[MeasureRequest, str],
    outcome: _Outcome,
) -> None:
    key = plan.definition.key
    assert isinstance(plan.formula, Formula)
    for dimension in plan.passes:
        broken = [
            failures[request]
            for name, measure in plan.formula.measures
            if (request := (measure, None if name in plan.formula.unsliced else dimension)) in failures
        ]
        if broken:
            outcome.failed[key] = broken[0]
            outcome.values.pop(key, None)
            return
        try:
            outcome.values.setdefault(key, {})[dimension] = evaluation.combine(plan, dimension, values)
        except Exception as error:  # the plugin's combine function: its failure is its KPI's alone
            outcome.failed[key] = f"combining {key}: {type(error).__name__}: {error}"
            outcome.values.pop(key, None)
            return


def _in_dependency_order(plans: list[_Plan]) -> list[_Plan]:
    ordered: list[_Plan] = []
    pending = list(plans)
    derived_keys = {plan.definition.key for plan in plans}
    while pending:
        ready = [
            plan
            for plan in pending
            if all(
                name not in derived_keys or name in {p.definition.key for p in ordered}
                for name in plan.formula.inputs  # type: ignore[union-attr]
            )
        ]
        if not ready:  # a cycle: leave the rest to fail on missing inputs
            return ordered + pending
        ordered += ready
        pending = [plan for plan in pending if plan not in ready]
    return ordered


def _derive_plan(evaluation: Evaluation, plan: _Plan, outcome: _Outcome) -> None:
    key = plan.definition.key
    assert isinstance(plan.formula, Derived)
    failed_inputs = [name for name in plan.formula.inputs if name in outcome.failed or name not in outcome.values]
    if failed_inputs:
        reason = outcome.failed.get(failed_inputs[0], "not computed")
        outcome.failed[key] = f"input {failed_inputs[0]} failed: {reason}"
        return
    try:
        for dimension in plan.passes:
            inputs = {name: outcome.values[name].get(dimension, {}) for name in plan.formula.inputs}
            outcome.values.setdefault(key, {})[dimension] = evaluation.derive(plan, dimension, inputs)
    except Exception as error:  # the plugin's function
        outcome.failed[key] = f"deriving {key}: {type(error).__name__}: {error}"
        outcome.values.pop(key, None)


# --- snapshots -------------------------------------------------------------------------------------


def take_pipeline_snapshots(
    connection: Connection, ctx: KpiContext, instants: Iterable[datetime], refresh: set[datetime]
) -> int:
    """Snapshot the open pipeline at each instant that has passed and has none yet (or only a rebuilt
    one due for refresh).  Returns how many instants were snapshotted."""
    from agent.kpi.snapshots import snapshot_pipeline, snapshot_status

    due = sorted({instant for instant in instants if instant <= ctx.now})
    status = snapshot_status(connection, due)
    taken = 0
    for instant in due:
        if instant in status and not (status[instant] and instant in refresh):
            continue
        snapshot_pipeline(connection, instant, ctx.now, rebuilt=ctx.now - instant > LIVE_SNAPSHOT_WINDOW)
        taken += 1
    return taken


def forecast_measure(ctx: KpiContext) -> AsOf:
    """``revenue_forecast`` as it stands at a period's start: nothing is won yet, so it is the open
    pipeline closing in the period, weighted by probability (or the CRM's commit category)."""
    if ctx.config.kpis.forecast_source == "crm_commit":
        return AsOf("pipeline", "start", "amount", (eq("close_in_period", True), eq("is_commit", True)))
    return AsOf("pipeline", "start", "weighted", (eq("close_in_period", True),))


def take_forecast_snapshots(db: Database, ctx: KpiContext, refresh: set[date]) -> int:
    """Store ``revenue_forecast`` at the start of each passed period that has no snapshot yet."""
    started = [period for period in ctx.periods if period.start_utc <= ctx.now]
    if not started:
        return 0
    with db.engine.connect() as connection:
        existing = dict(
            connection.execute(
                select(FORECAST.c.period_start, func.max(cast(FORECAST.c.rebuilt, String)))
                .where(FORECAST.c.grain == ctx.grain, FORECAST.c.period_start.in_([p.start_date for p in started]))
                .group_by(FORECAST.c.period_start)
            ).all()
        )
        due = [
            period
            for period in started
            if period.start_date not in existing
            or (existing[period.start_date] in ("1", "true") and period.start_date in refresh)
        ]
        if not due:
            return 0
        evaluation = Evaluation(connection, replace(ctx, periods=tuple(due)))
        measure = forecast_measure(ctx)
        values, failures = evaluation.measures([(measure, None)])
        if failures:
            log.warning("revenue_forecast snapshot failed: %s", next(iter(failures.values())))
            return 0
        found = values[(measure, None)]
        keys = evaluation.grid(None, found)
    rows = [
        {
            "grain": ctx.grain,
            "period_start": key[0],
            "scope_kind": key[1],
            "scope_id": key[2],
            "value": found.get(key, 0.0) or 0.0,
            "taken_at": ctx.now,
            "rebuilt": ctx.now - _window_of(due, key[0]).start_utc > LIVE_SNAPSHOT_WINDOW,
        }
        for key in keys
    ]
    with db.write_connection() as connection:
        connection.execute(
            delete(FORECAST).where(
                FORECAST.c.grain == ctx.grain, FORECAST.c.period_start.in_([p.start_date for p in due])
            )
        )
        if rows:
            connection.execute(insert(FORECAST), rows)
    return len(due)


def _window_of(periods: Iterable[PeriodWindow], start: date) -> PeriodWindow:
    return next(period for period in periods if period.start_date == start)


# --- the run ---------------------------------------------------------------------------------------


def compute_kpis(
    db: Database,
    config: AgentConfig,
    host: PluginHost,
    *,
    grain: str | None = None,
    at: date | datetime | None = None,
    recompute_all: bool = False,
    dimensions: Sequence[str] = (),
    registry: KpiRegistry | None = None,
) -> RunResult:
    """Compute every enabled KPI for the running period (the one containing ``at``; default now) and
    the ``recompute_periods`` before it, plus history periods without stored values, and store them.

    Args:
        grain: day, week, month, quarter or year (default: the config's ``kpis.grain``).
        at: the computation instant: a datetime (naive means UTC) or a date (the end of that local day).
        recompute_all: recompute every one of the ``history_periods``, not only the recent ones.
        dimensions: also compute the KPIs that support them sliced by these dimensions.
        registry: the KPIs to compute (default: collected from ``host``).
    """
    clock = _Clock()
    registry = registry if registry is not None else collect_kpis(host, config)
    grain = grain or config.kpis.grain
    timezone, fiscal = config.agent.timezone, config.agent.fiscal_year_start_month
    now = instant_of(at, timezone)
    running_start = period_start(grain, local_day_of(now, timezone), fiscal)
    kept = history(grain, running_start, config.kpis.history_periods, timezone)
    recent = kept if recompute_all else kept[-(config.kpis.recompute_periods + 1) :]
    plans = plan_run(registry, dimensions)
    needed = _periods_needed(db, grain, kept, recent, [plan for plan in plans if plan.stored])
    starts = set().union(*needed.values()) if needed else set()
    periods = tuple(period for period in kept if period.start_date in starts) or tuple(recent)
    ctx = KpiContext(config, db.dialect, grain, timezone, periods, kept[-1], now)
    with db.write_connection() as connection:
        _prepare_periods(connection, grain, kept, timezone, fiscal)
        _ensure_day_periods(connection, ctx, fiscal)
        run_id = connection.execute(
            insert(KPI_RUN).values(started_at=_utc_now(), status="running")
        ).inserted_primary_key[0]
    clock.lap("plan")
    # Rebuilt snapshots are refreshed in the recompute window only, even when every value is recomputed:
    # they change only if stage history arrives late, which is what that window is for.
    window = kept[-(config.kpis.recompute_periods + 1) :]
    snapshots = _snapshots(db, ctx, {p.start_date for p in window}, kept) if _reads_snapshots(plans) else 0
    clock.lap("snapshots")
    with db.engine.connect() as connection:
        outcome = evaluate(Evaluation(connection, ctx), plans)
    clock.lap("compute")
    stored = [plan for plan in plans if plan.stored]
    with db.write_connection() as connection:
        written = _store(connection, ctx, run_id, stored, outcome, needed)
        status = "ok" if not outcome.failed else "partial"
        connection.execute(
            update(KPI_RUN)
            .where(KPI_RUN.c.id == run_id)
            .values(
                finished_at=_utc_now(),
                status=status,
                failed_kpis=json.dumps(outcome.failed) if outcome.failed else None,
            )
        )
    clock.lap("store")
    computed = tuple(sorted(plan.definition.key for plan in stored if plan.definition.key not in outcome.failed))
    failed = {key: error for key, error in outcome.failed.items() if key in {p.definition.key for p in stored}}
    periods_ = tuple(p.start_date for p in ctx.periods)
    log.debug("KPI run %s: %s", run_id, ", ".join(f"{phase} {seconds:.3f} s" for phase, seconds in clock.laps.items()))
    return RunResult(run_id, status, grain, periods_, computed, failed, written, snapshots, dict(clock.laps))


class _Clock:
    """Wall time of consecutive phases."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = now - self._last
        self._last = now


def _reads_snapshots(plans: Sequence[_Plan]) -> bool:
    """Whether a KPI of the run may read the snapshots: an as-of measure of the open pipeline, or a
    Custom measure (the forecast snapshot is read by one; what a plugin's function reads the engine
    cannot see).  A run of event KPIs alone (revenue, activity counts) does not keep them up: nothing
    would read them, and a KPI enabled later gets the missing ones rebuilt from stage history."""
    for plan in plans:
        if isinstance(plan.formula, Derived):
            continue
        for _, measure in plan.formula.measures:
            if isinstance(measure, Custom) or (isinstance(measure, AsOf) and measure.source == "pipeline"):
                return True
    return False


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _prepare_periods(
    connection: Connection, grain: str, kept: Sequence[PeriodWindow], timezone: str, fiscal: int
) -> None:
    starts = [period.start_date for period in kept]
    starts.append(shift(grain, starts[-1], 1))  # the following period: "next period" KPIs need it
    ensure_periods(connection, grain, starts, timezone, fiscal)


def _ensure_day_periods(connection: Connection, ctx: KpiContext, fiscal: int) -> None:
    """Local days from the earliest creation of a deal won in the computed periods: the sales cycle
    counts from a deal's local creation date, which SQL reads from these rows."""
    oldest = min(period.start_date for period in ctx.periods)
    earliest = connection.execute(
        select(func.min(OPPORTUNITY.c.created_at)).where(
            OPPORTUNITY.c.is_won.is_(True), OPPORTUNITY.c.close_date >= oldest
        )
    ).scalar()
    first = to_local(earliest, ctx.timezone).date() - timedelta(days=1) if earliest else oldest
    last = max(period.end_date for period in ctx.periods)
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    ensure_periods(connection, "day", days, ctx.timezone, fiscal)


def _periods_needed(
    db: Database, grain: str, kept: Sequence[PeriodWindow], recent: Sequence[PeriodWindow], plans: Sequence[_Plan]
) -> dict[str, set[date]]:
    """Per KPI: the recent periods, and any kept period without a stored (ok) value."""
    kept_starts = [period.start_date for period in kept]
    with db.engine.connect() as connection:
        stored = connection.execute(
            select(KPI_VALUE.c.kpi, KPI_VALUE.c.period_start)
            .where(KPI_VALUE.c.grain == grain, KPI_VALUE.c.period_start.in_(kept_starts), KPI_VALUE.c.status == "ok")
            .distinct()
        ).all()
    present: dict[str, set[date]] = defaultdict(set)
    for row in stored:
        present[row.kpi].add(_as_date(row.period_start))
    recent_starts = {period.start_date for period in recent}
    return {
        plan.definition.key: recent_starts | (set(kept_starts) - present[plan.definition.key]) for plan in plans
    }


def _snapshots(db: Database, ctx: KpiContext, refresh_starts: set[date], kept: Sequence[PeriodWindow]) -> int:
    boundaries = {period.start_utc for period in ctx.periods} | {period.end_utc for period in ctx.periods}
    refresh = {p.start_utc for p in kept if p.start_date in refresh_starts} | {
        p.end_utc for p in kept if p.start_date in refresh_starts
    }
    with db.write_connection() as connection:
        taken = take_pipeline_snapshots(connection, ctx, boundaries, refresh)
    return taken + take_forecast_snapshots(db, ctx, refresh_starts)


VALUE_COLUMNS = (
    "kpi", "grain", "period_start", "period_end", "scope_kind", "scope_id", "dimension", "dimension_value",
    "value", "numerator", "denominator", "status", "error", "run_id", "computed_at",
)  # fmt: skip


def _store(
    connection: Connection,
    ctx: KpiContext,
    run_id: int,
    plans: Sequence[_Plan],
    outcome: _Outcome,
    needed: Mapping[str, set[date]],
) -> int:
    """Replace the stored values of the computed periods: one DELETE per set of periods (usually one
    for the whole run), one bulk insert."""
    ends = {period.start_date: period.end_date for period in ctx.periods}
    computed_at = _utc_now()
    rows: list[tuple[Any, ...]] = []
    replaced: dict[tuple[date, ...], list[str]] = defaultdict(list)
    for plan in plans:
        key = plan.definition.key
        periods = needed.get(key, set()) & set(ends)
        if not periods:
            continue
        replaced[tuple(sorted(periods))].append(key)
        tail = (run_id, computed_at)
        if key in outcome.failed:
            error = outcome.failed[key]
            rows += [
                (key, ctx.grain, start, ends[start], "org", "", "", "", None, None, None, "failed", error, *tail)
                for start in sorted(periods)
            ]
            continue
        for dimension, by_key in outcome.values.get(key, {}).items():
            for (start, kind, scope_id, dimension_value), numbers in by_key.items():
                if start in periods:
                    rows.append(
                        (key, ctx.grain, start, ends[start], kind, scope_id, dimension or "", dimension_value,
                         _number(numbers.value), _number(numbers.numerator), _number(numbers.denominator),
                         "ok", None, *tail)
                    )  # fmt: skip
    started = time.perf_counter()
    for periods, keys in replaced.items():
        connection.execute(
            delete(KPI_VALUE).where(
                KPI_VALUE.c.grain == ctx.grain, KPI_VALUE.c.kpi.in_(keys), KPI_VALUE.c.period_start.in_(periods)
            )
        )
    deleted = time.perf_counter()
    written = insert_rows(connection, KPI_VALUE, VALUE_COLUMNS, rows)
    log.debug(
        "KPI values: old ones deleted in %.3f s, %d written in %.3f s",
        deleted - started,
        written,
        time.perf_counter() - deleted,
    )
    return written
