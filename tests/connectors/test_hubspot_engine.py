"""The HubSpot connector end to end: sandbox → real hubspot-api-client → connector → sync engine → cache,
on SQLite and PostgreSQL (the ``db`` fixture).  Expected values are worked out by hand from ``WORLD``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from agent.db import Database
from agent.sync.engine import ObjectOutcome, SyncEngine
from agent.sync.writer import WriterSettings
from connectors.hubspot import HubSpotConnector
from tests.connectors.test_hubspot_fetch import _spec
from tests.connectors.test_hubspot_helpers import (
    COMPANY,
    CONTACT,
    TIMEZONE,
    Warnings,
    build_world,
    connector_for,
    context_for,
    deal_id,
    hubspot_sandbox,
)

LIVE_DEALS = [(deal_id(1), "Acme Expansion"), (deal_id(2), "Euro Deal"), (deal_id(3), "Partner A"),
              (deal_id(4), "Partner B"), (deal_id(5), "Reseller"), (deal_id(7), "Renewal")]


def _sync(db: Database, connector: HubSpotConnector, warnings: Warnings | None = None,
          objects: list[str] | None = None) -> list[ObjectOutcome]:
    settings = WriterSettings("hubspot", "USD", TIMEZONE)
    return SyncEngine(db).sync_connection(connector, _spec(), context_for(warnings), settings, objects=objects)


def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_a_portal_syncs_into_the_cache_and_its_changes_follow(db: Database, tmp_path: Path) -> None:
    world = build_world(tmp_path)
    warnings = Warnings()
    with hubspot_sandbox(world) as sandbox:
        connector = connector_for(sandbox)
        outcomes = _sync(db, connector, warnings)
        assert [(outcome.object, outcome.status) for outcome in outcomes if outcome.status != "ok"] == []
        assert _rows(db, "SELECT source_id, name FROM opportunity ORDER BY source_id") == LIVE_DEALS
        assert _rows(db, "SELECT o.source_id, o.deal_type, o.deal_type_raw, a.source_id, r.email, s.source_id, "
                         "o.amount_home FROM opportunity o LEFT JOIN account a ON a.id = o.account_id "
                         "LEFT JOIN rep r ON r.id = o.owner_rep_id LEFT JOIN stage s ON s.id = o.stage_id "
                         "WHERE o.source_id IN ('3000000001', '3000000003') ORDER BY o.source_id") == [
            (deal_id(1), "upsell", "existingbusiness", str(COMPANY + 1), "ann@example.com", "closedwon", 1500.0),
            (deal_id(3), "other", "Partner Deal", str(COMPANY + 1), "ann@example.com", "appointmentscheduled",
             100.0)]
        assert sum("deal type" in message for message in warnings) == 2  # 'Partner Deal' and 'Reseller'
        # the call is the lead's (HubSpot leads are contacts), and the demo counts as a demo
        assert _rows(db, "SELECT a.kind, l.source_id, o.source_id FROM activity a LEFT JOIN lead l ON l.id = "
                         "a.lead_id LEFT JOIN opportunity o ON o.id = a.opportunity_id ORDER BY a.source_id") == [
            ("call", str(CONTACT + 1), deal_id(1)), ("email", str(CONTACT + 1), deal_id(1)),
            ("demo", None, deal_id(1)), ("task", None, deal_id(2)), ("note", None, deal_id(1))]
        assert _rows(db, "SELECT monthly_value_home FROM line_item") == [(150.0,)]
        # deal 1's three stages, each with the amount it had on entering (1200, 1200, then 1500 when won)
        assert _rows(db, "SELECT h.stage_source_id, h.amount_home FROM stage_history h JOIN opportunity o "
                         "ON o.id = h.opportunity_id WHERE o.source_id = '3000000001' ORDER BY h.entered_at") == [
            ("appointmentscheduled", 1200.0), ("qualifiedtobuy", 1200.0), ("closedwon", 1500.0)]

        world.update("opportunities", 2, {"name": "Euro Deal (revised)", "amount": 2000.0, "amount_home": 2200.0})
        world.delete("opportunities", 4)  # archived: its stamp does not move
        again = _sync(db, connector, warnings, objects=["deals"])
        assert [(outcome.status, outcome.records, outcome.deleted) for outcome in again] == [("ok", 1, 1)]
    assert _rows(db, "SELECT source_id, name, amount_home FROM opportunity WHERE source_id IN "
                     "('3000000002', '3000000004')") == [(deal_id(2), "Euro Deal (revised)", 2200.0)]
    assert _rows(db, "SELECT count(*) FROM opportunity") == [(5,)]  # the archived deal is purged


def test_the_daily_limit_stops_the_object_with_its_cursor_kept(db: Database, tmp_path: Path) -> None:
    faults = "hubspot:rate_limit@/search:policy=DAILY,after=1,times=all,retry_after=0"
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        connector = connector_for(sandbox, page_size=2)
        [stopped] = _sync(db, connector, objects=["deals"])
        kept = _rows(db, "SELECT initial_last_id, initial_load_done, last_error FROM sync_cursor")
        sandbox.faults.clear()  # midnight: the budget is back
        [resumed] = _sync(db, connector, objects=["deals"])
    assert (stopped.status, stopped.records) == ("stopped", 2)
    assert "DAILY" in (stopped.message or "") and "cursor kept" in (stopped.message or "")
    assert kept[0][:2] == (deal_id(2), False)
    assert (resumed.status, resumed.records) == ("ok", 4)  # the other four, none of the first two again
    assert _rows(db, "SELECT source_id, name FROM opportunity ORDER BY source_id") == LIVE_DEALS


def test_a_malformed_deal_is_quarantined_and_the_rest_lands(db: Database, tmp_path: Path) -> None:
    world = build_world(tmp_path)
    world.execute("UPDATE opportunities SET amount = 9e999 WHERE id = 3")
    with hubspot_sandbox(world) as sandbox:
        [outcome] = _sync(db, connector_for(sandbox), objects=["deals"])
    assert (outcome.status, outcome.records, outcome.quarantined) == ("ok", 5, 1)
    assert _rows(db, "SELECT object, source_id, reason FROM quarantined_record") == [
        ("deals", deal_id(3), "HubSpot deals: amount 'inf' is not a finite number")]
    assert [row[0] for row in _rows(db, "SELECT source_id FROM opportunity ORDER BY source_id")] == [
        deal_id(n) for n in (1, 2, 4, 5, 7)]


KILLED_SYNC = """
import sys
from agent.config import HubSpotConnection
from agent.db import Database
from agent.sync.engine import SyncEngine
from agent.sync.writer import WriterSettings
from connectors.hubspot import HubSpotConnector
from tests.connectors.test_hubspot_fetch import _spec
from tests.connectors.test_hubspot_helpers import TIMEZONE, context_for, fast_policy

url, base_url, token = sys.argv[1:4]
config = HubSpotConnection(kind="hubspot", base_url=base_url, access_token=token)
connector = HubSpotConnector("hubspot", config, policy=fast_policy(), search_interval=0, page_size=2)
SyncEngine(Database(url)).sync_connection(connector, _spec(), context_for(), WriterSettings("hubspot", "USD", TIMEZONE),
                                          objects=["deals"])
"""


def test_a_sync_killed_at_a_page_the_sandbox_chooses_resumes_exactly(db: Database, tmp_path: Path) -> None:
    # the third deals search hangs: the sync has committed two pages when it is killed
    faults = "hubspot:slow@/deals/search:after=2,ms=20000"
    url = db.engine.url.render_as_string(hide_password=False)
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        assert sandbox.hubspot is not None
        process = subprocess.Popen([sys.executable, "-c", KILLED_SYNC, url, sandbox.hubspot.base_url,
                                    sandbox.hubspot_token()], cwd=Path(__file__).parents[2],
                                   env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])})
        try:
            _wait_for(db, process, "SELECT initial_last_id FROM sync_cursor WHERE object = 'deals'", (deal_id(4),))
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
        committed = _rows(db, "SELECT source_id FROM opportunity ORDER BY source_id")
        sandbox.faults.clear()
        [outcome] = _sync(db, connector_for(sandbox, page_size=2), objects=["deals"])
    assert process.returncode == -signal.SIGKILL
    assert [row[0] for row in committed] == [deal_id(n) for n in (1, 2, 3, 4)]
    assert (outcome.status, outcome.records) == ("ok", 2)  # only deals 5 and 7 were left
    assert _rows(db, "SELECT source_id, name FROM opportunity ORDER BY source_id") == LIVE_DEALS
    assert _rows(db, "SELECT count(*), count(DISTINCT source_id), sum(amount) FROM opportunity") == [
        (6, 6, 1500.0 + 1000.0 + 4 * 100.0)]
    assert _rows(db, "SELECT initial_load_done, lease_owner FROM sync_cursor") == [(True, None)]


def _wait_for(db: Database, process: subprocess.Popen[bytes], sql: str, expected: tuple[Any, ...]) -> None:
    """Until ``sql`` returns ``expected`` (the subprocess committed that far); fails if it died first."""
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"the sync subprocess ended ({process.returncode}) before committing {expected}")
        try:
            if _rows(db, sql) == [expected]:
                return
        except Exception:  # noqa: BLE001 - the subprocess may be creating the row right now
            pass
        time.sleep(0.05)
    raise AssertionError(f"the sync subprocess never committed {expected}")
