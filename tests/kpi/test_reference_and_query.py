"""Config data into the cache, reading values back, significance, and the kpis command's printer."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from sqlalchemy import select

from agent.db import Database
from agent.kpi import kpi_significance, load_reference_data, query_kpi_values
from agent.kpi.cli import _table
from agent.models import Cost, Quota, Rep, Team
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, run_kpis

TEAMS = {
    "north": {"name": "North", "members": ["ana@example.com", "ben@example.com"], "manager": "ana@example.com"},
    "south": {"name": "South", "members": ["cy@example.com"], "region": "APAC"},
}


def _config(**extra: object) -> object:
    return kpi_config(
        "Asia/Jakarta",
        kpis={"history_periods": 2},
        teams=TEAMS,
        quotas=[
            {"rep": "ana@example.com", "start": "2024-01-01", "amount": 100},
            {"team": "south", "grain": "quarter", "start": "2024-01-01", "amount": 300},
        ],
        costs=[{"kind": "sales", "start": "2024-01-01", "amount": 50, "team": "south"}],
        **extra,
    )


def test_reference_data_is_written_and_rewritten(db: Database) -> None:
    counts = load_reference_data(db, _config())
    assert (counts.teams, counts.reps_assigned, counts.quotas, counts.costs) == (2, 3, 2, 1)
    load_reference_data(db, _config())  # idempotent
    moved = {
        **TEAMS,
        "south": {**TEAMS["south"], "members": ["cy@example.com", "ben@example.com"]},
        "north": {**TEAMS["north"], "members": ["ana@example.com"]},
    }
    load_reference_data(db, kpi_config(teams=moved))
    with db.engine.connect() as connection:
        teams = dict(connection.execute(select(Team.__table__.c.id, Team.__table__.c.source_id)).all())
        members = {
            email: teams.get(team)
            for email, team in connection.execute(select(Rep.__table__.c.email, Rep.__table__.c.team_id))
        }
        quotas = connection.execute(select(Quota.__table__)).all()
        costs = connection.execute(select(Cost.__table__)).all()
    assert members == {"ana@example.com": "north", "ben@example.com": "south", "cy@example.com": "south"}
    assert quotas == [] and costs == []  # the last config had none


def test_query_significance_and_table(db: Database) -> None:
    config = _config()
    load_reference_data(db, config)
    data = KpiDataset(db, timezone="Asia/Jakarta")
    data.deal(owner="ana@example.com", amount=120, close="2024-01-10", status="won")
    data.deal(owner="cy@example.com", amount=90, close="2024-02-03", status="won")
    data.activity("call", owner="ana@example.com", at="2024-01-09 10:00")
    run_kpis(db, config, at="2024-02-10")
    # the team quota of 300 for the quarter counts a third-ish in January: 300 × 31 ÷ 91
    assert_kpi(db, "quota_attainment", "2024-01", "team:north", 120, numerator=120, denominator=100)
    assert_kpi(db, "quota_attainment", "2024-01", "team:south", 0, numerator=0, denominator=300 * 31 / 91)
    rows = query_kpi_values(db, grain="month", at=date(2024, 1, 20), team="north", kpi="revenue")
    assert {(row.scope_kind, row.scope_name, row.value) for row in rows} == {
        ("team", "North", 120.0),
        ("rep", "ana", 120.0),
        ("rep", "ben", 0.0),
    }
    [mine] = query_kpi_values(db, at=date(2024, 1, 20), rep="ANA@example.com", kpi="revenue")
    assert mine.as_json()["period_start"] == "2024-01-01" and mine.numerator == 120
    console = Console(record=True, width=140)
    console.print(_table(rows, {"revenue": "money"}))
    assert "North" in console.export_text()
    significance = {row.kpi: row for row in kpi_significance(db, config, at=date(2024, 2, 10))}
    assert significance["calls"].verdict == "insufficient data" and significance["calls"].pairs < 20
