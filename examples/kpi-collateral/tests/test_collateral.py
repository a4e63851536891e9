"""The example plugin's own tests, written with the agent's KPI test helpers."""

from __future__ import annotations

from pathlib import Path

from kpi_collateral import plugin

from agent.db import create_database
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, kpi_host, run_kpis


def test_collateral_usage_rate_rolls_reps_up(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    data = KpiDataset(db)
    data.team("north")
    data.rep("ana@example.com", team="north")
    data.rep("ben@example.com", team="north")
    csv_path = tmp_path / "collateral.csv"
    csv_path.write_text(
        "date,rep_email,deals,with_collateral\n"
        "2024-01-05,ana@example.com,4,3\n"
        "2024-01-20,ben@example.com,6,1\n"
        "2024-01-21,nobody@example.com,10,0\n"
    )
    config = kpi_config(kpis={"history_periods": 1}, plugin_config={"collateral": {"csv_path": str(csv_path)}})
    result = run_kpis(db, config, at="2024-01-31", host=kpi_host(("collateral", plugin)))
    assert result.failed == {}
    assert_kpi(db, "collateral_usage_rate", "2024-01", "rep:ana@example.com", 75, numerator=3, denominator=4)
    # north: (3 + 1) ÷ (4 + 6); the org also counts the row of an unknown rep: 4 ÷ 20
    assert_kpi(db, "collateral_usage_rate", "2024-01", "team:north", 40, numerator=4, denominator=10)
    assert_kpi(db, "collateral_usage_rate", "2024-01", "org", 20, numerator=4, denominator=20)
    db.dispose()
