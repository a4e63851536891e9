"""The sync engine and writer with the in-memory reference connector, on SQLite and PostgreSQL.

Every expected value is worked out by hand from the records written in the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, text

from agent.config import TeamConfig
from agent.db import Database
from agent.sync.connector import Cursor, Page, SyncContext
from agent.sync.engine import NoProgress, SyncEngine, utc_now
from agent.sync.records import (
    AccountRecord,
    ActivityRecord,
    ContactRecord,
    ContractRecord,
    CurrencyRateRecord,
    LeadRecord,
    LineItemRecord,
    OpportunityRecord,
    PipelineRecord,
    QuarantinedItem,
    StageHistoryRecord,
    StageRecord,
    TeamRecord,
    UserRecord,
)
from agent.sync.writer import CacheWriter, WriterSettings
from agent.testing.connectors import MemoryConnector, memory_context, memory_spec, utc

T0 = utc(2025, 6, 1, 12, 0)
NOW = utc(2026, 1, 1)
TABLES = {"roles": "team", "users": "crm_user", "stages": "stage", "pipelines": "pipeline", "rates": "currency_rate",
          "accounts": "account", "contacts": "contact", "leads": "lead", "deals": "opportunity",
          "history": "stage_history", "tasks": "activity", "events": "activity"}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def world() -> dict[str, list]:
    return {
        "roles": [TeamRecord(source_id="R1", name="East"), TeamRecord(source_id="R2", name="West")],
        "users": [
            UserRecord(source_id="U1", email="Ann@Example.com", name="Ann", team_source_id="R1",
                       last_modified_at=at(1)),
            UserRecord(source_id="U2", email="bob@example.com", name="Bob", team_source_id="R2",
                       manager_source_id="U1", last_modified_at=at(2)),
        ],
        "pipelines": [PipelineRecord(source_id="P", name="Sales")],
        "stages": [
            StageRecord(source_id="Open", name="Open", pipeline_source_id="P", probability=0.25),
            StageRecord(source_id="Won", name="Won", pipeline_source_id="P", probability=1.0, is_closed=True,
                        is_won=True),
        ],
        "rates": [CurrencyRateRecord(source_id="EUR", iso_code="EUR", rate=0.8)],
        "accounts": [AccountRecord(source_id="A1", name="Acme", owner_source_id="U1", last_modified_at=at(3))],
        "contacts": [ContactRecord(source_id="C1", account_source_id="A1", name="Cy", last_modified_at=at(3))],
        "leads": [LeadRecord(source_id="L1", created_at=at(-100), converted_at=at(-10),
                             converted_contact_source_id="C1", last_modified_at=at(-10))],
        "deals": [
            # open, probability from its stage (0.25), amount in EUR: 800 / 0.8 = 1000 home
            OpportunityRecord(source_id="D1", created_at=at(0), account_source_id="A1", owner_source_id="U2",
                              pipeline_source_id="P", stage_source_id="Open", amount=800.0, currency="EUR",
                              last_modified_at=at(4)),
            # won, date-only close in Asia/Jakarta (UTC+7): ends at 2025-07-01 00:00 local = 2025-06-30 17:00 UTC
            OpportunityRecord(source_id="D2", created_at=at(0), owner_source_id="U1", stage_source_id="Won",
                              amount=500.0, currency="USD", probability=0.9, close_date=date(2025, 6, 30),
                              is_closed=True, is_won=True, last_modified_at=at(5)),
            # won, and its stage history says when it entered Won
            OpportunityRecord(source_id="D3", created_at=at(0), owner_source_id="U1", stage_source_id="Won",
                              amount=100.0, close_date=date(2025, 7, 1), is_closed=True, is_won=True,
                              last_modified_at=at(6)),
        ],
        "history": [StageHistoryRecord(source_id="H1", opportunity_source_id="D3", stage_source_id="Won",
                                       entered_at=at(30), amount=80.0, currency="EUR")],
        "tasks": [
            # moved from L1 to its contact at conversion (created before it): linked back to the lead
            ActivityRecord(source_id="T1", kind="call", contact_source_id="C1", owner_source_id="U2",
                           created_at=at(-20), last_modified_at=at(7)),
            # after the conversion: the contact's own
            ActivityRecord(source_id="T2", kind="email", contact_source_id="C1", created_at=at(-5),
                           last_modified_at=at(8)),
        ],
        "events": [ActivityRecord(source_id="E1", kind="meeting", owner_source_id="U1", last_modified_at=at(9))],
    }


def run(db: Database, connector: MemoryConnector, *, teams: dict | None = None, full: bool = False,
        objects: list[str] | None = None, engine: SyncEngine | None = None, now: datetime = NOW,
        reconcile_every: timedelta = timedelta(hours=24)):
    context = memory_context("crm", now=now, full=full, timezone="Asia/Jakarta")
    settings = WriterSettings("crm", "USD", "Asia/Jakarta", teams or {})
    engine = engine or SyncEngine(db, clock=lambda: now)
    return engine.sync_connection(connector, memory_spec(connector), context, settings, objects=objects,
                                  reconcile_every=reconcile_every)


def rows(db: Database, sql: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_first_load_resolves_keys_maps_reps_and_derives_values(db: Database) -> None:
    connector = MemoryConnector(world(), page_size=2, tables=TABLES)
    teams = {"north": TeamConfig(name="North", members=["bob@example.com"])}
    outcomes = run(db, connector, teams=teams)

    assert [(o.object, o.status, o.records) for o in outcomes] == [
        ("roles", "ok", 2), ("users", "ok", 2), ("pipelines", "ok", 1), ("stages", "ok", 2), ("rates", "ok", 1),
        ("accounts", "ok", 1), ("contacts", "ok", 1), ("leads", "ok", 1), ("deals", "ok", 3), ("history", "ok", 1),
        ("tasks", "ok", 2), ("events", "ok", 1)]
    # one rep per email, lower-cased; Bob's team is the config team (config wins over his role R2), Ann's is R1
    assert rows(db, "SELECT r.email, t.connection, t.source_id FROM rep r JOIN team t ON t.id = r.team_id "
                    "ORDER BY r.email") == [("ann@example.com", "crm", "R1"), ("bob@example.com", "config", "north")]
    assert rows(db, "SELECT m.email FROM rep r JOIN rep m ON m.id = r.manager_rep_id") == [("ann@example.com",)]
    deals = rows(db, "SELECT o.source_id, a.source_id, r.email, s.source_id, p.source_id, o.probability, "
                     "o.amount_home FROM opportunity o LEFT JOIN account a ON a.id = o.account_id "
                     "LEFT JOIN rep r ON r.id = o.owner_rep_id LEFT JOIN stage s ON s.id = o.stage_id "
                     "LEFT JOIN pipeline p ON p.id = o.pipeline_id ORDER BY o.source_id")
    assert deals == [("D1", "A1", "bob@example.com", "Open", "P", 0.25, 1000.0),
                     ("D2", None, "ann@example.com", "Won", None, 0.9, 500.0),
                     ("D3", None, "ann@example.com", "Won", None, 1.0, 100.0)]
    with db.session() as session:
        found = session.execute(text("SELECT source_id, closed_at FROM opportunity WHERE is_closed = TRUE"))
        closed = dict(found.all())
    # D2: the end of 2025-06-30 in Jakarta; D3: the stage history's entry into Won (12:30 UTC)
    assert _instant(closed["D2"]) == datetime(2025, 6, 30, 17, tzinfo=UTC)
    assert _instant(closed["D3"]) == at(30)
    # the history's EUR 80 is 100 at 0.8 EUR per USD
    assert rows(db, "SELECT amount_home FROM stage_history") == [(100.0,)]
    # T1 was created before L1 converted (its contact C1), so it is the lead's; T2 came after
    assert rows(db, "SELECT source_id, lead_source_id FROM activity ORDER BY source_id") == [
        ("E1", None), ("T1", "L1"), ("T2", None)]
    assert rows(db, "SELECT count(*) FROM activity a JOIN lead l ON l.id = a.lead_id") == [(1,)]
    assert rows(db, "SELECT object, initial_load_done, records_synced, lease_owner FROM sync_cursor "
                    "WHERE object = 'deals'") == [("deals", True, 3, None)]


def _note_updates(db: Database, table: str) -> None:
    """Each row version an UPDATE (or an upsert's update) writes in ``table`` adds its source_id to
    ``test_updates``."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE test_updates (source_id VARCHAR(100))")
        if db.dialect == "postgresql":
            conn.exec_driver_sql("CREATE FUNCTION test_note_update() RETURNS trigger LANGUAGE plpgsql AS "
                                 "$$ BEGIN INSERT INTO test_updates VALUES (NEW.source_id); RETURN NEW; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER test_note_update AFTER UPDATE ON {table} FOR EACH ROW "
                                 "EXECUTE FUNCTION test_note_update()")
        else:
            conn.exec_driver_sql(f"CREATE TRIGGER test_note_update AFTER UPDATE ON {table} "
                                 "BEGIN INSERT INTO test_updates VALUES (new.source_id); END")


def test_past_the_first_load_a_closed_deal_is_written_once_with_the_instant_it_entered_a_closed_stage(
        db: Database) -> None:
    """A closed deal without a close instant from the CRM closes when its stage history entered a closed stage
    (D3: at 30 minutes), else at the end of its close date (D2).  Past the first load that instant is read
    before the deal is written, so a changed closed deal is written once and one read again unchanged (D3, in
    the overlap) not at all.  The writer derived the probability and the close instant by UPDATEs after the
    upsert (which had written them empty or as the end-of-day fallback): D2 was written twice, D3 three times."""
    data = world()
    deals = data["deals"]
    # D3 stamped at the first load's watermark (its start, no overlap here): the next run reads it again
    deals[2] = OpportunityRecord(**{**deals[2].__dict__, "last_modified_at": NOW})
    connector = MemoryConnector(data, page_size=10, tables=TABLES)
    run(db, connector)
    _note_updates(db, "opportunity")
    later = NOW + timedelta(hours=1)
    connector.put("deals", OpportunityRecord(**{**deals[1].__dict__, "amount": 600.0, "last_modified_at": later}))
    run(db, connector, now=later)
    with db.session() as session:
        found = session.execute(text("SELECT source_id, closed_at, amount FROM opportunity WHERE is_closed = TRUE"))
        closed = {source_id: (_instant(closed_at), amount) for source_id, closed_at, amount in found.all()}
    # D2: the end of 2025-06-30 in Jakarta (UTC+7) = 17:00 UTC, its new amount; D3 as the first load left it
    assert closed == {"D2": (datetime(2025, 6, 30, 17, tzinfo=UTC), 600.0), "D3": (at(30), 100.0)}
    assert rows(db, "SELECT source_id FROM test_updates") == [("D2",)]


def test_a_failed_run_resumes_from_its_last_committed_page(db: Database) -> None:
    deals = [OpportunityRecord(source_id=f"D{i}", created_at=at(0), amount=float(i), last_modified_at=at(i))
             for i in range(1, 8)]
    connector = MemoryConnector({"deals": deals}, page_size=3, tables=TABLES)
    connector.fail_after = 2
    [outcome] = run(db, connector)
    assert (outcome.status, outcome.records, outcome.pages) == ("failed", 6, 2)
    assert "failing after page 2" in outcome.message
    assert rows(db, "SELECT initial_last_id, initial_load_done FROM sync_cursor") == [("D6", False)]
    connector.fail_after = None
    [outcome] = run(db, connector)
    assert (outcome.status, outcome.records) == ("ok", 1)  # only D7 was left
    assert rows(db, "SELECT count(*), count(DISTINCT source_id), sum(amount) FROM opportunity") == [(7, 7, 28.0)]
    assert rows(db, "SELECT status, records FROM sync_run ORDER BY id") == [("failed", 6), ("ok", 1)]


def test_steady_state_applies_updates_deletes_and_the_overlap(db: Database) -> None:
    deals = [OpportunityRecord(source_id=f"D{i}", created_at=at(0), amount=10.0, last_modified_at=at(i))
             for i in range(1, 5)]
    connector = MemoryConnector({"deals": deals}, page_size=2, tables=TABLES)
    run(db, connector)
    cursor = SyncEngine(db).read_cursor("crm", "deals")
    # the first load's watermark is its start (NOW) minus the overlap (0 here)
    assert (cursor.initial_load_done, cursor.stamp) == (True, NOW)
    later = NOW + timedelta(hours=1)
    connector.put("deals", OpportunityRecord(source_id="D2", created_at=at(0), amount=99.0, last_modified_at=later))
    connector.put("deals", OpportunityRecord(source_id="D3", created_at=at(0), is_deleted=True, last_modified_at=later))
    connector.put("deals", OpportunityRecord(source_id="D9", created_at=at(0), amount=5.0, last_modified_at=later))
    [outcome] = run(db, connector, now=later)
    assert (outcome.records, outcome.deleted) == (2, 1)
    # D3 was marked deleted and purged at the end of the run
    assert rows(db, "SELECT source_id, amount FROM opportunity ORDER BY source_id") == [
        ("D1", 10.0), ("D2", 99.0), ("D4", 10.0), ("D9", 5.0)]
    stored = SyncEngine(db).read_cursor("crm", "deals")
    assert (stored.stamp, stored.last_id) == (later, "D9")
    context = SyncContext(connection="crm", home_currency="USD", timezone="UTC", overlap=timedelta(minutes=5))
    start = SyncEngine.starting_cursor(stored, context)
    assert (start.stamp, start.last_id) == (later - timedelta(minutes=5), None)


def test_a_row_whose_parent_comes_in_a_later_run_is_resolved_then(db: Database) -> None:
    tasks = [ActivityRecord(source_id="T9", kind="call", account_source_id="A9", last_modified_at=at(1)),
             ActivityRecord(source_id="T8", kind="call", last_modified_at=at(2))]
    connector = MemoryConnector({"accounts": [], "tasks": tasks}, page_size=2, tables=TABLES)
    run(db, connector)
    assert rows(db, "SELECT source_id, account_id FROM activity ORDER BY source_id") == [("T8", None), ("T9", None)]
    later = NOW + timedelta(hours=1)
    connector.put("accounts", AccountRecord(source_id="A9", name="Late Ltd", last_modified_at=later))
    run(db, connector, now=later)
    # T9 was not read again (unchanged): the end-of-run pass found it through its unresolved-rows index
    assert rows(db, "SELECT t.source_id, a.source_id FROM activity t LEFT JOIN account a ON a.id = t.account_id "
                    "ORDER BY t.source_id") == [("T8", None), ("T9", "A9")]


def test_the_end_of_run_passes_read_only_the_rows_they_are_for(db: Database) -> None:
    from agent.models import (
        CRM_CONTRACT_NAMES_DEAL,
        DELETED_MARK,
        UNRESOLVED_REFERENCES,
        marked_deleted_index_name,
        unresolved_index_name,
    )
    from agent.sync.writer import REFERENCES

    written = {(table, ref.id_column, ref.source_column) for table, refs in REFERENCES.items() for ref in refs}
    assert written == set(UNRESOLVED_REFERENCES)  # every key the writer resolves late has its partial index
    if db.dialect == "sqlite":
        # the pass's UPDATE is planned on the partial index, not a scan of every row of the table
        plan = rows(db, "EXPLAIN QUERY PLAN UPDATE activity SET account_id = NULL WHERE connection = 'crm' "
                        "AND account_id IS NULL AND account_source_id IS NOT NULL")
        assert unresolved_index_name("activity", "account_id") in " ".join(str(row) for row in plan)
        # and the purge looks for marked rows through the index that holds only them
        plan = rows(db, "EXPLAIN QUERY PLAN SELECT d.id FROM activity d WHERE d.connection = 'crm' "
                        f"AND d.{DELETED_MARK} LIMIT 1")
        assert marked_deleted_index_name("activity") in " ".join(str(row) for row in plan)
        # and the once-a-run question whether CRM contracts name deals is asked of an index of only those
        plan = rows(db, f"EXPLAIN QUERY PLAN SELECT 1 FROM contract WHERE connection = 'crm' AND "
                        f"{CRM_CONTRACT_NAMES_DEAL} LIMIT 1")
        assert "ix_contract_crm_names_deal" in " ".join(str(row) for row in plan)


def test_reconciliation_finds_hard_deletes_across_objects_of_one_table(db: Database) -> None:
    records = {"tasks": [ActivityRecord(source_id="T1", last_modified_at=at(1)),
                         ActivityRecord(source_id="T2", last_modified_at=at(2))],
               "events": [ActivityRecord(source_id="E1", kind="meeting", last_modified_at=at(3))]}
    connector = MemoryConnector(records, tables=TABLES)
    run(db, connector)
    connector.erase("tasks", "T2")
    # not due yet (reconciled a moment ago): the hard delete is not noticed
    run(db, connector, now=NOW + timedelta(hours=1))
    assert rows(db, "SELECT source_id FROM activity ORDER BY source_id") == [("E1",), ("T1",), ("T2",)]
    # due after 24 hours: T2 goes, and E1 (an event, absent from the tasks' ids) stays
    run(db, connector, now=NOW + timedelta(hours=25))
    assert rows(db, "SELECT source_id FROM activity ORDER BY source_id") == [("E1",), ("T1",)]


def test_quarantined_records_are_kept_with_reason_until_they_land(db: Database) -> None:
    connector = MemoryConnector({"deals": []}, tables=TABLES)
    engine = SyncEngine(db, clock=lambda: NOW)
    original = connector.fetch

    def with_bad_record(object_name, cursor, context):
        for page in original(object_name, cursor, context):
            yield type(page)(cursor=page.cursor, records=page.records,
                             quarantined=[QuarantinedItem("D7", "Amount 'abc' is not a number", {"Amount": "abc"}),
                                          QuarantinedItem("", "no Id", {"Name": "x"})])

    connector.fetch = with_bad_record  # type: ignore[method-assign]
    [outcome] = run(db, connector, engine=engine)
    assert outcome.quarantined == 2
    assert rows(db, "SELECT source_id, reason, payload FROM quarantined_record WHERE source_id = 'D7'") == [
        ("D7", "Amount 'abc' is not a number", '{"Amount": "abc"}')]
    connector.fetch = original  # type: ignore[method-assign]
    connector.put("deals", OpportunityRecord(source_id="D7", created_at=at(0), amount=7.0, last_modified_at=at(1)))
    run(db, connector, full=True)
    assert rows(db, "SELECT count(*) FROM quarantined_record WHERE source_id = 'D7'") == [(0,)]


def test_a_live_lease_makes_the_object_busy_and_a_dead_one_is_taken_over(db: Database) -> None:
    connector = MemoryConnector({"deals": [OpportunityRecord(source_id="D1", created_at=at(0))]}, tables=TABLES)
    holder = SyncEngine(db, owner="elsewhere:1:abc", clock=lambda: NOW)
    assert holder.acquire_lease("crm", "deals") is None
    [outcome] = run(db, connector)
    assert outcome.status == "busy" and "elsewhere:1:abc" in outcome.message
    # a process of this host that no longer runs holds nothing
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = SyncEngine(db, owner=f"{os.uname().nodename}:{finished.stdout.strip()}:x", clock=lambda: NOW)
    with db.write_connection() as conn:
        conn.execute(text("UPDATE sync_cursor SET lease_owner = :owner"), {"owner": dead.owner})
    [outcome] = run(db, connector)
    assert outcome.status == "ok"


def test_full_reload_starts_a_new_first_load_and_keeps_rows(db: Database) -> None:
    connector = MemoryConnector({"deals": [OpportunityRecord(source_id="D1", created_at=at(0), amount=1.0)]},
                                tables=TABLES)
    run(db, connector)
    [outcome] = run(db, connector, full=True)
    assert (outcome.status, outcome.records) == ("ok", 1)
    assert rows(db, "SELECT count(*) FROM opportunity") == [(1,)]
    assert SyncEngine(db).read_cursor("crm", "deals").initial_load_done


def test_starting_cursor_of_a_first_load_is_the_stored_one() -> None:
    stored = Cursor(initial_last_id="X", initial_load_started_at=NOW)
    context = SyncContext(connection="c", home_currency="USD", timezone="UTC")
    assert SyncEngine.starting_cursor(stored, context) == stored


def _instant(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite through a text() query returns the stored text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_a_won_deal_with_recurring_lines_starts_a_contract(db: Database) -> None:
    deals = [
        # won, a 12-month recurring line of 1,200 (100 a month) and a one-off line: one contract
        OpportunityRecord(source_id="D1", created_at=at(0), account_source_id="A1", owner_source_id="U1",
                          amount=1700.0, close_date=date(2025, 6, 30), is_closed=True, is_won=True,
                          last_modified_at=at(1)),
        # won, but the CRM has its own contract for it: that one counts, none is derived
        OpportunityRecord(source_id="D2", created_at=at(0), amount=600.0, close_date=date(2025, 6, 30),
                          is_closed=True, is_won=True, last_modified_at=at(2)),
        # open: no contract yet
        OpportunityRecord(source_id="D3", created_at=at(0), amount=600.0, close_date=date(2025, 9, 30),
                          last_modified_at=at(3)),
    ]
    lines = [
        LineItemRecord(source_id="L1", opportunity_source_id="D1", quantity=1, unit_price=1200.0, net_total=1200.0,
                       recurring_term_months=12, billing_frequency="annually", last_modified_at=at(1)),
        LineItemRecord(source_id="L2", opportunity_source_id="D1", quantity=1, unit_price=500.0, net_total=500.0,
                       last_modified_at=at(1)),
        LineItemRecord(source_id="L3", opportunity_source_id="D2", quantity=6, unit_price=100.0, net_total=600.0,
                       recurring_term_months=6, last_modified_at=at(2)),
        LineItemRecord(source_id="L4", opportunity_source_id="D3", quantity=1, unit_price=600.0, net_total=600.0,
                       recurring_term_months=6, last_modified_at=at(3)),
    ]
    crm_contracts = [ContractRecord(source_id="K2", start_date=date(2025, 7, 1), opportunity_source_id="D2",
                                    monthly_value_home=100.0, last_modified_at=at(2))]
    base = world()
    records = {"roles": base["roles"], "users": base["users"], "accounts": base["accounts"], "deals": deals,
               "lines": lines, "contracts": crm_contracts}
    tables = {**TABLES, "lines": "line_item", "contracts": "contract"}
    connector = MemoryConnector(records, page_size=10, tables=tables)
    run(db, connector)
    contracts = rows(db, "SELECT c.source_id, c.derived_from, c.start_date, c.end_date, c.term_months, "
                         "c.monthly_value_home, a.source_id, r.email, o.source_id FROM contract c "
                         "LEFT JOIN account a ON a.id = c.account_id LEFT JOIN rep r ON r.id = c.owner_rep_id "
                         "LEFT JOIN opportunity o ON o.id = c.opportunity_id ORDER BY c.source_id")
    assert [tuple(str(v) if isinstance(v, date) else v for v in row) for row in contracts] == [
        ("K2", "crm", "2025-07-01", None, None, 100.0, None, None, "D2"),
        # starts on the close date, runs 12 months to the day before 2026-06-30
        ("deal:D1", "deal", "2025-06-30", "2026-06-29", 12, 100.0, "A1", "ann@example.com", "D1"),
    ]
    # the deal is lost after all: its contract goes; D2, edited, still gets none (a new run asks the cache
    # whether CRM contracts name deals, through its partial index)
    later = NOW + timedelta(hours=1)
    connector.put("deals", OpportunityRecord(source_id="D1", created_at=at(0), close_date=date(2025, 6, 30),
                                             is_closed=True, last_modified_at=later))
    connector.put("deals", OpportunityRecord(source_id="D2", created_at=at(0), amount=650.0,
                                             close_date=date(2025, 6, 30), is_closed=True, is_won=True,
                                             last_modified_at=later))
    run(db, connector, now=later)
    assert rows(db, "SELECT source_id FROM contract") == [("K2",)]


def test_the_lease_is_kept_alive_while_a_page_is_slow_to_come(db: Database) -> None:
    release = threading.Event()

    class SlowConnector(MemoryConnector):
        def fetch(self, object_name, cursor, context):
            release.wait(30)  # a bulk job that takes its time
            yield from super().fetch(object_name, cursor, context)

    connector = SlowConnector({"deals": [OpportunityRecord(source_id="D1", created_at=at(0))]}, tables=TABLES)
    engine = SyncEngine(db, lease_seconds=1)  # renewed every third of a second while nothing comes
    worker = threading.Thread(target=run, args=(db, connector), kwargs={"engine": engine, "now": utc_now()})
    worker.start()
    try:
        wait_until(lambda: rows(db, "SELECT lease_owner FROM sync_cursor") == [(engine.owner,)])
        time.sleep(2.5)  # well past the first lease's second
        other = SyncEngine(db, owner="elsewhere:1:x")
        assert other.acquire_lease("crm", "deals") is not None
    finally:
        release.set()
        worker.join()
    assert rows(db, "SELECT count(*) FROM opportunity") == [(1,)]


def wait_until(condition, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


def test_awkward_values_are_stored_exactly_as_given(db: Database) -> None:
    """Text that array-literal syntax treats specially, an instant with a non-UTC offset, a float needing
    all 17 digits, a date, a boolean and NULLs: each read back equal (PostgreSQL gets them as array literals)."""
    names = ['say "hi"', "back\\slash\\", "a,b {c} d", "NULL", "", "  padded  ", "line\nbreak", "ünïcode ✓"]
    jakarta_noon = datetime(2025, 6, 1, 12, tzinfo=ZoneInfo("Asia/Jakarta"))  # 05:00 UTC
    deals = [OpportunityRecord(source_id=f"D{index}", name=name, created_at=jakarta_noon, amount=0.1 + 0.2,
                               close_date=date(2025, 6, 30), is_closed=True, is_won=index % 2 == 0,
                               last_modified_at=at(index))
             for index, name in enumerate(names)]
    deals.append(OpportunityRecord(source_id="DN", created_at=jakarta_noon, last_modified_at=at(99)))
    run(db, MemoryConnector({"deals": deals}, page_size=100, tables={"deals": "opportunity"}))

    stored = rows(db, "SELECT source_id, name, created_at, amount, close_date, is_won FROM opportunity "
                      "ORDER BY source_id")
    expected = [(f"D{index}", name, 0.30000000000000004, index % 2 == 0) for index, name in enumerate(names)]
    assert [(s, n, a, bool(w)) for s, n, _, a, _, w in stored[:-1]] == expected
    assert {_instant(created) for _, _, created, _, _, _ in stored} == {datetime(2025, 6, 1, 5, tzinfo=UTC)}
    assert {str(day) for _, _, _, _, day, _ in stored[:-1]} == {"2025-06-30"}
    assert stored[-1][0:2] == ("DN", None) and stored[-1][3:] == (None, None, False)


def test_over_long_text_is_cut_to_its_column_and_the_record_kept(db: Database) -> None:
    """A subject of 300 characters (the column holds 255) and a deal name of 256 (255): both land, cut."""
    long_subject, long_name = "s" * 300, "n" * 256
    connector = MemoryConnector({
        "tasks": [ActivityRecord(source_id="T1", kind="call", subject=long_subject, last_modified_at=at(1)),
                  ActivityRecord(source_id="T2", kind="call", subject="short", last_modified_at=at(2))],
        "deals": [OpportunityRecord(source_id="D1", name=long_name, created_at=at(0), last_modified_at=at(3))],
    }, page_size=10, tables={"tasks": "activity", "deals": "opportunity"})
    run(db, connector)
    assert rows(db, "SELECT source_id, length(subject) FROM activity ORDER BY source_id") == [("T1", 255), ("T2", 5)]
    assert rows(db, "SELECT length(name) FROM opportunity") == [(255,)]


def _log_rewrites(db: Database) -> None:
    """SQLite has no xmin: a trigger the test adds logs each rewrite of an activity row."""
    if db.dialect == "sqlite":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE test_rewrites (source_id TEXT)")
            conn.exec_driver_sql("CREATE TRIGGER test_rewrite AFTER UPDATE ON activity BEGIN "
                                 "INSERT INTO test_rewrites VALUES (new.source_id); END")


def _row_version(db: Database, source_id: str) -> object:
    """Something that changes whenever the activity row is rewritten: PostgreSQL's xmin; on SQLite the
    row's place in a log kept by a trigger the test adds."""
    if db.dialect == "postgresql":
        return rows(db, f"SELECT xmin::text FROM activity WHERE source_id = '{source_id}'")[0][0]
    return rows(db, f"SELECT count(*) FROM test_rewrites WHERE source_id = '{source_id}'")[0][0]


def test_a_row_whose_parent_never_comes_is_not_rewritten_by_every_run(db: Database) -> None:
    _log_rewrites(db)
    tasks = [ActivityRecord(source_id="T1", kind="call", account_source_id="A-gone", last_modified_at=at(1)),
             ActivityRecord(source_id="T2", kind="call", account_source_id="A-late", last_modified_at=at(2))]
    connector = MemoryConnector({"accounts": [AccountRecord(source_id="A0", last_modified_at=at(0))],
                                 "tasks": tasks}, page_size=2, tables=TABLES)
    run(db, connector)
    before = _row_version(db, "T1"), _row_version(db, "T2")
    later = NOW + timedelta(hours=1)
    connector.put("accounts", AccountRecord(source_id="A-late", last_modified_at=later))
    run(db, connector, now=later)
    # T2's account came and the end-of-run pass wrote it; T1's never did, and its row was left alone
    assert rows(db, "SELECT t.source_id, a.source_id FROM activity t LEFT JOIN account a ON a.id = t.account_id "
                    "ORDER BY t.source_id") == [("T1", None), ("T2", "A-late")]
    assert _row_version(db, "T1") == before[0]
    assert _row_version(db, "T2") != before[1]


def test_activities_written_later_or_contacts_resolved_late_are_linked_to_the_converted_lead(db: Database) -> None:
    # L1 converted into C1 at minute -10; T1 (minute -20) is the lead's, T2 (minute -5) the contact's
    connector = MemoryConnector(world(), page_size=2, tables=TABLES)
    run(db, connector)
    later = NOW + timedelta(hours=1)
    # An edit of T1 arrives as the CRM has it (on the contact, no lead) and a task of minute -30 is written
    # for the first time: both predate the conversion, so both are L1's after the run.
    connector.put("tasks", ActivityRecord(source_id="T1", kind="call", subject="edited", contact_source_id="C1",
                                          created_at=at(-20), last_modified_at=later))
    connector.put("tasks", ActivityRecord(source_id="T3", kind="call", contact_source_id="C1", created_at=at(-30),
                                          last_modified_at=later))
    run(db, connector, now=later)
    assert rows(db, "SELECT source_id, lead_source_id FROM activity WHERE source_id LIKE 'T%' ORDER BY source_id") == [
        ("T1", "L1"), ("T2", None), ("T3", "L1")]

    # L2 converted into C2 at minute -10, and T5 (minute -50) is on C2; the lead and the task are synced in one
    # run, C2 only in the next: its arrival resolves their keys at the end of that run, which wrote no activity
    then = later + timedelta(hours=1)
    connector.put("leads", LeadRecord(source_id="L2", created_at=at(-100), converted_at=at(-10),
                                      converted_contact_source_id="C2", last_modified_at=then))
    connector.put("tasks", ActivityRecord(source_id="T5", kind="call", contact_source_id="C2", created_at=at(-50),
                                          last_modified_at=then))
    run(db, connector, now=then, objects=["leads", "tasks"])
    assert rows(db, "SELECT lead_source_id, contact_id FROM activity WHERE source_id = 'T5'") == [(None, None)]
    connector.put("contacts", ContactRecord(source_id="C2", name="Di", last_modified_at=then))
    run(db, connector, now=then + timedelta(minutes=1), objects=["contacts"])
    assert rows(db, "SELECT a.lead_source_id, l.source_id, c.source_id FROM activity a JOIN lead l ON l.id = a.lead_id "
                    "JOIN contact c ON c.id = a.contact_id WHERE a.source_id = 'T5'") == [("L2", "L2", "C2")]


def test_a_record_read_again_unchanged_is_not_rewritten(db: Database) -> None:
    _log_rewrites(db)
    tasks = [ActivityRecord(source_id="T1", kind="call", subject="same", last_modified_at=at(1)),
             ActivityRecord(source_id="T2", kind="call", subject="old", last_modified_at=at(2))]
    connector = MemoryConnector({"tasks": tasks}, page_size=2, tables=TABLES)
    run(db, connector)
    before = _row_version(db, "T1"), _row_version(db, "T2")
    later = NOW + timedelta(hours=1)
    connector.put("tasks", ActivityRecord(source_id="T2", kind="call", subject="new", last_modified_at=later))
    run(db, connector, now=later, full=True)  # reads T1 again too, exactly as it was
    assert rows(db, "SELECT source_id, subject FROM activity ORDER BY source_id") == [("T1", "same"), ("T2", "new")]
    assert _row_version(db, "T1") == before[0]
    assert _row_version(db, "T2") != before[1]


def test_a_change_outside_the_indexed_columns_leaves_the_indexes_alone(db: Database) -> None:
    """SQLite rewrites the entries of every index that reads a column named in ``SET``, changed or not.  A
    trigger ``UPDATE OF`` columns fires on exactly that condition: here the (kind, occurred_at) index's."""
    tasks = [ActivityRecord(source_id=f"T{n}", kind="call", subject="old", occurred_at=at(10), last_modified_at=at(n))
             for n in (1, 2, 3)]
    connector = MemoryConnector({"tasks": tasks}, page_size=3, tables=TABLES)
    run(db, connector)
    if db.dialect == "sqlite":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE test_index_writes (source_id TEXT)")
            conn.exec_driver_sql("CREATE TRIGGER test_index_write AFTER UPDATE OF kind, occurred_at ON activity "
                                 "BEGIN INSERT INTO test_index_writes VALUES (new.source_id); END")
    later = NOW + timedelta(hours=1)
    connector.put("tasks", ActivityRecord(source_id="T1", kind="call", subject="new", occurred_at=at(10),
                                          last_modified_at=later))
    connector.put("tasks", ActivityRecord(source_id="T2", kind="meeting", subject="old", occurred_at=at(10),
                                          last_modified_at=later))
    run(db, connector, now=later, full=True)  # T3 is read again unchanged
    assert rows(db, "SELECT source_id, kind, subject FROM activity ORDER BY source_id") == [
        ("T1", "call", "new"), ("T2", "meeting", "old"), ("T3", "call", "old")]
    assert rows(db, "SELECT source_id FROM activity WHERE kind = 'meeting' AND occurred_at IS NOT NULL") == [("T2",)]
    if db.dialect == "sqlite":
        # only T2, whose kind changed, had its index entries rewritten
        assert rows(db, "SELECT source_id FROM test_index_writes") == [("T2",)]


def test_past_the_first_load_a_row_is_updated_in_place_unless_a_key_or_an_indexed_value_moved(db: Database) -> None:
    """A page of an incremental run mixes rows: changed outside the indexed columns (with a key resolved, one
    left NULL because its contact was never synced), changed in an indexed column, read again unchanged (the
    overlap), new, moved to another contact (from one never synced, and from one synced to another), and one
    whose owner's user now maps to another rep.  On SQLite the first four-of-a-kind are written by the UPDATE
    in place; only the others take the statement that sets every column (and looks the keys up), not the
    whole page.  On PostgreSQL a key is kept from the stored row only while its CRM id is unchanged."""
    window = NOW  # the first load's watermark (its start, no overlap here): the next run reads T3 again
    users = [UserRecord(source_id="U1", email="ann@example.com", name="Ann", last_modified_at=at(0))]
    contacts = [ContactRecord(source_id="C1", name="Cy", last_modified_at=at(0)),
                ContactRecord(source_id="C2", name="Di", last_modified_at=at(0))]

    def task(n: int, stamp: datetime, *, kind: str = "call", subject: str = "old", contact: str | None = "C1",
             owner: str | None = None) -> ActivityRecord:
        return ActivityRecord(source_id=f"T{n}", kind=kind, subject=subject, occurred_at=at(10), last_modified_at=stamp,
                              contact_source_id=contact, owner_source_id=owner)

    tasks = [task(1, at(1)), task(2, at(2)), task(3, window), task(5, at(5), contact="C-gone"),
             task(6, at(6), contact="C-gone"), task(7, at(7), owner="U1"), task(8, at(8))]
    connector = MemoryConnector({"users": users, "contacts": contacts, "tasks": tasks}, page_size=10, tables=TABLES)
    run(db, connector)
    first_rep = rows(db, "SELECT owner_rep_id FROM activity WHERE source_id = 'T7'")[0][0]
    assert first_rep is not None
    later = NOW + timedelta(hours=1)
    connector.put("users", UserRecord(source_id="U1", email="ann.new@example.com", name="Ann", last_modified_at=later))
    for changed in (task(1, later, subject="new"), task(2, later, kind="meeting"), task(4, later, kind="email"),
                    task(5, later, subject="new", contact="C-gone"), task(6, later, contact="C1"),
                    task(7, later, subject="new", owner="U1"), task(8, later, contact="C2")):
        connector.put("tasks", changed)
    in_place, every_column = [], []
    if db.dialect == "sqlite":
        def remember(dbapi_connection, _record) -> None:
            def trace(sql: str) -> None:  # sqlite3 traces each row of an executemany as its own statement
                if sql.startswith("UPDATE activity SET last_modified_at"):
                    in_place.append(re.search(r"source_id = '([^']+)'", sql).group(1))
                elif sql.startswith("INSERT INTO activity") and "kind = excluded.kind" in sql:
                    every_column.append(sql.split("'")[1])
            dbapi_connection.set_trace_callback(trace)

        db.engine.dispose()
        event.listen(db.engine, "connect", remember)
    run(db, connector, now=later)
    assert rows(db, "SELECT a.source_id, a.kind, a.subject, a.contact_source_id, c.source_id FROM activity a "
                    "LEFT JOIN contact c ON c.id = a.contact_id ORDER BY a.source_id") == [
        ("T1", "call", "new", "C1", "C1"), ("T2", "meeting", "old", "C1", "C1"), ("T3", "call", "old", "C1", "C1"),
        ("T4", "email", "old", "C1", "C1"), ("T5", "call", "new", "C-gone", None), ("T6", "call", "old", "C1", "C1"),
        ("T7", "call", "new", "C1", "C1"), ("T8", "call", "old", "C2", "C2")]
    assert rows(db, "SELECT source_id FROM activity WHERE kind = 'meeting' AND occurred_at IS NOT NULL") == [("T2",)]
    new_rep = rows(db, "SELECT id FROM rep WHERE email = 'ann.new@example.com'")[0][0]
    assert new_rep != first_rep
    assert rows(db, "SELECT owner_rep_id FROM activity WHERE source_id = 'T7'") == [(new_rep,)]
    if db.dialect == "sqlite":
        assert sorted(in_place) == ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"]  # each tried in place once
        # T1 and T5 were written in place; T4 is new, T3 unchanged, T2 (kind), T6 and T8 (contact) changed an
        # indexed value, and T7's owner maps to another rep: those took the statement that sets every column
        assert sorted(every_column) == ["T2", "T3", "T4", "T6", "T7", "T8"]


def test_a_statement_over_a_list_of_ids_has_one_text_whatever_the_length(db: Database) -> None:
    """Drivers keep prepared statements by their text (sqlite3: 128 per connection).  A text per list length
    kept dozens of big programs alive through a load: 36 MB at 100k deals."""
    tasks = [ActivityRecord(source_id=f"T{n}", kind="call", last_modified_at=at(n)) for n in range(6)]
    run(db, MemoryConnector({"tasks": tasks}, page_size=6, tables=TABLES))
    texts: set[str] = set()

    def remember(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("UPDATE activity SET is_deleted"):
            texts.add(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    writer = CacheWriter(db.dialect, WriterSettings("crm", "USD", "Asia/Jakarta", {}))
    marked = []
    for ids in (["T0"], ["T1", "T2"], ["T3", "T4", "T5", "T-not-synced"]):
        with db.write_connection() as conn:
            marked.append(writer.mark_deleted(conn, "activity", ids))
    assert marked == [1, 2, 3]  # T-not-synced matches no row
    assert len(texts) == 1
    assert rows(db, "SELECT count(*) FROM activity WHERE is_deleted") == [(6,)]


def _wait_for_counted_rows(db: Database, table: str, live: int) -> None:
    """PostgreSQL publishes a session's table counters when it goes idle, not at commit: wait for them."""
    deadline = time.monotonic() + 20
    while rows(db, f"SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = '{table}'") != [(live,)]:
        assert time.monotonic() < deadline, f"PostgreSQL never counted {live} rows in {table}"
        time.sleep(0.2)


def test_statistics_taken_at_a_tenth_of_the_table_still_count_as_current(db: Database) -> None:
    if db.dialect != "postgresql":
        return  # SQLite plans without them
    from agent.sync.writer import _statistics_current

    # a table of the test's own, which autovacuum leaves alone (it would analyse on its own schedule)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE test_stats (n integer) WITH (autovacuum_enabled = false)")

    def insert(first: int, count: int) -> None:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO test_stats SELECT generate_series({first}, {first + count - 1})")

    def current() -> bool:
        with db.engine.connect() as conn:
            return _statistics_current(conn, "test_stats")

    try:
        insert(1, 1000)
        _wait_for_counted_rows(db, "test_stats", 1000)
        assert not current()  # never analysed
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE test_stats")
        insert(1001, 9000)  # 10,000 rows: 9,000 changed since, within 50 + 9 × 1,000
        _wait_for_counted_rows(db, "test_stats", 10_000)
        assert current()
        insert(10_001, 51)  # 9,051 changed: past it
        _wait_for_counted_rows(db, "test_stats", 10_051)
        assert not current()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE test_stats")
            # what a crash or a copy from a template does to the activity counters; the statistics stay
            conn.exec_driver_sql("SELECT pg_stat_reset_single_table_counters('test_stats'::regclass)")
        assert rows(db, "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'test_stats'") == [(None,)]
        assert current()
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE test_stats")


def test_a_run_analyses_the_tables_it_changed_by_more_than_a_tenth(db: Database) -> None:
    if db.dialect != "postgresql":
        return  # SQLite plans without statistics
    settings = WriterSettings("crm", "USD", "UTC", {})

    def write(first: int, count: int) -> list[str]:
        """Write ``count`` new tasks with one writer (one run), wait until PostgreSQL counted them, and
        return what the end of the run analysed."""
        writer = CacheWriter(db.dialect, settings)
        tasks = [ActivityRecord(source_id=f"T{n}", kind="call", last_modified_at=at(n)) for n in
                 range(first, first + count)]
        with db.write_connection() as conn:
            writer.write_page(conn, "tasks", Page(cursor=Cursor(), records=tasks), NOW)
        _wait_for_counted_rows(db, "activity", first + count - 1)
        with db.write_connection() as conn:
            return writer.refresh_statistics(conn)

    def analysed_at() -> object:
        return rows(db, "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'activity'")[0][0]

    assert write(1, 200) == ["activity"]  # never analysed
    first = analysed_at()
    assert first is not None
    # 50 + a tenth of 200 = 70 rows may change before the statistics count as stale
    assert write(201, 70) == []
    assert analysed_at() == first
    assert write(271, 1) == ["activity"]  # 71 changed
    assert analysed_at() != first


class _FetchWatch(MemoryConnector):
    """Sets ``begun`` when the fetch of ``watched`` begins (in whichever thread runs it)."""

    def __init__(self, *args: object, watched: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.watched = watched
        self.begun = threading.Event()

    def fetch(self, object_name: str, cursor: Cursor, context: SyncContext):
        if object_name == self.watched:
            self.begun.set()
        yield from super().fetch(object_name, cursor, context)


class _OnLastPage(NoProgress):
    """Runs ``action`` once the page of ``object_name`` is committed."""

    def __init__(self, object_name: str, action) -> None:
        self.object_name = object_name
        self.action = action

    def page_written(self, connection: str, object_name: str, records: int, expected_total: int | None) -> None:
        if object_name == self.object_name:
            self.action()


def test_the_next_object_is_fetched_while_the_page_before_it_is_written(db: Database) -> None:
    connector = _FetchWatch({"accounts": [AccountRecord(source_id="A1", last_modified_at=at(0))],
                             "contacts": [ContactRecord(source_id="C1", account_source_id="A1",
                                                        last_modified_at=at(1))]},
                            page_size=2, tables=TABLES, watched="contacts")
    seen: list[bool] = []
    # The accounts' only page is committed; before the engine goes on, the contacts' fetch has begun.
    progress = _OnLastPage("accounts", lambda: seen.append(connector.begun.wait(timeout=10)))
    outcomes = run(db, connector, engine=SyncEngine(db, clock=lambda: NOW, progress=progress))
    assert seen == [True]
    assert [(o.object, o.status, o.records) for o in outcomes] == [("accounts", "ok", 1), ("contacts", "ok", 1)]
    assert rows(db, "SELECT c.source_id, a.source_id FROM contact c JOIN account a ON a.id = c.account_id") == [
        ("C1", "A1")]
    assert rows(db, "SELECT object, status FROM sync_run ORDER BY id") == [("accounts", "ok"), ("contacts", "ok")]


class _FetchLog(MemoryConnector):
    """Records the order in which objects' fetches begin (in whichever thread runs them)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.begun: list[str] = []
        self.changed = threading.Condition()

    def fetch(self, object_name: str, cursor: Cursor, context: SyncContext):
        with self.changed:
            self.begun.append(object_name)
            self.changed.notify_all()
        yield from super().fetch(object_name, cursor, context)

    def wait_for(self, count: int) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.begun) >= count, timeout=10)
            return list(self.begun)


def test_in_steady_state_objects_are_opened_up_to_three_ahead_of_the_one_being_written(db: Database) -> None:
    """An incremental run is mostly one small page per object; a CRM slow to answer one object's query must
    not leave the writer waiting, so several objects are fetched ahead.  Three at most: each holds pages."""
    names = ["roles", "accounts", "contacts", "leads", "deals", "tasks"]
    records = {"roles": [TeamRecord(source_id="R1", name="East")],
               "accounts": [AccountRecord(source_id="A1", last_modified_at=at(0))],
               "contacts": [ContactRecord(source_id="C1", last_modified_at=at(0))],
               "leads": [LeadRecord(source_id="L1", created_at=at(0), last_modified_at=at(0))],
               "deals": [OpportunityRecord(source_id="D1", name="D", created_at=at(0), last_modified_at=at(0))],
               "tasks": [ActivityRecord(source_id="T1", kind="call", last_modified_at=at(0))]}
    connector = _FetchLog(records, page_size=5, tables=TABLES)
    run(db, connector)  # the first load
    later = NOW + timedelta(hours=1)
    connector.put("accounts", AccountRecord(source_id="A1", name="Changed", last_modified_at=later))
    connector.begun.clear()
    seen: list[list[str]] = []

    def while_accounts_are_written() -> None:
        seen.append(connector.wait_for(5))  # accounts and the three after it
        time.sleep(0.2)  # room for a fourth, were it opened
        seen.append(list(connector.begun))

    engine = SyncEngine(db, clock=lambda: later, progress=_OnLastPage("accounts", while_accounts_are_written))
    outcomes = run(db, connector, engine=engine, now=later)
    assert seen == [names[:5], names[:5]]  # tasks waited for room
    assert connector.begun == names
    assert [(o.object, o.status, o.records) for o in outcomes] == [
        ("roles", "ok", 0), ("accounts", "ok", 1), ("contacts", "ok", 0), ("leads", "ok", 0), ("deals", "ok", 0),
        ("tasks", "ok", 0)]
    assert rows(db, "SELECT name FROM account") == [("Changed",)]
    assert rows(db, "SELECT count(*) FROM sync_cursor WHERE lease_owner IS NOT NULL") == [(0,)]


def test_an_interrupted_run_lets_go_of_the_object_it_opened_ahead(db: Database) -> None:
    connector = _FetchWatch({"accounts": [AccountRecord(source_id="A1", last_modified_at=at(0))],
                             "contacts": [ContactRecord(source_id="C1", last_modified_at=at(1))]},
                            page_size=2, tables=TABLES, watched="contacts")

    def interrupt() -> None:
        assert connector.begun.wait(timeout=10)
        raise KeyboardInterrupt

    engine = SyncEngine(db, clock=lambda: NOW, progress=_OnLastPage("accounts", interrupt))
    try:
        run(db, connector, engine=engine)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt did not reach the caller")
    # the contacts were opened (lease, run row) but never written: released, and said so
    assert rows(db, "SELECT object, lease_owner, initial_load_done, records_synced FROM sync_cursor "
                    "WHERE object = 'contacts'") == [("contacts", None, False, 0)]
    assert rows(db, "SELECT status FROM sync_run WHERE object = 'contacts'") == [("stopped",)]
    assert rows(db, "SELECT count(*) FROM contact") == [(0,)]
    outcomes = run(db, connector)  # the next run syncs them
    assert [(o.object, o.records) for o in outcomes] == [("accounts", 0), ("contacts", 1)]


def test_instants_are_stored_as_utc_text_whatever_zone_they_carry() -> None:
    from agent.sync.writer import _sqlite_value

    jakarta = ZoneInfo("Asia/Jakarta")  # UTC+7, no daylight saving
    assert _sqlite_value(datetime(2026, 1, 1, 7, 30, tzinfo=UTC)) == "2026-01-01 07:30:00.000000"
    assert _sqlite_value(datetime(2026, 1, 1, 7, 30, 0, 250, tzinfo=jakarta)) == "2026-01-01 00:30:00.000250"
    assert _sqlite_value(datetime(2026, 1, 1, 3, 0, tzinfo=ZoneInfo("UTC"))) == "2026-01-01 03:00:00.000000"
    assert _sqlite_value(date(2026, 2, 28)) == "2026-02-28"
    assert _sqlite_value(True) == 1
    try:
        _sqlite_value(datetime(2026, 1, 1, 7, 30))
    except ValueError as error:
        assert "naive datetime" in str(error)
    else:
        raise AssertionError("a naive datetime was stored")
