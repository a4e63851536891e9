"""Built-in KPIs: outcome and revenue (catalog section "Outcome and revenue").

Won deals count in the period of their close date (a local date: the whole day).  Amounts are in the
home currency.  Line-item KPIs look at the line items of won deals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select

from agent.hookspecs import hookimpl
from agent.kpi import (
    Aggregate,
    Custom,
    Direction,
    Formula,
    KpiContext,
    KpiDefinition,
    KpiNumbers,
    Previous,
    Ratio,
    Unit,
    eq,
    quota,
    rep_quotas,
)
from agent.kpi.sources import OPPORTUNITY, no_id

DEAL_DIMENSIONS = ("lead_source", "region", "pipeline", "crm", "deal_type")
ORG_AND_TEAMS = ("org", "team")


def won(*extra: Any, value: str | None = "amount") -> Aggregate:
    """Σ amount (or count, ``value=None``) of won deals by close date."""
    return Aggregate("opportunities", value, (eq("is_won", True), *extra), at="close_date")


REVENUE = won()
DEALS_WON = won(value=None)
NEW_BUSINESS_REVENUE = won(eq("is_new_business", True))
NEW_BUSINESS_DEALS = won(eq("is_new_business", True), value=None)
ACTIVE_REPS = Aggregate("reps", None, (eq("active", True),))
SALES_COSTS = Aggregate("costs", "amount", (eq("kind", "sales"),))


def won_line_items(value: str, *where: Any) -> Aggregate:
    return Aggregate("line_items", value, tuple(where), at="close_date")


def _growth(values: Mapping[str, float | None]) -> KpiNumbers:
    current, before = values["current"] or 0.0, values["previous"] or 0.0
    change = current - before
    return KpiNumbers(change / before * 100 if before else None, change, before)


def _bookings(values: Mapping[str, float | None]) -> KpiNumbers:
    """New-business revenue less the average cost per deal for each new-business deal."""
    revenue, deals = values["new_business_revenue"] or 0.0, values["new_business_deals"] or 0.0
    costs, all_deals = values["sales_costs"], values["deals_won"] or 0.0
    if costs is None:
        return KpiNumbers(None, revenue, None)
    cost_per_deal = costs / all_deals if all_deals else 0.0
    charged = cost_per_deal * deals
    return KpiNumbers(revenue - charged, revenue, charged)


def _reps_at_quota(ctx: KpiContext) -> Select:
    """Per rep with a quota above 0: 1 when the rep's revenue reached it (rolled up: reps at quota)."""
    w, o = ctx.windows(), OPPORTUNITY
    quotas = rep_quotas(ctx, "revenue")
    revenue = (
        select(w.c.period_start, o.c.owner_rep_id.label("rep_id"), func.sum(o.c.amount_home).label("revenue"))
        .select_from(w.join(o, and_(o.c.close_date >= w.c.start_date, o.c.close_date < w.c.end_date)))
        .where(o.c.is_won.is_(True), o.c.is_deleted.is_(False), o.c.owner_rep_id.isnot(None))
        .group_by(w.c.period_start, o.c.owner_rep_id)
        .subquery("rep_revenue")
    )
    reached = func.coalesce(revenue.c.revenue, 0) >= quotas.c.amount
    return (
        select(
            quotas.c.period_start,
            quotas.c.rep_id,
            no_id().label("team_id"),
            case((reached, literal(1)), else_=literal(0)).label("at_quota"),
            literal(1).label("with_quota"),
        )
        .select_from(
            quotas.outerjoin(
                revenue, and_(revenue.c.period_start == quotas.c.period_start, revenue.c.rep_id == quotas.c.rep_id)
            )
        )
        .where(quotas.c.amount > 0)
    )


REPS_AT_QUOTA = Custom("reps_at_quota", _reps_at_quota, column="at_quota")
REPS_WITH_QUOTA = Custom("reps_at_quota", _reps_at_quota, column="with_quota")


def _definitions() -> list[KpiDefinition]:
    return [
        KpiDefinition(
            key="revenue",
            title="Revenue",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="Σ amount (home currency) of deals won, by close date.",
            compute=REVENUE,
            dimensions=DEAL_DIMENSIONS,
            references=("[001] volume", "[002] revenue", "[004] #15"),
        ),
        KpiDefinition(
            key="deals_won",
            title="Deals closed won",
            unit=Unit.COUNT,
            direction=Direction.UP,
            description="Count of deals won, by close date.",
            compute=DEALS_WON,
            dimensions=DEAL_DIMENSIONS,
            references=("[004] goals example",),
        ),
        KpiDefinition(
            key="avg_deal_size",
            title="Average deal size",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="revenue ÷ deals_won; no value without won deals.",
            compute=Ratio(REVENUE, DEALS_WON),
            dimensions=DEAL_DIMENSIONS,
            references=("[002]", "[004] #3"),
        ),
        KpiDefinition(
            key="sales_growth",
            title="Sales growth vs previous period",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "(revenue − revenue of the previous period) ÷ revenue of the previous period × 100; the running "
                "period compares its revenue to date with the same number of days at the start of the previous "
                "one. No value when the previous revenue is 0."
            ),
            compute=Formula.of(_growth, current=REVENUE, previous=Previous(REVENUE)),
            dimensions=DEAL_DIMENSIONS,
            references=("[004] #1",),
        ),
        KpiDefinition(
            key="sales_per_rep",
            title="Sales per rep",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="revenue ÷ number of reps marked active who belong to the scope (org: all active reps).",
            compute=Ratio(REVENUE, ACTIVE_REPS),
            scopes=("org", "team", "rep"),
            references=("[004] #9",),
        ),
        KpiDefinition(
            key="quota_attainment",
            title="Quota attainment",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "revenue ÷ quota × 100. Quotas come from config; a team's quota is its own where given, else the "
                "sum of its reps'; the org's is the sum of its teams' and of reps in no team. A quota given for a "
                "longer span counts pro rata by days. No value without a quota."
            ),
            compute=Ratio(REVENUE, quota("revenue"), 100.0),
            scopes=("org", "team", "rep"),
            references=("[004] #13",),
        ),
        KpiDefinition(
            key="reps_at_quota",
            title="Share of reps at quota",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description="reps whose revenue reached their own quota ÷ reps with a quota (above 0) × 100.",
            compute=Ratio(REPS_AT_QUOTA, REPS_WITH_QUOTA, 100.0),
            scopes=ORG_AND_TEAMS,
            references=("[002]",),
        ),
        KpiDefinition(
            key="bookings",
            title="Net sales bookings",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description=(
                "Σ amount of won new-business deals − average cost per deal × number of those deals, where the "
                "cost per deal = the period's sales costs ÷ all deals won. Org scope, and teams whose costs are "
                "given per team. Numerator: new-business revenue; denominator: the costs charged to it."
            ),
            compute=Formula.of(
                _bookings,
                required=("sales_costs",),
                new_business_revenue=NEW_BUSINESS_REVENUE,
                new_business_deals=NEW_BUSINESS_DEALS,
                deals_won=DEALS_WON,
                sales_costs=SALES_COSTS,
            ),
            scopes=ORG_AND_TEAMS,
            references=("[004] #7",),
        ),
        KpiDefinition(
            key="profit_margin",
            title="Average profit margin",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "Over the line items of won deals whose product has a unit cost in [unit_costs]: (Σ net line "
                "total − Σ unit cost × quantity) ÷ Σ net line total × 100. Lines without a unit cost are left "
                "out of both terms rather than counted as free."
            ),
            compute=Ratio(
                won_line_items("margin", eq("is_costed", True)), won_line_items("net", eq("is_costed", True)), 100.0
            ),
            dimensions=(*DEAL_DIMENSIONS, "product"),
            references=("[004] #2", "[001] profitability"),
        ),
        KpiDefinition(
            key="discount_rate",
            title="Discount given",
            unit=Unit.PERCENT,
            direction=Direction.DOWN,
            description=(
                "(1 − Σ net line total ÷ Σ list price × quantity) × 100 over the line items of won deals; "
                "numerator: Σ (list − net), denominator: Σ list. Watch that high discounts do not buy volume."
            ),
            compute=Ratio(won_line_items("discount"), won_line_items("list_total"), 100.0),
            dimensions=(*DEAL_DIMENSIONS, "product"),
            references=("[001] discount application",),
        ),
        KpiDefinition(
            key="product_performance",
            title="Revenue by product",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="Σ net line total of the line items of won deals, per product.",
            compute=won_line_items("net"),
            required_dimension="product",
            references=("[000] #6",),
        ),
        KpiDefinition(
            key="sales_by_location",
            title="Sales volume by location",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "Σ amount of won deals whose account is in the region "
                "÷ Σ amount of all won deals × 100, per region."
            ),
            compute=Ratio(REVENUE, REVENUE, 100.0, denominator_sliced=False),
            required_dimension="region",
            references=("[004] #17",),
        ),
        KpiDefinition(
            key="upsell_rate",
            title="Upsell rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description="revenue of won upsell deals ÷ revenue × 100.",
            compute=Ratio(won(eq("deal_type", "upsell")), REVENUE, 100.0),
            dimensions=("lead_source", "region", "pipeline", "crm"),
            references=("[004] #18",),
        ),
        KpiDefinition(
            key="cross_sell_rate",
            title="Cross-sell rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description="revenue of won cross-sell deals ÷ revenue × 100.",
            compute=Ratio(won(eq("deal_type", "cross_sell")), REVENUE, 100.0),
            dimensions=("lead_source", "region", "pipeline", "crm"),
            references=("[004] #18",),
        ),
    ]


@hookimpl
def register_kpis(register: Callable[[KpiDefinition], None]) -> None:
    for definition in _definitions():
        register(definition)


__all__ = ["ACTIVE_REPS", "DEALS_WON", "REVENUE", "register_kpis", "won"]
