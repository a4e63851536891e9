"""`kpi-agent kpis` against a real config file and cache, with numbers worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from agent.db import create_database
from agent.testing.kpi import KpiDataset


def test_kpis_command_prints_json_per_value_for_org_team_rep_and_slices(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[agent]\ntimezone = "Asia/Jakarta"\ndatabase_url = "sqlite:///{cache}"\n'
        '[kpis]\ndimensions = ["lead_source"]\n'
        '[teams.south]\nname = "South"\nmembers = ["ana@example.com", "budi@example.com"]\n'
        '[[quotas]]\nrep = "ana@example.com"\ngrain = "month"\nstart = "2026-03-01"\namount = 1000\n'
    )
    db = create_database(f"sqlite:///{cache}")
    data = KpiDataset(db, timezone="Asia/Jakarta")
    data.rep("ana@example.com", name="Ana")
    data.rep("budi@example.com", name="Budi")
    # March 2026 in Jakarta: Ana wins 300 (web) and 500 (referral), loses one; Budi wins 200 (web).
    data.deal(owner="ana@example.com", amount=300, close="2026-03-02", status="won", lead_source="web")
    data.deal(owner="ana@example.com", amount=500, close="2026-03-31", status="won", lead_source="referral")
    data.deal(owner="ana@example.com", amount=900, close="2026-03-15", status="lost", lead_source="web")
    data.deal(owner="budi@example.com", amount=200, close="2026-03-10", status="won", lead_source="web")
    # 1 April is outside March even though it is still 31 March in UTC before 07:00.
    data.deal(owner="budi@example.com", amount=7000, close="2026-04-01", status="won", lead_source="web")
    db.dispose()

    result = CliRunner().invoke(
        app, ["kpis", "-c", str(config), "--at", "2026-03-20", "--json"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    values = [json.loads(line) for line in result.stdout.splitlines()]  # JSON Lines, nothing else on stdout
    by_key = {(v["kpi"], v["scope_kind"], v["scope_name"], v.get("dimension", ""), v.get("dimension_value", "")): v
              for v in values}
    revenue_org = by_key[("revenue", "org", "org", "", "")]
    assert revenue_org["value"] == 1000  # 300 + 500 + 200; the April deal is out
    assert revenue_org["period_start"] == "2026-03-01" and revenue_org["period_end"] == "2026-04-01"
    assert by_key[("revenue", "team", "South", "", "")]["value"] == 1000
    assert by_key[("revenue", "rep", "Ana", "", "")]["value"] == 800
    # win rate: Ana 2 won of 3 closed = 66.7%; team 3 of 4 = 75%, rolled up as Σwon/Σclosed, not a mean.
    ana_win = by_key[("win_rate", "rep", "Ana", "", "")]
    assert (ana_win["numerator"], ana_win["denominator"]) == (2, 3)
    team_win = by_key[("win_rate", "team", "South", "", "")]
    assert (team_win["numerator"], team_win["denominator"], team_win["value"]) == (3, 4, 75.0)
    # quota attainment: Ana 800 of a 1,000 quota = 80%.
    assert by_key[("quota_attainment", "rep", "Ana", "", "")]["value"] == 80.0
    # sliced by lead source: web 300 + 200 = 500, referral 500.
    assert by_key[("revenue", "org", "org", "lead_source", "web")]["value"] == 500
    assert by_key[("revenue", "org", "org", "lead_source", "referral")]["value"] == 500

