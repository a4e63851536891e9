"""Outcome and revenue KPIs on a small hand-built dataset, with the arithmetic written out.

Org timezone Asia/Jakarta (UTC+7): a deal whose close date is 31 January counts in January although its
day ends at 17:00 UTC on 31 January; one closing on 1 February counts in February.  Ben moved from team
south to team north: his deals count for north (membership is the current one).  One deal has no owner
(org and "unassigned" only), one is in EUR (its home-currency amount counts), one is deleted.
"""

from __future__ import annotations

import pytest

from agent.db import Database
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, run_kpis

TZ = "Asia/Jakarta"
JAN, FEB = "2024-01", "2024-02"


@pytest.fixture
def revenue_db(db: Database) -> Database:
    data = KpiDataset(db, timezone=TZ)
    data.team("north"), data.team("south")
    data.rep("ana@example.com", team="north")
    data.rep("ben@example.com", team="south")
    data.rep("cy@example.com", team="south")
    data.move_rep("ben@example.com", "north")
    eu = data.account("Acme", region="EU")
    apac = data.account("Batik", region="APAC")
    big = data.deal(
        owner="ana@example.com", amount=100, close="2024-01-31", status="won", account=eu, lead_source="web"
    )
    data.deal(owner="ana@example.com", amount=300, close="2024-01-10", status="won", deal_type="upsell")
    data.deal(owner="ben@example.com", amount=200, close="2024-01-15", status="won")
    data.deal(
        owner="cy@example.com",
        amount=100,
        currency="EUR",
        amount_home=110,
        close="2024-01-20",
        status="won",
        deal_type="cross_sell",
        account=apac,
    )
    data.deal(owner=None, amount=50, close="2024-01-05", status="won")
    data.deal(owner="ana@example.com", amount=80, close="2024-01-12", status="lost")
    data.deal(owner="cy@example.com", amount=999, close="2024-02-01", status="won", deal_type="renewal")
    data.deal(owner="ana@example.com", amount=400, created="2023-11-01 09:00", close="2023-12-31", status="won")
    data.deal(owner="ana@example.com", amount=1000, close="2024-01-10", status="won", deleted=True)
    widget, gadget = data.product("Widget", sku="W-1"), data.product("Gadget")
    data.line_item(big, product=widget, quantity=2, list_price=60, net_total=100)
    data.line_item(big, product=gadget, quantity=1, list_price=50, net_total=40)
    data.quota(500, "2024-01-01", "2024-02-01", rep="ana@example.com")
    data.quota(100, "2024-01-01", "2024-02-01", rep="ben@example.com")
    data.quota(200, "2024-01-01", "2024-02-01", team="south")
    data.cost("sales", "2024-01-01", "2024-02-01", 380)
    config = kpi_config(TZ, kpis={"history_periods": 3}, unit_costs={"widget": 20})
    result = run_kpis(db, config, at="2024-02-15", dimensions=("region",))
    assert result.failed == {}
    return db


def test_revenue_counts_won_deals_by_local_close_date_in_home_currency(revenue_db: Database) -> None:
    db = revenue_db
    # January: 100 (31 Jan, the last local day) + 300 + 200 + 110 (EUR 100 at home value) + 50 (no owner) = 760;
    # the 1 February deal (999) and the deleted one (1000) are not in it.
    assert_kpi(db, "revenue", JAN, "org", 760, numerator=760)
    assert_kpi(db, "revenue", JAN, "team:north", 600)  # ana 100 + 300, ben 200 (ben moved here from south)
    assert_kpi(db, "revenue", JAN, "team:south", 110)  # cy only
    assert_kpi(db, "revenue", JAN, "rep:ana@example.com", 400)
    assert_kpi(db, "revenue", JAN, "unassigned", 50)
    assert_kpi(db, "revenue", FEB, "org", 999)
    assert_kpi(db, "deals_won", JAN, "org", 5)
    assert_kpi(db, "deals_won", JAN, "team:north", 3)
    assert_kpi(db, "revenue", JAN, "org", 100, dimension="region", dimension_value="EU")
    assert_kpi(db, "revenue", JAN, "org", 550, dimension="region", dimension_value="(none)")  # 300 + 200 + 50


def test_average_deal_size_and_sales_per_rep_divide_rolled_up_sums(revenue_db: Database) -> None:
    db = revenue_db
    assert_kpi(db, "avg_deal_size", JAN, "org", 760 / 5, numerator=760, denominator=5)  # 152
    assert_kpi(db, "avg_deal_size", JAN, "team:north", 600 / 3)  # 200, not the mean of ana's 200 and ben's 200
    # three active reps in the org, two in north
    assert_kpi(db, "sales_per_rep", JAN, "org", 760 / 3, numerator=760, denominator=3)
    assert_kpi(db, "sales_per_rep", JAN, "team:north", 300, numerator=600, denominator=2)


def test_sales_growth_compares_with_the_previous_period_and_the_same_span_when_running(revenue_db: Database) -> None:
    db = revenue_db
    # January 760 vs December 400: (760 − 400) ÷ 400 × 100 = 90
    assert_kpi(db, "sales_growth", JAN, "org", 90, numerator=360, denominator=400)
    # February runs (at 15 Feb): 999 to date vs 1–15 January: 300 (10th) + 200 (15th) + 50 (5th) = 550
    assert_kpi(db, "sales_growth", FEB, "org", (999 - 550) / 550 * 100, numerator=449, denominator=550)
    # cy had nothing in December: no value, not a division by zero
    assert_kpi(db, "sales_growth", JAN, "rep:cy@example.com", None, numerator=110, denominator=0)


def test_quota_attainment_uses_team_quota_where_given_else_the_sum_of_reps(revenue_db: Database) -> None:
    db = revenue_db
    assert_kpi(db, "quota_attainment", JAN, "rep:ana@example.com", 80, numerator=400, denominator=500)
    assert_kpi(db, "quota_attainment", JAN, "rep:ben@example.com", 200)
    assert_kpi(db, "quota_attainment", JAN, "team:north", 100, numerator=600, denominator=600)  # 500 + 100
    assert_kpi(db, "quota_attainment", JAN, "team:south", 55, numerator=110, denominator=200)  # its own
    assert_kpi(db, "quota_attainment", JAN, "org", 95, numerator=760, denominator=800)  # 600 + 200
    assert_kpi(db, "quota_attainment", JAN, "rep:cy@example.com", None)  # no quota
    # reps at quota: ana 80% no, ben 200% yes → 1 of 2
    assert_kpi(db, "reps_at_quota", JAN, "org", 50, numerator=1, denominator=2)
    assert_kpi(db, "reps_at_quota", JAN, "team:south", None, numerator=0, denominator=0)


def test_bookings_charge_the_average_sales_cost_per_deal(revenue_db: Database) -> None:
    # new business won: 100 + 200 + 50 = 350 in 3 deals; cost per deal 380 ÷ 5 won = 76 → 350 − 3 × 76 = 122
    assert_kpi(revenue_db, "bookings", JAN, "org", 122, numerator=350, denominator=228)


def test_line_item_kpis(revenue_db: Database) -> None:
    db = revenue_db
    # Widget: 2 × list 60 = 120, net 100, unit cost 20 → margin (100 − 40) ÷ 100; Gadget has no unit cost
    assert_kpi(db, "profit_margin", JAN, "org", 60, numerator=60, denominator=100)
    # discount: list 120 + 50 = 170, net 100 + 40 = 140 → (1 − 140 ÷ 170) × 100
    assert_kpi(db, "discount_rate", JAN, "org", 30 / 170 * 100, numerator=30, denominator=170)
    assert_kpi(db, "product_performance", JAN, "org", 100, dimension="product", dimension_value="Widget")
    assert_kpi(db, "product_performance", JAN, "org", 40, dimension="product", dimension_value="Gadget")


def test_location_and_deal_type_shares(revenue_db: Database) -> None:
    db = revenue_db
    assert_kpi(
        db, "sales_by_location", JAN, "org",
        100 / 760 * 100, numerator=100, denominator=760,
        dimension="region", dimension_value="EU",
    )
    assert_kpi(db, "sales_by_location", JAN, "org", 110 / 760 * 100, dimension="region", dimension_value="APAC")
    assert_kpi(db, "upsell_rate", JAN, "org", 300 / 760 * 100, numerator=300, denominator=760)
    assert_kpi(db, "cross_sell_rate", JAN, "org", 110 / 760 * 100)
    assert_kpi(db, "cross_sell_rate", JAN, "rep:ben@example.com", 0, numerator=0, denominator=200)
