"""Built-in KPIs: customer and cost (catalog section "Customer and cost").

A customer at an instant is an account with a contract active then (started by then, its last day not
before, not cancelled on an earlier day).  Customer KPIs are per team or rep through the account owner
(the contract's owner where the account has none).  Costs come from config, booked to a span; they are
per team where config names one, else the org's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.hookspecs import hookimpl
from agent.kpi import (
    Aggregate,
    AsOf,
    Derived,
    Direction,
    Formula,
    KpiDefinition,
    KpiNumbers,
    Ratio,
    Unit,
    eq,
    isin,
    ratio,
)

ACCOUNT_DIMENSIONS = ("region", "crm")
ORG_AND_TEAMS = ("org", "team")

NEW_CUSTOMERS = Aggregate("first_wins", None, (), at="close_date")
REVENUE = Aggregate("opportunities", "amount", (eq("is_won", True),), at="close_date")
SALES_COSTS = Aggregate("costs", "amount", (eq("kind", "sales"),))
ACQUISITION_COSTS = Aggregate("costs", "amount", (isin("kind", ("sales", "marketing")),))
MRR = AsOf("contracts", "end", "monthly_value")


def customers(flag: str) -> Aggregate:
    return Aggregate("customers", flag)


def _retention(inputs: Mapping[str, KpiNumbers]) -> KpiNumbers:
    churn = inputs["churn_rate"]
    if churn.numerator is None or churn.denominator is None:
        return KpiNumbers(None)
    return ratio(churn.denominator - churn.numerator, churn.denominator, 100.0)


def _arr(inputs: Mapping[str, KpiNumbers]) -> KpiNumbers:
    mrr = inputs["mrr"].value
    return KpiNumbers(None if mrr is None else mrr * 12, None if mrr is None else mrr * 12, None)


def _clv(values: Mapping[str, float | None]) -> KpiNumbers:
    """(ARR ÷ customers at the end) × 1 ÷ f, with f the share of the customers of a year before that
    were lost by the end; numerator: yearly revenue per customer, denominator: f."""
    mrr, at_end = values["mrr"] or 0.0, values["at_end"] or 0.0
    before, lost = values["year_before_end"] or 0.0, values["lost_in_year"] or 0.0
    if not at_end or not before or not lost:
        return KpiNumbers(None, mrr * 12 / at_end if at_end else None, lost / before if before else None)
    yearly_per_customer, churned_share = mrr * 12 / at_end, lost / before
    return KpiNumbers(yearly_per_customer / churned_share, yearly_per_customer, churned_share)


def _definitions() -> list[KpiDefinition]:
    return [
        KpiDefinition(
            key="new_customers",
            title="New customers",
            unit=Unit.COUNT,
            direction=Direction.UP,
            description="Accounts whose first won deal closes in the period (with or without a contract).",
            compute=NEW_CUSTOMERS,
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[000] #7",),
        ),
        KpiDefinition(
            key="cac",
            title="Customer acquisition cost",
            unit=Unit.MONEY,
            direction=Direction.DOWN,
            description=(
                "(sales + marketing costs of the period) ÷ new_customers. Org scope, and teams whose costs are "
                "given per team; no value without costs or new customers."
            ),
            compute=Ratio(ACQUISITION_COSTS, NEW_CUSTOMERS, numerator_required=True),
            scopes=ORG_AND_TEAMS,
            references=("[000] #7", "[004] #4"),
        ),
        KpiDefinition(
            key="sales_cost_ratio",
            title="Sales cost to sales volume",
            unit=Unit.PERCENT,
            direction=Direction.DOWN,
            description="sales costs ÷ revenue × 100. Org scope, and teams whose costs are given per team.",
            compute=Ratio(SALES_COSTS, REVENUE, 100.0, numerator_required=True),
            scopes=ORG_AND_TEAMS,
            references=("[001]",),
        ),
        KpiDefinition(
            key="churn_rate",
            title="Customer churn rate",
            unit=Unit.PERCENT,
            direction=Direction.DOWN,
            description=(
                "customers at the period's start that are no longer customers at its end "
                "÷ customers at its start × 100."
            ),
            compute=Ratio(customers("lost"), customers("at_start"), 100.0),
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[000] #9", "[004] #6"),
        ),
        KpiDefinition(
            key="retention_rate",
            title="Customer retention rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "100 − churn_rate = customers kept ÷ customers at the period's start × 100. ([004] #6 says "
                "1 ÷ churn, which is wrong: a 5% churn would give 20.)"
            ),
            compute=Derived(("churn_rate",), _retention),
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[004] #6",),
        ),
        KpiDefinition(
            key="repeat_purchase_rate",
            title="Repeat purchase rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description=(
                "accounts with a won deal in the period that had won one before "
                "÷ accounts with a won deal in the period × 100."
            ),
            compute=Ratio(Aggregate("account_wins", "is_repeat"), Aggregate("account_wins", "accounts"), 100.0),
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[001]",),
        ),
        KpiDefinition(
            key="mrr",
            title="Monthly recurring revenue",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="Σ monthly value of the contracts active at the period's end.",
            compute=MRR,
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[004] #15",),
        ),
        KpiDefinition(
            key="arr",
            title="Annual recurring revenue",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="mrr × 12.",
            compute=Derived(("mrr",), _arr),
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[004] #15",),
        ),
        KpiDefinition(
            key="arpa",
            title="Average revenue per account",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description="mrr ÷ customers at the period's end.",
            compute=Ratio(MRR, customers("at_end")),
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[004] #16",),
        ),
        KpiDefinition(
            key="clv",
            title="Customer lifetime value",
            unit=Unit.MONEY,
            direction=Direction.UP,
            description=(
                "(arr ÷ customers at the period's end) × (1 ÷ f), where f = customers lost in the 12 months "
                "before the period's end ÷ customers 12 months before it; no value when f = 0."
            ),
            compute=Formula.of(
                _clv,
                mrr=MRR,
                at_end=customers("at_end"),
                year_before_end=customers("year_before_end"),
                lost_in_year=customers("lost_in_year"),
            ),
            dimensions=ACCOUNT_DIMENSIONS,
            references=("[000] #8", "[004] #5"),
        ),
    ]


@hookimpl
def register_kpis(register: Callable[[KpiDefinition], None]) -> None:
    for definition in _definitions():
        register(definition)
