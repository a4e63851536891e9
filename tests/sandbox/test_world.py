"""The world store: schema, checks, defaults, derived crm, writes and the world's clock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from connectors.sandbox.testing import make_world
from connectors.sandbox.world.store import World, WorldError, instant_ms

TEAMS = [
    {"id": 1, "name": "East", "region": "NA", "crm": "salesforce"},
    {"id": 2, "name": "West", "region": "EMEA", "crm": "hubspot"},
]
REPS = [
    {"id": 10, "name": "Ann", "email": "ann@example.com", "team_id": 1},
    {"id": 20, "name": "Bo", "email": "bo@example.com", "team_id": 2, "active": False},
    {"id": 30, "name": "Cy", "email": "cy@example.com"},
]
PIPELINES = [{"id": 1, "name": "Sales"}]
STAGES = [
    {"id": 1, "pipeline_id": 1, "name": "Qualify", "sort_order": 1, "probability": 0.1},
    {"id": 2, "pipeline_id": 1, "name": "Closed Won", "sort_order": 2, "probability": 1.0, "is_closed": True,
     "is_won": True},
]


def small_world(tmp_path: Path) -> World:
    return make_world(tmp_path, {
        "opportunities": [  # given before its parents on purpose: make_world loads parents first
            {"id": 100, "name": "Ann's deal", "owner_rep_id": 10, "pipeline_id": 1, "stage_id": 1,
             "amount": 1000, "created_at": "2026-01-05T10:00:00Z"},
            {"id": 200, "name": "Bo's deal", "owner_rep_id": 20, "pipeline_id": 1, "stage_id": 2,
             "amount": 500.5, "currency": "EUR", "amount_home": 550.0,
             "created_at": "2026-01-06T10:00:00.000Z", "updated_at": "2026-02-01T08:00:00.250Z"},
            {"id": 300, "name": "Nobody's deal", "pipeline_id": 1, "stage_id": 1,
             "created_at": "2026-01-07T00:00:00+02:00"},
        ],
        "teams": TEAMS, "reps": REPS, "pipelines": PIPELINES, "stages": STAGES,
        "line_items": [{"id": 1, "opportunity_id": 200, "quantity": 2, "unit_price": 250.25}],
        "stage_history": [{"id": 1, "opportunity_id": 200, "stage_id": 2, "entered_at": "2026-02-01T08:00:00Z"}],
        "activities": [{"id": 1, "kind": "call", "owner_rep_id": 20, "created_at": "2026-01-08T09:00:00Z"}],
        "contracts": [{"id": 1, "account_id": 5, "opportunity_id": 200, "start_date": "2026-03-01"}],
    }, home_currency="USD", now="2026-03-01T00:00:00Z", seed=7)


def test_defaults_and_instant_form(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    ann, bo, nobody = world.execute("SELECT * FROM opportunities ORDER BY id")
    assert ann["created_at"] == "2026-01-05T10:00:00.000Z"
    assert ann["updated_at"] == ann["created_at"]  # updated_at defaults to created_at
    assert ann["currency"] == "USD" and ann["deleted"] == 0 and ann["is_won"] == 0
    assert bo["currency"] == "EUR" and bo["updated_at"] == "2026-02-01T08:00:00.250Z"
    assert nobody["created_at"] == "2026-01-06T22:00:00.000Z"  # +02:00 turned into UTC
    assert world.get("reps", 20)["active"] == 0 and world.get("reps", 10)["active"] == 1
    history = world.get("stage_history", 1)
    assert history["created_at"] == history["entered_at"] == "2026-02-01T08:00:00.000Z"
    assert (world.seed, world.home_currency, world.timezone, world.reference_now) == (
        7, "USD", "UTC", "2026-03-01T00:00:00.000Z")


def test_crm_is_derived_from_the_owners_team(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    crm = {row["id"]: row["crm"] for row in world.execute("SELECT id, crm FROM opportunities")}
    assert crm == {100: "salesforce", 200: "hubspot", 300: "salesforce"}  # 300 has no owner
    reps = {row["id"]: row["crm"] for row in world.execute("SELECT id, crm FROM reps")}
    assert reps == {10: "salesforce", 20: "hubspot", 30: "salesforce"}  # Cy has no team
    assert world.get("line_items", 1)["crm"] == "hubspot"  # its opportunity's
    assert world.get("stage_history", 1)["crm"] == "hubspot"
    assert world.get("activities", 1)["crm"] == "hubspot"
    assert world.get("contracts", 1)["crm"] == "hubspot"


def test_insert_into_a_world_derives_crm_for_the_new_rows(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    world.insert("accounts", [{"id": 9, "name": "Acme", "owner_rep_id": 20}])
    assert world.get("accounts", 9)["crm"] == "hubspot"


@pytest.mark.parametrize(("table", "row", "message"), [
    ("reps", {"id": 1, "name": "A"}, "missing required key 'email'"),
    ("reps", {"id": 1, "name": "A", "email": "a@x", "colour": "red"}, "reps has no key 'colour'"),
    ("reps", {"id": 1, "name": "A", "email": "a@x", "crm": "hubspot"}, "reps has no key 'crm'"),
    ("reps", {"id": "1", "name": "A", "email": "a@x"}, "reps.id must be a whole number"),
    ("reps", {"id": 1, "name": "A", "email": "a@x", "active": "yes"}, "reps.active must be true or false"),
    ("opportunities", {"id": 1, "name": "x", "pipeline_id": 1, "stage_id": 1, "amount": "10"},
     "opportunities.amount must be a number"),
    ("opportunities", {"id": 1, "name": "x", "pipeline_id": 1, "stage_id": 1, "close_date": "2026-02-30"},
     "not a real date"),
    ("opportunities", {"id": 1, "name": "x", "pipeline_id": 1, "stage_id": 1, "created_at": "yesterday"},
     "must be an ISO 8601 instant"),
    ("teams", {"id": 1, "name": "x", "crm": "pipedrive"}, "teams.crm must be one of salesforce, hubspot"),
    ("widgets", {"id": 1}, "no table 'widgets'"),
])
def test_bad_records_are_refused_with_the_key_named(tmp_path: Path, table: str, row: dict, message: str) -> None:
    world = World.create(tmp_path / "w.sqlite")
    with pytest.raises(WorldError, match=message):
        world.insert(table, [row])


def test_duplicate_ids_are_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    world = World.create(tmp_path / "w.sqlite")
    with pytest.raises(WorldError, match="ids must be unique"):
        world.insert("teams", [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
    assert world.count("teams") == 0


def test_update_bumps_past_everything_the_world_holds(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    # A record dated far ahead of the wall clock: the world's clock must still move past it.
    world.insert("accounts", [{"id": 1, "name": "Future Co", "created_at": "2099-01-01T00:00:00Z"}])
    world.update("opportunities", 100, {"amount": 1200})
    world.update("opportunities", 300, {"amount": 5})
    first, second = (world.get("opportunities", i)["updated_at"] for i in (100, 300))
    assert world.get("opportunities", 100)["amount"] == 1200.0
    assert instant_ms("2099-01-01T00:00:00Z") < instant_ms(first) < instant_ms(second)


def test_update_without_bump_and_bad_updates(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    world.update("opportunities", 100, {"name": "Renamed"}, bump=False)
    assert world.get("opportunities", 100)["updated_at"] == "2026-01-05T10:00:00.000Z"
    with pytest.raises(WorldError, match="no such key"):
        world.update("opportunities", 100, {"nope": 1})
    with pytest.raises(KeyError, match="opportunities has no record with id 999"):
        world.update("opportunities", 999, {"name": "x"})


def test_delete_is_soft_and_leaves_updated_at(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    world.delete("opportunities", 200)
    row = world.get("opportunities", 200)
    assert row["deleted"] == 1 and row["deleted_at"] is not None
    assert row["updated_at"] == "2026-02-01T08:00:00.250Z"
    world.purge("opportunities", 200)
    assert world.get("opportunities", 200) is None
    assert world.count("opportunities") == 2


def test_now_is_strictly_increasing_across_threads(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    stamps: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            stamp = world.now()
            with lock:
                stamps.append(stamp)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(stamps)) == 800  # no two alike
    assert all(stamp.endswith("Z") and len(stamp) == 24 for stamp in stamps)


def test_iter_query_streams_in_batches_and_execute_writes(tmp_path: Path) -> None:
    world = World.create(tmp_path / "w.sqlite")
    world.insert("teams", ({"id": i, "name": f"team {i}"} for i in range(1, 2501)))
    ids = [row["id"] for row in world.iter_query("SELECT id FROM teams ORDER BY id", batch=1000)]
    assert ids == list(range(1, 2501))
    world.execute("UPDATE teams SET region = ? WHERE id <= ?", ("EMEA", 10))
    assert world.count("teams", "region = ?", ("EMEA",)) == 10


def test_open_reads_the_settings_and_refuses_missing_files(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    world.close()
    reopened = World.open(world.path)
    assert reopened.seed == 7 and reopened.count("opportunities") == 3
    with pytest.raises(FileNotFoundError, match="kpi-agent sandbox --seed"):
        World.open(tmp_path / "missing.sqlite")


def test_reads_see_committed_writes_from_other_threads(tmp_path: Path) -> None:
    world = small_world(tmp_path)
    assert world.get("opportunities", 100)["amount"] == 1000.0  # this thread's read connection is open
    writer = threading.Thread(target=world.update, args=("opportunities", 100, {"amount": 7}))
    writer.start()
    writer.join()
    assert world.get("opportunities", 100)["amount"] == 7.0
