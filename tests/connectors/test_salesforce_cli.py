"""``kpi-agent sync``, ``status`` and ``config check --online`` (agent/sync/cli.py) over the Salesforce
sandbox, with the connector found through its entry point like any plugin."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from agent.db import Database
from agent.plugins import create_plugin_manager
from agent.sync.cli import preflight, run_sync, show_status
from tests.connectors.conftest import DEALS, agent_config, query, sales_world


def console() -> Console:
    return Console(record=True, width=250, force_terminal=False)


def test_sync_then_status_show_every_object(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    config = agent_config(sandbox)
    host = create_plugin_manager()
    out = console()
    assert run_sync(out, config, host, db, object_name="opportunity") == 0
    summary = out.export_text()
    assert "Sync summary" in summary and "Opportunity" in summary and f"{DEALS}" in summary
    assert query(db, "SELECT count(*) FROM opportunity") == [(DEALS,)]
    assert query(db, "SELECT count(*) FROM account") == [(0,)]  # only the object asked for

    out = console()
    assert show_status(out, config, db) == 0
    status = out.export_text()
    assert "salesforce" in status and "Opportunity" in status and "ok" in status
    assert "2026-02-01" in status  # the cursor's stamp: the deals' newest stamp minus the 5 minute overlap


def test_unknown_connection_or_object_is_a_usage_error(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    config = agent_config(sandbox)
    out = console()
    assert run_sync(out, config, create_plugin_manager(), db, connection="hubspot") == 2
    assert "--connection hubspot: no such connection; configured: salesforce" in out.export_text()
    out = console()
    assert run_sync(out, config, create_plugin_manager(), db, object_name="Deal") == 2
    assert "--object Deal: connection salesforce has no such object; it syncs UserRole, User" in out.export_text()


def test_config_check_online_says_what_is_missing(tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    out = console()
    assert preflight(out, agent_config(sandbox), create_plugin_manager()) == 0
    assert "logged in; objects and fields readable" in out.export_text()
    out = console()
    bad = agent_config(sandbox, mapping={"mql_date_field": "MQL_Date"})
    assert preflight(out, bad, create_plugin_manager()) == 1
    text = out.export_text()
    assert "mapping.mql_date_field = 'MQL_Date': Lead has no field 'MQL_Date'" in text
    assert "did you mean 'MQL_Date__c'?" in text
