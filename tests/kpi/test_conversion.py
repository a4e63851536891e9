"""Conversion and pipeline KPIs, with the catalog's worked examples and hand-worked stage histories.

Org timezone Asia/Jakarta (UTC+7).  Each rep carries one story, so each assertion reads on its own:
ana — 2,000 leads and 200 won new-business deals (lead conversion 10%); ben — 30 won deals for 150
quotes sent (quote-to-close 20%); carl — a 100,000 deal at 20% (weighted pipeline 20,000); dana — 300k
closing next month against a 100k quota (coverage 3.0); eve — opportunities created either side of
local midnight; frank — leads and lifecycle dates; gina — stage history for leakage; harold — a deal whose
past stage and amount come from stage history; ivan — a forecast snapshotted at the period start.
"""

from __future__ import annotations

import pytest

from agent.db import Database
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, run_kpis

TZ = "Asia/Jakarta"
JAN, FEB = "2024-01", "2024-02"
REPS = ("ana", "ben", "carl", "dana", "eve", "frank", "gina", "harold", "ivan")


def email(name: str) -> str:
    return f"{name}@example.com"


def _worked_examples(data: KpiDataset) -> None:
    with data.bulk():
        for number in range(2000):
            data.lead(owner=email("ana"), created=f"2024-01-{number % 28 + 1:02d} 10:00")
        for _ in range(200):
            data.deal(owner=email("ana"), created="2024-01-02 10:00", close="2024-01-25", status="won")
        for _ in range(50):
            data.deal(owner=email("ana"), created="2024-01-02 10:00", close="2024-01-26", status="lost")
        for _ in range(30):
            data.deal(
                owner=email("ben"), created="2024-01-02 10:00", close="2024-01-25", status="won", deal_type="upsell"
            )
        for _ in range(150):
            data.activity("proposal", owner=email("ben"), at="2024-01-15 10:00", direction="none")
    data.deal(
        owner=email("carl"), amount=100_000, created="2024-01-05 10:00", close="2024-03-15", stage="Qualification"
    )
    data.deal(owner=email("dana"), amount=200_000, created="2024-01-06 10:00", close="2024-02-10", stage="Proposal")
    data.deal(owner=email("dana"), amount=100_000, created="2024-01-06 10:00", close="2024-02-20", stage="Negotiation")
    data.quota(100_000, "2024-02-01", "2024-03-01", rep=email("dana"))


def _cohorts_and_leads(data: KpiDataset) -> None:
    # 23:30 on 31 Jan in Jakarta is January; 00:30 on 1 Feb is February although it is still 31 Jan in UTC.
    data.deal(owner=email("eve"), created="2024-01-31 23:30", close="2024-02-10", status="won")
    data.deal(owner=email("eve"), created="2024-02-01 00:30", close="2024-03-30", stage="Proposal")
    data.deal(owner=email("eve"), created="2024-02-02 10:00", close="2024-03-30", stage="Prospecting")
    went_back = data.deal(owner=email("eve"), created="2024-02-03 10:00", close="2024-03-30", stage="Prospecting")
    data.stage_change(went_back, "Prospecting", "2024-02-03 10:00")
    data.stage_change(went_back, "Qualification", "2024-02-05 10:00")
    data.stage_change(went_back, "Prospecting", "2024-02-06 10:00")
    converted_deal = data.deal(owner=email("frank"), created="2024-01-20 10:00", close="2024-04-01")
    for day in ("05", "06", "07", "08"):
        data.lead(owner=email("frank"), created=f"2024-01-{day} 10:00")
    data.lead(
        owner=email("frank"), created="2023-12-20 10:00", converted_at="2024-01-20 10:00", converted_deal=converted_deal
    )
    data.lead(
        owner=email("frank"), created="2023-12-21 10:00", converted_at="2024-02-03 10:00", converted_deal=converted_deal
    )
    contact = data.contact(owner=email("frank"), mql="2024-01-10 10:00", sql="2024-01-12 10:00")
    data.lead(
        owner=email("frank"),
        created="2023-12-01 10:00",
        mql="2024-01-10 10:00",
        sql="2024-01-12 10:00",
        converted_contact=contact,
    )
    data.lead(owner=email("frank"), created="2023-12-01 10:00", mql="2024-01-11 10:00")
    data.contact(owner=email("frank"), mql="2024-01-15 10:00", sql="2024-02-01 10:00")


def _histories(data: KpiDataset) -> None:
    lost = data.deal(
        owner=email("gina"), created="2023-12-01 10:00", close="2024-01-10", status="lost", closed_at="2024-01-10 15:00"
    )
    data.stage_change(lost, "Prospecting", "2023-12-01 10:00")
    data.stage_change(lost, "Qualification", "2023-12-20 10:00")
    data.stage_change(lost, "Closed Lost", "2024-01-10 15:00")
    stuck = data.deal(owner=email("gina"), created="2023-12-05 10:00", stage="Qualification")
    data.stage_change(stuck, "Prospecting", "2023-12-05 10:00")
    data.stage_change(stuck, "Qualification", "2024-01-02 09:00")
    idle = data.deal(owner=email("gina"), created="2023-11-20 10:00", stage="Prospecting")
    data.stage_change(idle, "Prospecting", "2023-11-20 10:00")
    moved = data.deal(
        owner=email("harold"), amount=50_000, created="2024-01-03 10:00", close="2024-02-28", stage="Negotiation"
    )
    data.stage_change(moved, "Prospecting", "2024-01-03 10:00", amount=40_000)
    data.stage_change(moved, "Negotiation", "2024-02-05 10:00", amount=50_000)
    won = data.deal(
        owner=email("ivan"),
        amount=10_000,
        created="2023-12-10 10:00",
        close="2024-01-20",
        status="won",
        closed_at="2024-01-20 12:00",
    )
    data.stage_change(won, "Negotiation", "2023-12-10 10:00")
    data.stage_change(won, "Closed Won", "2024-01-20 12:00")


@pytest.fixture
def conversion_db(db: Database) -> Database:
    data = KpiDataset(db, timezone=TZ)
    data.team("north")
    for name in REPS:
        data.rep(email(name), team="north")
    _worked_examples(data)
    _cohorts_and_leads(data)
    _histories(data)
    result = run_kpis(db, kpi_config(TZ, kpis={"history_periods": 3}), at="2024-02-15")
    assert result.failed == {}
    return db


def test_catalog_worked_examples(conversion_db: Database) -> None:
    db = conversion_db
    # [004] #11: 200 won new-business deals of 2,000 leads = 10% (ben's 30 upsells come from no lead)
    assert_kpi(db, "lead_conversion_rate", JAN, "rep:ana@example.com", 10, numerator=200, denominator=2000)
    # org: ana's 200 + ivan's won deal ÷ ana's 2,000 + frank's 4 January leads
    assert_kpi(db, "lead_conversion_rate", JAN, "org", 201 / 2004 * 100, numerator=201, denominator=2004)
    # [004] #14: 30 won of 150 quotes sent = 20%
    assert_kpi(db, "quote_to_close", JAN, "rep:ben@example.com", 20, numerator=30, denominator=150)
    # [004] #12: 0.2 × 100,000 = 20,000 at the end of January
    assert_kpi(db, "weighted_pipeline", JAN, "rep:carl@example.com", 20_000)
    assert_kpi(db, "pipeline_value", JAN, "rep:carl@example.com", 100_000)
    assert_kpi(db, "pipeline_volume", JAN, "rep:carl@example.com", 1)
    # coverage: 200k + 100k closing in February ÷ February's quota of 100k = 3.0
    assert_kpi(db, "pipeline_coverage", JAN, "rep:dana@example.com", 3.0, numerator=300_000, denominator=100_000)
    assert_kpi(db, "pipeline_coverage", JAN, "rep:carl@example.com", None)  # no quota: no value


def test_win_rate_and_cohorts_at_local_midnight(conversion_db: Database) -> None:
    db = conversion_db
    assert_kpi(db, "win_rate", JAN, "rep:ana@example.com", 80, numerator=200, denominator=250)  # 200 ÷ (200 + 50)
    # eve: created 23:30 on 31 Jan (January) and won since; February has 3, none won
    assert_kpi(db, "opportunity_win_ratio", JAN, "rep:eve@example.com", 100, numerator=1, denominator=1)
    assert_kpi(db, "opportunity_win_ratio", FEB, "rep:eve@example.com", 0, numerator=0, denominator=3)
    # February: the Proposal deal and the one that reached Qualification before going back qualify
    assert_kpi(db, "qualified_opportunity_rate", FEB, "rep:eve@example.com", 2 / 3 * 100, numerator=2, denominator=3)
    assert_kpi(db, "qualified_opportunity_rate", JAN, "rep:eve@example.com", 100)  # won counts as qualified


def test_lead_and_lifecycle_ratios(conversion_db: Database) -> None:
    db = conversion_db
    # frank: 4 leads created in January; 1 converted to a deal in January (created in December)
    assert_kpi(db, "lead_to_opportunity", JAN, "rep:frank@example.com", 25, numerator=1, denominator=4)
    # February: 1 converted, 0 created → no value
    assert_kpi(db, "lead_to_opportunity", FEB, "rep:frank@example.com", None, numerator=1, denominator=0)
    # MQL in January: the lead (its converted contact is the same person), another lead, a contact → 3;
    # reached SQL: the first lead and the contact (in February, known now) → 2
    assert_kpi(db, "mql_to_sql", JAN, "rep:frank@example.com", 2 / 3 * 100, numerator=2, denominator=3)


def test_stage_leakage_counts_lost_and_stale_deals_per_stage(conversion_db: Database) -> None:
    db = conversion_db
    gina = "rep:gina@example.com"
    # January, Qualification: the lost deal (left it on 10 Jan) and the stuck one (entered 2 Jan) were in it;
    # only the lost one leaked → 1 ÷ 2
    assert_kpi(
        db, "stage_leakage", JAN, gina,
        50, numerator=1, denominator=2,
        dimension="stage", dimension_value="Qualification",
    )
    # January, Prospecting: the stuck deal (until 2 Jan) and the idle one (stale since 20 Dec, counted then) → 0 ÷ 2
    assert_kpi(
        db, "stage_leakage", JAN, gina,
        0, numerator=0, denominator=2,
        dimension="stage", dimension_value="Prospecting",
    )
    # February: the stuck deal crosses 30 days in Qualification on 1 Feb 09:00 → 1 ÷ 1
    assert_kpi(
        db, "stage_leakage", FEB, gina,
        100, numerator=1, denominator=1,
        dimension="stage", dimension_value="Qualification",
    )


def test_pipeline_rebuilt_from_stage_history_and_forecasts(conversion_db: Database) -> None:
    db = conversion_db
    harold = "rep:harold@example.com"
    # At the end of January harold's deal was in Prospecting at 40,000 (stage history): 0.1 × 40,000
    assert_kpi(db, "pipeline_value", JAN, harold, 40_000)
    assert_kpi(db, "weighted_pipeline", JAN, harold, 4_000)
    # February is running: the live state, Negotiation at 50,000 × 0.8
    assert_kpi(db, "weighted_pipeline", FEB, harold, 40_000)
    # revenue_forecast, February: nothing won yet + dana's 200k × 0.5 + 100k × 0.8 closing in February
    assert_kpi(db, "revenue_forecast", FEB, "rep:dana@example.com", 180_000)
    # ivan: at 1 Jan his deal was in Negotiation (0.8) closing 20 Jan: forecast 8,000; actual 10,000
    # → 100 × (1 − |8,000 − 10,000| ÷ 10,000) = 80
    assert_kpi(db, "forecast_accuracy", JAN, "rep:ivan@example.com", 80, numerator=8_000, denominator=10_000)
    assert_kpi(db, "revenue_forecast", JAN, "rep:ivan@example.com", 10_000)  # all of it won in January
