"""The Salesforce connector meets the faults of a real org, through the sandbox: a kill mid-load, records
changing between pages, one stamp shared by many records, 503 storms, expired sessions, spent budgets.

Every run ends compared with what the sandbox holds: a reference sync of the same world into a fresh cache,
or counts and values worked out by hand from the world.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from agent.db import Database, create_database
from agent.sync.retry import RetryPolicy
from tests.connectors.conftest import (
    DEALS,
    agent_config,
    by_object,
    config_toml,
    query,
    run_salesforce,
    sales_world,
    wait_for,
    whole_cache,
)

NEXT_PAGE = r'"GET /services/data/v[0-9.]+/query(All)?/01g"'  # a request for a query's next page
BULK_RESULTS = r'"/jobs/query/[^/]+/results"'


def reference_cache(tmp_path: Path, sandbox) -> dict:
    """What an undisturbed sync of the sandbox's world puts in a fresh cache."""
    reference = create_database(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    try:
        run_salesforce(reference, agent_config(sandbox))
        return whole_cache(reference)
    finally:
        reference.dispose()


def start_child(tmp_path: Path, sandbox, db: Database, name: str, **overrides: str) -> subprocess.Popen:
    config = tmp_path / f"{name}.toml"
    config.write_text(config_toml(sandbox, db.url.render_as_string(hide_password=False), **overrides))
    env = {**os.environ, "KPI_AGENT_SALESFORCE_PAGE_SIZE": "200", "KPI_AGENT_SALESFORCE_BULK_PAGE_SIZE": "200",
           "KPI_AGENT_RETRY_SCALE": "0.001"}
    code = f"from tests.connectors.conftest import child_sync; child_sync({str(config)!r})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_a_sync_killed_at_a_page_resumes_to_exactly_the_sandbox_records(db: Database, tmp_path: Path,
                                                                       sandbox_factory, mode: str) -> None:
    # The sandbox holds the third page of the deals (REST: the 2nd next-page request; bulk: the 2nd
    # results page) for ten minutes; the sync is SIGKILLed while it waits, with two pages committed.
    hang = NEXT_PAGE if mode == "rest" else BULK_RESULTS
    sandbox = sandbox_factory(sales_world(tmp_path), faults=f"salesforce:slow@{hang}:after=1,ms=600000")
    overrides = {"bulk_threshold": "100"} if mode == "bulk" else {}
    child = start_child(tmp_path, sandbox, db, "killed", **overrides)
    # Pages are fetched one ahead of the writes: once page 3 hangs, the two before it get committed.
    committed = 400 if mode == "rest" else 200
    try:
        wait_for(lambda: sandbox.faults.hits("slow") == 1 or child.poll() is not None, "the sync to reach page 3")
        wait_for(lambda: query(db, "SELECT count(*) FROM opportunity")[0][0] == committed or child.poll() is not None,
                 "the pages before it to be committed")
        assert child.poll() is None, child.stdout.read() if child.stdout else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert query(db, "SELECT count(*) FROM opportunity")[0][0] == committed

    sandbox.faults.clear()
    resumed = start_child(tmp_path, sandbox, db, "resumed", **overrides)
    with ThreadPoolExecutor(1) as pool:  # the undisturbed reference sync runs meanwhile
        reference = pool.submit(reference_cache, tmp_path, sandbox)
        output, _ = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, output
        expected = reference.result()

    # Exactly the sandbox's records, every field equal, none twice; the resumed run read only the rest.
    assert whole_cache(db) == expected
    assert query(db, "SELECT count(*), count(DISTINCT source_id) FROM opportunity") == [(DEALS, DEALS)]
    runs = query(db, "SELECT status, records FROM sync_run WHERE object = 'Opportunity' ORDER BY id")
    assert runs == [("interrupted", committed), ("ok", DEALS - committed)]


def test_records_updated_or_deleted_between_pages_end_up_right(db: Database, tmp_path: Path,
                                                               sandbox_factory) -> None:
    # Before the 1st next page: 6 deals change (3 already read, 3 still ahead); before the 2nd: 4 are
    # deleted (2 read, 2 ahead).
    world = sales_world(tmp_path)
    faults = (f"salesforce:mutate_between_pages@{NEXT_PAGE}:action=update,count=6;"
              f"salesforce:mutate_between_pages@{NEXT_PAGE}:action=delete,count=4")
    sandbox = sandbox_factory(world, faults=faults)
    config = agent_config(sandbox)
    first = by_object(run_salesforce(db, config, objects=["Opportunity"]))["Opportunity"]
    assert sandbox.faults.hits("mutate_between_pages") == 2
    changed = world.execute("SELECT id, amount FROM opportunities WHERE amount <> 10.0 * id AND deleted = 0")
    deleted = world.execute("SELECT id FROM opportunities WHERE deleted = 1")
    assert (len(changed), len(deleted)) == (6, 4)
    # the first run read 448 deals: the 2 deleted ahead never came, the 2 deleted behind had been read
    assert first.records == 448
    assert query(db, "SELECT count(*) FROM opportunity") == [(DEALS - 2,)]

    # The next run reads the changed deals.  The sandbox does not stamp a deleted record (real Salesforce
    # does, and its queryAll would return them; see /work/sandbox-bugs.md), so here the two come out
    # through the id reconciliation, made due at once for the test instead of a day later.
    second = by_object(run_salesforce(db, config, objects=["Opportunity"], reconcile_every=timedelta(0)))[
        "Opportunity"]
    assert second.status == "ok"
    amounts = dict(query(db, "SELECT name, amount FROM opportunity"))
    for row in changed:  # the world's new amount: 10 % more
        assert amounts[f"Deal {row['id']}"] == pytest.approx(row["amount"])
        assert row["amount"] == pytest.approx(11.0 * row["id"])
    assert not {f"Deal {row['id']}" for row in deleted} & set(amounts)
    assert len(amounts) == DEALS - 4


def test_many_records_sharing_one_stamp_all_arrive_across_a_failed_page(db: Database, tmp_path: Path,
                                                                        sandbox_factory) -> None:
    world = sales_world(tmp_path)
    sandbox = sandbox_factory(world)
    config = agent_config(sandbox, overlap_seconds=0)  # the stored (stamp, id) is resumed as it is
    run_salesforce(db, config, objects=["Opportunity"])
    # a mass update: every deal gets a new amount and one and the same SystemModstamp
    stamp = world.now()
    world.execute("UPDATE opportunities SET amount = 20.0 * id, updated_at = ?", (stamp,))
    # the steady-state run gets the first page (200 of the 450 tied records), then the server fails
    from connectors.sandbox.faults import FaultPlan

    for fault in FaultPlan.parse(f"salesforce:status@{NEXT_PAGE}:code=500,times=all"):
        sandbox.faults.add(fault)
    failed = by_object(run_salesforce(db, config, objects=["Opportunity"]))["Opportunity"]
    assert (failed.status, failed.records) == ("failed", 200)
    sandbox.faults.clear()
    sandbox.log.clear()
    resumed = by_object(run_salesforce(db, config, objects=["Opportunity"]))["Opportunity"]
    # resumed after the 200th record of the tie: (SystemModstamp = S AND Id > I) OR SystemModstamp > S
    assert (resumed.status, resumed.records) == ("ok", DEALS - 200)
    keyset = [entry.query for entry in sandbox.log.entries() if "Id+%3E" in entry.query or "Id %3E" in entry.query]
    assert keyset, "the resumed query asks for the ids after the last one read at that stamp"
    assert query(db, "SELECT count(*), sum(amount) FROM opportunity") == [(DEALS, 2 * 1_014_750.0)]


def test_a_503_storm_is_survived_with_backoff(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path), faults=f"salesforce:unavailable@{NEXT_PAGE}:times=5,retry_after=0")
    waits: list[float] = []
    policy = RetryPolicy("salesforce", attempts=8, base_delay=0.001, max_delay=1.0, sleep=waits.append)
    outcome = by_object(run_salesforce(db, agent_config(sandbox), objects=["Opportunity"], policy=policy))
    assert (outcome["Opportunity"].status, outcome["Opportunity"].records) == ("ok", DEALS)
    pages = [entry for entry in sandbox.log.entries() if "/query/01g" in entry.path]
    # the first next page: five 503s, then answered; the same locator each time; then the last page
    # (the reconciliation's id query pages after that, undisturbed)
    assert [entry.status for entry in pages][:7] == [503] * 5 + [200, 200]
    assert sum(entry.status == 503 for entry in pages) == 5
    assert len({entry.path for entry in pages[:6]}) == 1
    # the waits grow: each at least the one before (backoff doubling, jitter within the upper half)
    assert len(waits) == 5 and waits == sorted(waits) and waits[-1] > waits[0]


def test_an_expired_session_logs_in_again_through_simple_salesforce(db: Database, tmp_path: Path,
                                                                    sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path), faults=f"salesforce:session_expired@{NEXT_PAGE}")
    outcome = by_object(run_salesforce(db, agent_config(sandbox), objects=["Opportunity"]))
    assert (outcome["Opportunity"].status, outcome["Opportunity"].records) == ("ok", DEALS)
    trail = [(entry.method, "login" if "/sfauth" in entry.path else entry.path.split("/")[-2], entry.status)
             for entry in sandbox.log.entries() if "/query/01g" in entry.path or "/sfauth" in entry.path]
    # the first login; a next page refused 401; simple-salesforce logs in again and repeats the page
    assert trail[0] == ("POST", "login", 200)
    assert trail[1:4] == [("GET", "query", 401), ("POST", "login", 200), ("GET", "query", 200)]


def test_an_expired_session_during_a_bulk_load_is_renewed_by_the_connector(db: Database, tmp_path: Path,
                                                                          sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path), faults=f"salesforce:session_expired@{BULK_RESULTS}:after=1")
    config = agent_config(sandbox, bulk_threshold=100)
    outcome = by_object(run_salesforce(db, config, objects=["Opportunity"]))
    assert (outcome["Opportunity"].status, outcome["Opportunity"].records) == ("ok", DEALS)
    results = [entry.status for entry in sandbox.log.entries() if "/results" in entry.path]
    logins = [entry for entry in sandbox.log.entries() if "/sfauth" in entry.path]
    assert results == [200, 401, 200, 200] and len(logins) == 2
    assert query(db, "SELECT count(*), sum(amount) FROM opportunity") == [(DEALS, 1_014_750.0)]


def test_session_id_auth_stops_when_the_session_expires(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path), faults=f"salesforce:session_expired@{NEXT_PAGE}")
    session_id = sandbox.salesforce_client().session_id
    config = agent_config(sandbox, auth="session", session_id=session_id)
    outcomes = by_object(run_salesforce(db, config, objects=["Opportunity", "Task"]))
    for name in ("Opportunity", "Task"):
        assert outcomes[name].status == "stopped"
        assert outcomes[name].message == "salesforce: session expired: supply new credentials"
    # the first page was committed and its cursor kept
    assert query(db, "SELECT count(*) FROM opportunity") == [(200,)]
    assert query(db, "SELECT initial_last_id IS NOT NULL, initial_load_done FROM sync_cursor "
                     "WHERE object = 'Opportunity'") == [(True, False)]
    assert session_id not in repr(outcomes)


def test_request_limit_exceeded_stops_the_object_with_its_cursor_kept(db: Database, tmp_path: Path,
                                                                      sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path), faults=f"salesforce:request_limit@{NEXT_PAGE}")
    config = agent_config(sandbox)
    stopped = by_object(run_salesforce(db, config, objects=["Opportunity"]))["Opportunity"]
    assert (stopped.status, stopped.records) == ("stopped", 200)
    assert "REQUEST_LIMIT_EXCEEDED" in stopped.message and "resumes from its cursor" in stopped.message
    resumed = by_object(run_salesforce(db, config, objects=["Opportunity"]))["Opportunity"]
    assert (resumed.status, resumed.records) == ("ok", DEALS - 200)


def test_the_configured_budget_share_stops_the_sync_cleanly(db: Database, tmp_path: Path, sandbox_factory) -> None:
    # limits at 1 % of a real org: 150 requests a day; the sync may use 20 % of them = 30
    sandbox = sandbox_factory(sales_world(tmp_path), limits_scale=0.01)
    outcomes = run_salesforce(db, agent_config(sandbox, api_budget_share=0.2))
    stopped = [outcome for outcome in outcomes if outcome.status == "stopped"]
    assert stopped and all(outcome.status in ("ok", "stopped") for outcome in outcomes)
    assert "api_budget_share = 0.2" in stopped[0].message
    used = int(sandbox.salesforce.service.limit_info().split("=")[1].split("/")[0])
    assert used <= 31  # the check comes before each request: at most the one that crossed the line


def test_a_bad_field_name_in_the_config_is_refused_naming_it(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    config = agent_config(sandbox, mapping={"region_field": "Regoin__c"})
    outcomes = by_object(run_salesforce(db, config, objects=["User", "Account", "Opportunity"]))
    for name in ("User", "Account"):
        assert outcomes[name].status == "failed"
        assert outcomes[name].message == (
            f"connections.salesforce.mapping.region_field = 'Regoin__c': {name} has no field 'Regoin__c' "
            "(checked against describe); did you mean 'Region__c'?")
    assert outcomes["Opportunity"].status == "ok"
    assert not [entry for entry in sandbox.log.entries() if "Regoin" in entry.query]
    from agent.sync.cli import sync_context
    from connectors.salesforce import SPEC

    connector = SPEC.factory("salesforce", config.connections["salesforce"], sync_context(config, "salesforce"))
    problems = connector.preflight()
    connector.close()
    assert [problem.what for problem in problems if "Regoin__c" in problem.what] == [
        outcomes["User"].message, outcomes["Account"].message]


def test_an_unknown_picklist_value_lands_as_other_with_one_warning(db: Database, tmp_path: Path,
                                                                    sandbox_factory) -> None:
    extra = [{**_deal(DEALS + n), "deal_type": "Partner Resale"} for n in (1, 2, 3)]
    sandbox = sandbox_factory(sales_world(tmp_path, extra_deals=extra))
    warnings: list[str] = []
    run_salesforce(db, agent_config(sandbox), objects=["Opportunity"], warnings=warnings)
    assert query(db, "SELECT deal_type, deal_type_raw, count(*) FROM opportunity GROUP BY deal_type, deal_type_raw "
                     "ORDER BY deal_type") == [("new_business", "New Customer", DEALS), ("other", "Partner Resale", 3)]
    assert [w for w in warnings if "Partner Resale" in w] == [
        "Opportunity.Type value 'Partner Resale' is not in mapping.deal_types; it lands as 'other' (add it to "
        "[connections.<name>.mapping.deal_types] to count it)"]


def test_a_structurally_invalid_record_is_quarantined_and_the_page_lands(db: Database, tmp_path: Path,
                                                                         sandbox_factory) -> None:
    world = sales_world(tmp_path)
    world.execute("UPDATE opportunities SET close_date = 'soon' WHERE id = 7")
    world.execute("UPDATE opportunities SET created_at = NULL WHERE id = 8")
    sandbox = sandbox_factory(world)
    outcome = by_object(run_salesforce(db, agent_config(sandbox), objects=["Opportunity"]))["Opportunity"]
    assert (outcome.status, outcome.records, outcome.quarantined) == ("ok", DEALS - 2, 2)
    rows = query(db, "SELECT object, reason, payload FROM quarantined_record ORDER BY reason")
    assert [(obj, reason) for obj, reason, _ in rows] == [
        ("Opportunity", "Opportunity: CloseDate 'soon' is not a date"),
        ("Opportunity", "Opportunity: CreatedDate is empty")]
    assert '"Name": "Deal 7"' in rows[0][2] and '"Name": "Deal 8"' in rows[1][2]
    # fixed in the CRM, the record lands and leaves the quarantine
    world.update("opportunities", 7, {"close_date": "2026-06-30"})
    run_salesforce(db, agent_config(sandbox), objects=["Opportunity"])
    assert query(db, "SELECT reason FROM quarantined_record") == [("Opportunity: CreatedDate is empty",)]


def _deal(number: int) -> dict:
    from tests.connectors.conftest import deal

    return deal(number)
