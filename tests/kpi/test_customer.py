"""Customer and cost KPIs on hand-built contracts, deals and costs (org timezone Europe/Berlin).

Contracts run from their start day to the end of their last day; a customer at an instant is an account
with an active contract then.  January: customers at its start are A1, A2, A3, A4 and A6 (A5 starts on
10 January); A2 (last day 31 Jan) and A6 (last day 20 Jan) are gone by its end; A3 renewed on 16 Jan.
"""

from __future__ import annotations

import pytest

from agent.db import Database
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, kpi_rows, run_kpis

TZ = "Europe/Berlin"
JAN, FEB = "2024-01", "2024-02"
ANA, BEN, CY = "ana@example.com", "ben@example.com", "cy@example.com"


@pytest.fixture
def customer_db(db: Database) -> Database:
    data = KpiDataset(db, timezone=TZ)
    data.team("north"), data.team("south")
    data.rep(ANA, team="north"), data.rep(BEN, team="north"), data.rep(CY, team="south")
    a1, a2 = data.account("A1", region="EU", owner=ANA), data.account("A2", owner=ANA)
    a3, a4 = data.account("A3", owner=BEN), data.account("A4", owner=BEN)
    a5, a6 = data.account("A5", region="EU", owner=CY), data.account("A6")
    data.contract(a1, start="2023-01-01", end="2024-12-31", monthly=100)
    data.contract(a2, start="2023-06-01", end="2024-01-31", monthly=50)
    data.contract(a3, start="2023-01-01", end="2024-01-15", monthly=30)
    data.contract(a3, start="2024-01-16", end="2024-12-31", monthly=40)
    data.contract(a4, start="2023-03-01", cancelled="2024-02-10", monthly=60)
    data.contract(a5, start="2024-01-10", monthly=70)
    data.contract(a6, start="2023-01-01", end="2024-01-20", monthly=20)
    data.contract(a6, start="2024-01-01", monthly=999, status="Draft")
    data.deal(owner=ANA, amount=500, account=a1, created="2023-05-01 10:00", close="2023-05-10", status="won")
    data.deal(owner=ANA, amount=300, account=a1, created="2024-01-02 10:00", close="2024-01-20", status="won")
    data.deal(owner=CY, amount=200, account=a5, created="2024-01-02 10:00", close="2024-01-08", status="won")
    data.deal(owner=CY, amount=100, account=a5, created="2024-01-02 10:00", close="2024-01-25", status="won")
    data.deal(owner=ANA, amount=80, account=a2, created="2024-01-02 10:00", close="2024-02-05", status="won")
    data.cost("sales", "2024-01-01", "2024-02-01", 1000)
    data.cost("marketing", "2024-01-01", "2024-02-01", 500, team="south")
    data.cost("marketing", "2024-01-01", "2024-04-01", 910)  # a quarter: 31 of its 91 days are January's
    result = run_kpis(db, kpi_config(TZ, kpis={"history_periods": 2}), at="2024-02-20")
    assert result.failed == {}
    return db


def test_churn_retention_and_recurring_revenue(customer_db: Database) -> None:
    db = customer_db
    # lost in January: A2 and A6 of the 5 customers at its start → 40%; retention 60%
    assert_kpi(db, "churn_rate", JAN, "org", 40, numerator=2, denominator=5)
    assert_kpi(db, "retention_rate", JAN, "org", 60, numerator=3, denominator=5)
    assert_kpi(db, "churn_rate", JAN, "rep:ana@example.com", 50, numerator=1, denominator=2)  # A1 kept, A2 lost
    assert_kpi(db, "churn_rate", JAN, "rep:ben@example.com", 0, numerator=0, denominator=2)  # A3 renewed in time
    assert_kpi(db, "churn_rate", JAN, "unassigned", 100)  # A6 has no owner
    assert_kpi(db, "churn_rate", FEB, "rep:ben@example.com", 50)  # A4 cancelled on 10 Feb
    assert_kpi(db, "churn_rate", JAN, "rep:cy@example.com", None, numerator=0, denominator=0)
    # MRR at 1 Feb: A1 100 + A3 40 + A4 60 + A5 70 (the draft contract does not count) = 270
    assert_kpi(db, "mrr", JAN, "org", 270)
    assert_kpi(db, "mrr", JAN, "team:north", 200)
    assert_kpi(db, "arr", JAN, "org", 270 * 12)
    assert_kpi(db, "arpa", JAN, "org", 270 / 4, numerator=270, denominator=4)  # 4 customers at the end
    # CLV: customers on 1 Feb 2023 were A1, A3, A6; A6 is gone by 1 Feb 2024 → f = 1/3;
    # yearly revenue per customer 270 × 12 ÷ 4 = 810 → 810 × 3 = 2,430
    assert_kpi(db, "clv", JAN, "org", 2430, numerator=810, denominator=1 / 3)
    assert_kpi(db, "clv", JAN, "rep:ben@example.com", None)  # ben lost no customer of a year before: f = 0


def test_new_and_repeat_customers(customer_db: Database) -> None:
    db = customer_db
    assert_kpi(db, "new_customers", JAN, "org", 1)  # A5 (first win 8 Jan); A1 first won in May 2023
    assert_kpi(db, "new_customers", JAN, "rep:cy@example.com", 1)
    assert_kpi(db, "new_customers", FEB, "rep:ana@example.com", 1)  # A2
    # January: A1 (won before) and A5 (twice, but first in January) → 1 of 2 accounts
    assert_kpi(db, "repeat_purchase_rate", JAN, "org", 50, numerator=1, denominator=2)
    assert_kpi(db, "new_customers", JAN, "org", 1, dimension="", dimension_value="")


def test_costs_by_org_and_by_team_where_given(customer_db: Database) -> None:
    db = customer_db
    # January costs: sales 1,000 + south's marketing 500 + a third-ish of the quarter's 910 (31 ÷ 91 → 310)
    assert_kpi(db, "cac", JAN, "org", 1810, numerator=1810, denominator=1)
    assert_kpi(db, "cac", JAN, "team:south", 500, numerator=500, denominator=1)
    assert not [
        row
        for row in kpi_rows(db, "cac", JAN)
        if row["scope_kind"] == "team" and row["scope_id"] != _team_id(db, "south")
    ]
    # sales costs 1,000 ÷ revenue 300 + 200 + 100 = 600
    assert_kpi(db, "sales_cost_ratio", JAN, "org", 1000 / 600 * 100, numerator=1000, denominator=600)
    # February: only the quarter's marketing, 29 of 91 days → 290, for 1 new customer (A2)
    assert_kpi(db, "cac", FEB, "org", 290, numerator=290, denominator=1)
    # no cost for any team in February: the ratio has an org row only
    assert [row["scope_kind"] for row in kpi_rows(db, "sales_cost_ratio", FEB)] == ["org"]

def _team_id(db: Database, key: str) -> str:
    from sqlalchemy import select

    from agent.models import Team

    with db.engine.connect() as connection:
        return str(connection.execute(select(Team.__table__.c.id).where(Team.__table__.c.source_id == key)).scalar())
