"""The demo is the front door: it must run the whole loop against the sandbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app


def test_demo_runs_the_whole_loop_on_a_tiny_world(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--size", "tiny", "--data-dir", str(data_dir)],
                                env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for step in ("1. A CRM world", "2. The agent's config", "3. Sync", "4. KPIs", "5. Which activities"):
        assert step in result.output
    # The faults switched on were met and ridden out: 2 HubSpot 429s, 1 expired session, 1 503.
    assert "HubSpot 429 rate limits: 2" in result.output
    assert "Salesforce expired sessions (401, then a new login): 1" in result.output
    assert "Salesforce 503s (retried after backoff): 1" in result.output
    # Both CRMs' records landed in the one cache, and KPI values were stored for them.
    with sqlite3.connect(data_dir / "cache.sqlite") as cache:
        connections = {row[0] for row in cache.execute("SELECT DISTINCT connection FROM opportunity")}
        assert connections == {"salesforce", "hubspot"}
        cached = cache.execute("SELECT COUNT(*) FROM opportunity WHERE NOT is_deleted").fetchone()[0]
    with sqlite3.connect(data_dir / "sandbox" / "world-seed7-tiny.sqlite") as world:
        served = world.execute("SELECT COUNT(*) FROM opportunities WHERE NOT deleted").fetchone()[0]
    assert cached == served > 0
    with sqlite3.connect(data_dir / "cache.sqlite") as cache:
        assert cache.execute("SELECT COUNT(*) FROM kpi_value WHERE kpi = 'revenue'").fetchone()[0] > 0
        assert cache.execute("SELECT COUNT(*) FROM kpi_value WHERE status = 'failed'").fetchone()[0] == 0
    assert (data_dir / "config.toml").stat().st_mode & 0o077 == 0
