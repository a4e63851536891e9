"""The filters an admin sets — owners to leave out, how far back the first load reaches — and values that
never reach SOQL unescaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.db import Database
from connectors.salesforce.values import soql_id, soql_string
from connectors.sandbox.salesforce.ids import make_id
from tests.connectors.conftest import DEALS, agent_config, by_object, deal, query, run_salesforce, sales_world


def test_owners_left_out_are_not_synced(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    bob = make_id("005", 2)  # owns the 225 even-numbered deals
    outcome = by_object(run_salesforce(db, agent_config(sandbox, exclude_owner_ids=[bob]), objects=["Opportunity"]))
    assert outcome["Opportunity"].records == DEALS - 225
    assert query(db, "SELECT count(*) FROM opportunity WHERE owner_source_id = :bob", bob=bob) == [(0,)]
    assert [entry for entry in sandbox.log.entries() if "OwnerId+NOT+IN" in entry.query]


def test_the_first_load_reaches_back_as_far_as_configured(db: Database, tmp_path: Path, sandbox_factory) -> None:
    now = datetime.now(UTC)
    recent = {**deal(DEALS + 1), "updated_at": (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    old = {**deal(DEALS + 2), "updated_at": (now - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    sandbox = sandbox_factory(sales_world(tmp_path, deals=0, extra_deals=[recent, old]))
    outcome = by_object(run_salesforce(db, agent_config(sandbox, initial_lookback_days=100), objects=["Opportunity"]))
    assert outcome["Opportunity"].records == 1
    assert query(db, "SELECT name FROM opportunity") == [(f"Deal {DEALS + 1}",)]


def test_a_bad_owner_id_is_refused_before_any_query(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    config = agent_config(sandbox, exclude_owner_ids=["005' OR Name != '"])
    [outcome] = run_salesforce(db, config, objects=["Opportunity"])
    assert outcome.status == "failed"
    assert outcome.message == ("connections.salesforce.exclude_owner_ids: \"005' OR Name != '\" is not a Salesforce "
                               "id (15 or 18 letters and digits)")
    assert not [entry for entry in sandbox.log.entries() if "Name+%21%3D" in entry.query or "OR+Name" in entry.query]


def test_soql_literals_cannot_be_broken_out_of() -> None:
    assert soql_string("O'Brien \\ Co") == "'O\\'Brien \\\\ Co'"
    assert soql_string("a\nb") == "'a\\nb'"
    assert soql_id("0068d000000001AAAA") == "'0068d000000001AAAA'"
