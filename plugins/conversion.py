"""Built-in KPIs: conversion and pipeline (catalog section "Conversion and pipeline").

Open pipeline "as of T" is the deals created before T and not closed at T, each in the stage (and so with
the probability and amount) it had at T: the agent's snapshot where it took one, else rebuilt from stage
history; for the running period's end, the live state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, literal_column, or_, select

from agent.hookspecs import hookimpl
from agent.kpi import (
    FORECAST_AT_START,
    Aggregate,
    AsOf,
    Custom,
    Direction,
    Formula,
    KpiContext,
    KpiDefinition,
    KpiNumbers,
    Ratio,
    Unit,
    eq,
    quota,
)
from agent.kpi.sources import OPPORTUNITY, STAGE, STAGE_HISTORY, dimension_value, no_id
from agent.kpi.sqlfuncs import add_days

DEAL_DIMENSIONS = ("lead_source", "region", "pipeline", "crm", "deal_type")
LEAD_DIMENSIONS = ("lead_source", "crm")


def deals(*where: Any, at: str = "close_date") -> Aggregate:
    return Aggregate("opportunities", None, tuple(where), at=at)


WON = deals(eq("is_won", True))
CLOSED = deals(eq("is_closed", True))
CREATED = deals(at="created_at")
LEADS_CREATED = Aggregate("leads", None, (), at="created_at")
REVENUE = Aggregate("opportunities", "amount", (eq("is_won", True),), at="close_date")


def open_pipeline(value: str | None, *where: Any) -> AsOf:
    return AsOf("pipeline", "end", value, tuple(where))


def _forecast(values: Mapping[str, float | None]) -> KpiNumbers:
    projected = (values["won"] or 0.0) + (values["open"] or 0.0)
    return KpiNumbers(projected, projected, None)


def _accuracy(values: Mapping[str, float | None]) -> KpiNumbers:
    forecast, actual = values["forecast"], values["actual"]
    if forecast is None or not actual:
        return KpiNumbers(None, forecast, actual)
    return KpiNumbers(100.0 * max(0.0, 1.0 - abs(forecast - actual) / actual), forecast, actual)


def _stage_spans(ctx: KpiContext) -> Any:
    """Each stay of a deal in a stage: when it entered, when it left (the next entry, or the close) and
    where it went.  Deals without stage history stay in their current stage from creation."""
    history, o = STAGE_HISTORY, OPPORTUNITY
    window = {"partition_by": history.c.opportunity_id, "order_by": (history.c.entered_at, history.c.id)}
    closing_stage = case((o.c.is_closed.is_(True), o.c.stage_id), else_=None)
    from_history = select(
        history.c.opportunity_id,
        o.c.owner_rep_id.label("rep_id"),
        history.c.stage_id,
        history.c.entered_at,
        func.coalesce(func.lead(history.c.entered_at).over(**window), o.c.closed_at).label("left_at"),
        func.coalesce(func.lead(history.c.stage_id).over(**window), closing_stage).label("next_stage_id"),
    ).select_from(history.join(o, o.c.id == history.c.opportunity_id)).where(o.c.is_deleted.is_(False))
    no_history = ~select(history.c.id).where(history.c.opportunity_id == o.c.id).exists()
    from_deal = select(
        o.c.id, o.c.owner_rep_id, o.c.stage_id, o.c.created_at, o.c.closed_at, closing_stage
    ).where(o.c.is_deleted.is_(False), no_history)
    return from_history.union_all(from_deal).subquery("stage_spans")


def _stage_leakage(ctx: KpiContext) -> Select:
    """Per open stage: deals that left the pipeline from it in the period (lost, or stale for
    ``stale_days`` — counted when they cross it) and deals that were in it at any time in the period."""
    spans, w = _stage_spans(ctx), ctx.windows()
    stage, following = STAGE.alias("span_stage"), STAGE.alias("next_stage")
    stale_days = ctx.config.kpis.stale_days
    crossing = add_days(spans.c.entered_at, literal(stale_days))
    now = literal(ctx.now, OPPORTUNITY.c.created_at.type)
    lost_here = and_(
        following.c.is_closed.is_(True),
        following.c.is_won.is_(False),
        spans.c.left_at >= w.c.start_utc,
        spans.c.left_at < w.c.end_utc,
    )
    stale_here = and_(
        or_(spans.c.left_at.is_(None), spans.c.left_at > crossing),
        crossing >= w.c.start_utc,
        crossing < w.c.end_utc,
        crossing <= now,
    )
    in_period = and_(spans.c.entered_at < w.c.end_utc, or_(spans.c.left_at.is_(None), spans.c.left_at > w.c.start_utc))
    leaked = func.count(func.distinct(case((or_(lost_here, stale_here), spans.c.opportunity_id), else_=None)))
    by_stage = ctx.dimension == "stage"
    stage_name = dimension_value(stage.c.name) if by_stage else literal_column("''")
    return (
        select(
            w.c.period_start,
            spans.c.rep_id,
            no_id().label("team_id"),
            stage_name.label("dimension_value"),
            leaked.label("leaked"),
            func.count(func.distinct(spans.c.opportunity_id)).label("exposed"),
        )
        .select_from(
            spans.join(stage, stage.c.id == spans.c.stage_id)
            .join(w, in_period)
            .outerjoin(following, following.c.id == spans.c.next_stage_id)
        )
        .where(stage.c.is_closed.is_(False), spans.c.entered_at <= now)
        .group_by(w.c.period_start, spans.c.rep_id, *([stage_name] if by_stage else []))
    )


LEAKED = Custom("stage_leakage", _stage_leakage, column="leaked")
EXPOSED = Custom("stage_leakage", _stage_leakage, column="exposed")


def _definitions() -> list[KpiDefinition]:
    return [
        KpiDefinition(
            key="win_rate",
            title="Win rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description="won ÷ (won + lost) × 100 over the deals closed in the period (by close date).",
            compute=Ratio(WON, CLOSED, 100.0),
            dimensions=DEAL_DIMENSIONS,
            references=("[000] #4", "[002]"),
        ),
        KpiDefinition(
            key="opportunity_win_ratio",
            title="Opportunity-to-win ratio",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "Of the opportunities created in the period, the share already won × 100 "
                "(a cohort, judged now)."
            ),
            compute=Ratio(deals(eq("is_won", True), at="created_at"), CREATED, 100.0),
            dimensions=DEAL_DIMENSIONS,
            references=("[001]",),
        ),
        KpiDefinition(
            key="lead_conversion_rate",
            title="Lead-to-sale conversion",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "won new-business deals ÷ leads created, both in the period, × 100 (renewals and upsells come "
                "from no lead). Worked example: 200 of 2,000 = 10%."
            ),
            compute=Ratio(deals(eq("is_won", True), eq("is_new_business", True)), LEADS_CREATED, 100.0),
            dimensions=LEAD_DIMENSIONS,
            references=("[004] #11",),
        ),
        KpiDefinition(
            key="lead_to_opportunity",
            title="Lead-to-opportunity ratio",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "leads converted to an opportunity in the period (by conversion time) "
                "÷ leads created in the period × 100."
            ),
            compute=Ratio(
                Aggregate("leads", None, (eq("is_converted_to_opportunity", True),), at="converted_at"),
                LEADS_CREATED,
                100.0,
            ),
            dimensions=LEAD_DIMENSIONS,
            references=("[000] #10",),
        ),
        KpiDefinition(
            key="qualified_opportunity_rate",
            title="Qualified opportunity rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "opportunities created in the period that reached an open stage later in their pipeline's order "
                "than its first open stage, or were won ÷ opportunities created × 100 (a cohort, judged now)."
            ),
            compute=Ratio(deals(eq("is_qualified", True), at="created_at"), CREATED, 100.0),
            dimensions=DEAL_DIMENSIONS,
            references=("[001]",),
        ),
        KpiDefinition(
            key="mql_to_sql",
            title="MQL → SQL conversion",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "Of the leads and contacts that became MQL in the period, those that have reached SQL ÷ all of "
                "them × 100 (a cohort, judged now; a contact converted from an MQL lead counts once)."
            ),
            compute=Ratio(
                Aggregate("lifecycle", None, (eq("reached_sql", True),), at="mql_at"),
                Aggregate("lifecycle", None, (), at="mql_at"),
                100.0,
            ),
            dimensions=LEAD_DIMENSIONS,
            references=("[002] drop-off",),
        ),
        KpiDefinition(
            key="quote_to_close",
            title="Quote-to-close ratio",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "won deals ÷ quotes sent (completed activities of kind proposal), in the period, × 100. "
                "Worked example: 30 of 150 = 20%."
            ),
            compute=Ratio(WON, Aggregate("activities", None, (eq("is_proposal_sent", True),), at="occurred_at"), 100.0),
            dimensions=("crm", "region"),
            references=("[004] #14",),
        ),
        KpiDefinition(
            key="pipeline_value",
            title="Pipeline value",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="Σ amount of the open pipeline as of the period's end.",
            compute=open_pipeline("amount"),
            dimensions=DEAL_DIMENSIONS,
            references=("[000] #3",),
        ),
        KpiDefinition(
            key="pipeline_volume",
            title="Pipeline volume",
            unit=Unit.COUNT,
            direction=Direction.UP,
            description="Count of the open pipeline as of the period's end.",
            compute=open_pipeline(None),
            dimensions=DEAL_DIMENSIONS,
            references=("[000] #3",),
        ),
        KpiDefinition(
            key="weighted_pipeline",
            title="Weighted pipeline",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="Σ amount × probability over the open pipeline at the period's end (0.2 × 100,000 = 20,000).",
            compute=open_pipeline("weighted"),
            dimensions=DEAL_DIMENSIONS,
            references=("[004] #12",),
        ),
        KpiDefinition(
            key="pipeline_coverage",
            title="Pipeline coverage",
            unit=Unit.RATIO,
            direction=Direction.UP,
            description=(
                "Σ amount of the open pipeline at the period's end whose close date falls in the next period ÷ "
                "the next period's quota (300k ÷ 100k = 3.0). No value without a quota."
            ),
            compute=Ratio(open_pipeline("amount", eq("close_in_next_period", True)), quota("revenue", offset=1)),
            scopes=("org", "team", "rep"),
            references=("common practice",),
        ),
        KpiDefinition(
            key="stage_leakage",
            title="Pipeline leakage by stage",
            unit=Unit.PERCENT,
            direction=Direction.DOWN,
            description=(
                "Per open stage: deals that left the pipeline from it in the period — closed lost, or open with "
                "no stage change for kpis.stale_days (default 30), counted when they cross it — ÷ deals that "
                "were in that stage at any time in the period × 100."
            ),
            compute=Ratio(LEAKED, EXPOSED, 100.0),
            required_dimension="stage",
            references=("[002] leakage and bottlenecks",),
        ),
        KpiDefinition(
            key="revenue_forecast",
            title="Projected revenue",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description=(
                "revenue won so far in the period + Σ amount × probability of the deals open at the period's "
                "end (now, for the running period) whose close date falls in the period."
            ),
            compute=Formula.of(_forecast, won=REVENUE, open=open_pipeline("weighted", eq("close_in_period", True))),
            dimensions=DEAL_DIMENSIONS,
            references=("[004] (Pipedrive Insights)",),
        ),
        KpiDefinition(
            key="forecast_accuracy",
            title="Forecast accuracy",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "100 × max(0, 1 − |forecast − actual| ÷ actual): forecast = revenue_forecast as the agent "
                "snapshotted it at the period's start (rebuilt from stage history for past periods; the CRM's "
                "commit category with kpis.forecast_source = 'crm_commit'), actual = revenue. Numerator: the "
                "forecast; denominator: the actual."
            ),
            compute=Formula.of(_accuracy, forecast=FORECAST_AT_START, actual=REVENUE),
            references=("[000] #1",),
        ),
    ]


@hookimpl
def register_kpis(register: Callable[[KpiDefinition], None]) -> None:
    for definition in _definitions():
        register(definition)
