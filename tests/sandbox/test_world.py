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


# -- the generator -----------------------------------------------------------------------------------

import datetime as dt  # noqa: E402
import json  # noqa: E402
from collections import defaultdict  # noqa: E402

from connectors.sandbox.world.generate import generate_world, size_to_opportunities  # noqa: E402
from connectors.sandbox.world.jsonl import WorldFileError, dump_world, load_world  # noqa: E402

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A generated world of 2,000 opportunities (about a third of a second to make)."""
    return generate_world(tmp_path_factory.mktemp("gen") / "small.sqlite", seed=42, size="small", now=NOW)


def test_size_names_and_numbers() -> None:
    assert [size_to_opportunities(s) for s in ("tiny", "Small", "medium", "large", 1500, "2_500")] == [
        12, 2000, 50_000, 1_000_000, 1500, 2500]
    for bad in ("huge", 0, -3):
        with pytest.raises(ValueError, match="world size"):
            size_to_opportunities(bad)


def test_tiny_world_has_every_kind_of_rep(tmp_path: Path) -> None:
    world = generate_world(tmp_path / "tiny.sqlite", seed=1, size="tiny", now=NOW)
    assert world.count("opportunities") == 12
    assert (world.seed, world.size, world.home_currency, world.reference_now) == (
        1, "tiny", "USD", "2026-03-01T00:00:00.000Z")
    teams = world.execute("SELECT id, crm FROM teams ORDER BY id")
    assert [tuple(team) for team in teams] == [(1, "salesforce"), (2, "hubspot")]
    reps = world.execute("SELECT id, team_id, manager_id, active, profile FROM reps ORDER BY id")
    # Reps alternate between the two teams; the first of each team manages it; rep 6 has left.
    assert [tuple(rep) for rep in reps] == [
        (1, 1, None, 1, "balanced"), (2, 2, None, 1, "low_activity"), (3, 1, 1, 1, "ineffective"),
        (4, 2, 2, 1, "star"), (5, 1, 1, 1, "balanced"), (6, 2, 2, 0, "balanced")]
    assert world.count("pipelines") == 2 and world.count("stages") == 11 and world.count("products") == 8
    corporate = world.execute("SELECT iso_code, rate FROM currency_rates WHERE start_date IS NULL")
    assert [tuple(row) for row in corporate] == [("EUR", 0.92)]


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.sqlite" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        generate_world(path, seed=seed, size=300, now=NOW).close()
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_counts_of_a_small_world(small: World) -> None:
    assert small.count("opportunities") == 2000
    assert small.count("activities") == 5 * 2000  # leads' activities make up the exact total
    assert small.count("reps") == 22  # max(6, round(sqrt(2000) / 2))
    assert small.count("teams") == 3  # ceil(22 / 8)
    assert small.count("leads", "converted_at IS NULL") == 1600  # 0.8 per opportunity stay unconverted


def test_stage_history_ends_in_the_deals_stage(small: World) -> None:
    orphans = small.execute("SELECT COUNT(*) FROM stage_history h LEFT JOIN opportunities o "
                            "ON o.id = h.opportunity_id WHERE o.id IS NULL")[0][0]
    assert orphans == 0
    rows = small.execute("""
        SELECT o.id, o.stage_id, o.amount, o.created_at, o.is_closed, o.is_won, s.is_closed AS stage_closed,
               s.is_won AS stage_won, h.stage_id AS last_stage, h.amount AS last_amount
        FROM opportunities o JOIN stages s ON s.id = o.stage_id
        JOIN stage_history h ON h.opportunity_id = o.id
        WHERE h.entered_at = (SELECT MAX(entered_at) FROM stage_history WHERE opportunity_id = o.id)""")
    assert len(rows) == 2000  # one last row per deal: entry times never tie
    for row in rows:
        assert (row["last_stage"], row["last_amount"]) == (row["stage_id"], row["amount"])
        assert (row["is_closed"], row["is_won"]) == (row["stage_closed"], row["stage_won"])
    first_entries = small.execute("""
        SELECT COUNT(*) FROM opportunities o JOIN stage_history h ON h.opportunity_id = o.id
        WHERE h.entered_at = (SELECT MIN(entered_at) FROM stage_history WHERE opportunity_id = o.id)
          AND h.entered_at = o.created_at""")[0][0]
    assert first_entries == 2000  # every deal entered its first stage when it was created
    won_stages = {row[0] for row in small.execute(
        "SELECT DISTINCT s.name FROM opportunities o JOIN stages s ON s.id = o.stage_id WHERE o.is_won = 1")}
    assert won_stages <= {"Closed Won", "Renewed"} and "Closed Won" in won_stages


def test_money_adds_up(small: World) -> None:
    mismatched = small.execute("""
        SELECT o.id, o.amount, ROUND(SUM(l.total_price), 2) AS lines FROM opportunities o
        JOIN line_items l ON l.opportunity_id = o.id GROUP BY o.id HAVING ABS(o.amount - lines) > 0.005""")
    assert mismatched == []
    for line in small.execute("SELECT * FROM line_items"):
        assert line["unit_price"] == round(line["list_price"] * (1 - line["discount_pct"] / 100), 2)
        assert line["total_price"] == round(line["unit_price"] * line["quantity"], 2)
        assert (line["recurring_term_months"] is None) == (line["billing_frequency"] is None)
    assert small.count("line_items", "discount_pct > 0") > 0
    assert small.count("line_items", "recurring_term_months IS NOT NULL") > 0


def test_amount_home_uses_the_dated_rate_of_the_close_date(small: World) -> None:
    rates = [(row["start_date"], row["rate"]) for row in small.execute(
        "SELECT start_date, rate FROM currency_rates WHERE start_date IS NOT NULL ORDER BY start_date")]
    checked = defaultdict(int)
    for deal in small.execute("SELECT currency, amount, amount_home, close_date FROM opportunities"):
        in_force = [rate for start, rate in rates if start <= deal["close_date"]]
        rate = 1.0 if deal["currency"] == "USD" else in_force[-1]
        assert deal["amount_home"] == round(deal["amount"] / rate, 2)
        checked[deal["currency"]] += 1
    assert checked["EUR"] > 100 and checked["USD"] > 100


def test_converted_leads_point_at_their_deal_account_and_contact(small: World) -> None:
    converted = small.execute("""
        SELECT l.id, l.converted_at, o.account_id AS deal_account, o.created_at AS deal_created,
               l.converted_account_id, c.account_id AS contact_account, o.deal_type
        FROM leads l JOIN opportunities o ON o.id = l.converted_opportunity_id
        JOIN contacts c ON c.id = l.converted_contact_id WHERE l.status = 'Closed - Converted'""")
    assert len(converted) == small.count("leads", "status = 'Closed - Converted'") > 100
    for lead in converted:
        assert lead["deal_account"] == lead["converted_account_id"] == lead["contact_account"]
        assert lead["converted_at"] == lead["deal_created"] and lead["deal_type"] == "new_business"
    lead_activities = small.execute("""SELECT COUNT(*) FROM activities a JOIN leads l ON l.id = a.lead_id
                                       WHERE l.status = 'Closed - Converted'""")[0][0]
    assert lead_activities >= len(converted)  # every converted lead got at least its first response
    early = small.execute("""SELECT COUNT(*) FROM activities a JOIN leads l ON l.id = a.lead_id
                             WHERE a.occurred_at < l.created_at""")[0][0]
    assert early == 0


def test_contracts_renewals_and_churn(small: World) -> None:
    starts = small.execute("""SELECT COUNT(*) FROM contracts c JOIN opportunities o ON o.id = c.opportunity_id
                              WHERE o.is_won = 1 AND c.start_date = o.close_date""")[0][0]
    assert starts == small.count("contracts") > 100  # each contract starts when its won deal closes
    statuses = {row[0] for row in small.execute("SELECT DISTINCT status FROM contracts")}
    assert {"Activated", "Expired", "Cancelled"} <= statuses
    outcomes = {row[0]: row[1] for row in small.execute(
        "SELECT s.name, COUNT(*) FROM opportunities o JOIN stages s ON s.id = o.stage_id "
        "WHERE o.deal_type = 'renewal' GROUP BY s.name")}
    assert outcomes.get("Renewed", 0) > 0 and outcomes.get("Churned", 0) > 0
    assert small.count("opportunities", "deal_type = 'renewal' AND pipeline_id <> 2") == 0


def test_rep_profiles_show_in_the_data(small: World) -> None:
    per_profile = {row["profile"]: row for row in small.execute("""
        SELECT r.profile, COUNT(a.id) * 1.0 / COUNT(DISTINCT r.id) AS per_rep,
               AVG(a.kind = 'meeting') AS meeting_share
        FROM reps r JOIN activities a ON a.owner_rep_id = r.id GROUP BY r.profile""")}
    assert set(per_profile) == {"balanced", "low_activity", "ineffective", "star"}
    assert per_profile["low_activity"]["per_rep"] < per_profile["balanced"]["per_rep"] / 2
    assert per_profile["ineffective"]["per_rep"] > per_profile["low_activity"]["per_rep"] * 2
    assert per_profile["ineffective"]["meeting_share"] < per_profile["balanced"]["meeting_share"] / 2
    win_rate = {row[0]: row[1] for row in small.execute("""
        SELECT r.profile, SUM(o.is_won) * 1.0 / SUM(o.is_closed) FROM reps r
        JOIN opportunities o ON o.owner_rep_id = r.id WHERE o.deal_type = 'new_business' GROUP BY r.profile""")}
    assert win_rate["ineffective"] < win_rate["balanced"] < win_rate["star"]


def test_inactive_owned_unowned_and_deleted_records(small: World) -> None:
    assert small.count("reps", "active = 0") >= 1
    late = small.execute("""SELECT COUNT(*) FROM opportunities o JOIN reps r ON r.id = o.owner_rep_id
                            WHERE r.active = 0 AND o.created_at >= r.updated_at""")[0][0]
    assert late == 0  # a rep who left gets no new deals
    assert small.count("accounts", "owner_rep_id IS NULL") > 0
    assert small.count("leads", "owner_rep_id IS NULL") > 0
    for table in ("opportunities", "accounts", "leads", "activities"):
        assert small.count(table, "deleted = 1") > 0, table
        assert small.count(table, "deleted = 1 AND (deleted_at IS NULL OR deleted_at < updated_at)") == 0
    assert small.count("activities", "occurred_at > ? AND status = 'completed'", (small.reference_now,)) == 0


def test_generated_crm_is_the_derived_one(small: World, tmp_path: Path) -> None:
    tables = ("reps", "accounts", "contacts", "leads", "opportunities", "line_items", "stage_history",
              "activities", "contracts")
    before = {table: small.execute(f"SELECT id, crm FROM {table} ORDER BY id") for table in tables}
    copy = World.create(tmp_path / "copy.sqlite")
    copy.close()
    dump_world(small, tmp_path / "dump")
    reloaded = load_world(tmp_path / "dump", tmp_path / "copy.sqlite")  # derives crm from the owners
    for table in tables:
        assert [tuple(row) for row in reloaded.execute(f"SELECT id, crm FROM {table} ORDER BY id")] == [
            tuple(row) for row in before[table]], table
    assert {row[0] for row in before["opportunities"]} and small.count("opportunities", "crm = 'hubspot'") > 0


# -- JSON Lines ---------------------------------------------------------------------------------------

def write_world_dir(directory: Path, files: dict[str, list[dict] | str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for table, lines in files.items():
        text = lines if isinstance(lines, str) else "".join(json.dumps(line) + "\n" for line in lines)
        (directory / f"{table}.jsonl").write_text(text)
    return directory


def test_load_a_hand_written_world(tmp_path: Path) -> None:
    directory = write_world_dir(tmp_path / "case", {
        "world": [{"seed": 3, "home_currency": "eur", "timezone": "Asia/Jakarta", "now": "2026-03-04T09:15:00Z"}],
        "teams": [{"id": 1, "name": "Jakarta", "region": "APAC", "crm": "hubspot"}],
        "reps": [{"id": 7, "name": "Sari", "email": "sari@example.com", "team_id": 1, "profile": "star"}],
        "pipelines": [{"id": 1, "name": "Sales"}],
        "stages": [{"id": 1, "pipeline_id": 1, "name": "Open", "sort_order": 1}],
        "opportunities": "\n" + json.dumps({"id": 1, "name": "Deal", "owner_rep_id": 7, "pipeline_id": 1,
                                            "stage_id": 1, "amount": 10, "created_at": "2026-03-01"}) + "\n\n",
    })
    world = load_world(directory, tmp_path / "case.sqlite")
    assert (world.seed, world.home_currency, world.timezone, world.reference_now) == (
        3, "EUR", "Asia/Jakarta", "2026-03-04T09:15:00.000Z")
    deal = world.get("opportunities", 1)
    assert (deal["currency"], deal["amount"], deal["crm"], deal["created_at"]) == (
        "EUR", 10.0, "hubspot", "2026-03-01T00:00:00.000Z")


@pytest.mark.parametrize(("files", "message"), [
    ({"widgets": [{"id": 1}]}, r"widgets.jsonl: no world table 'widgets'"),
    ({"teams": [{"id": 1, "name": "a"}, {"id": 2, "name": "b", "colour": "red"}]},
     r"teams.jsonl:2: key 'colour': teams has no key 'colour'"),
    ({"reps": [{"id": 1, "name": "a"}]}, r"reps.jsonl:1: key 'email': reps record is missing required key"),
    ({"teams": [{"id": 1, "name": "a", "manager_rep_id": "x"}]},
     r"teams.jsonl:1: key 'manager_rep_id': teams.manager_rep_id must be a whole number"),
    ({"teams": '{"id": 1, "name": "a"}\n{"id": 2,\n'}, r"teams.jsonl:2: not valid JSON"),
    ({"teams": "[1, 2]\n"}, r"teams.jsonl:1: each line must be a JSON object"),
    ({"teams": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 1, "name": "c"}]},
     r"teams.jsonl:3: key 'id': id 1 is used twice in teams"),
    ({"world": [{"seed": 1, "colour": 2}]}, r"world.jsonl:1: key 'colour'"),
    ({"world": [{"seed": 1}, {"seed": 2}]}, r"world.jsonl: holds 2 records"),
])
def test_bad_world_files_name_file_line_and_key(tmp_path: Path, files: dict, message: str) -> None:
    directory = write_world_dir(tmp_path / "bad", files)
    with pytest.raises(WorldFileError, match=message):
        load_world(directory, tmp_path / "bad.sqlite")


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    generated = generate_world(tmp_path / "tiny.sqlite", seed=9, size="tiny", now=NOW)
    first = dump_world(generated, tmp_path / "one")
    reloaded = load_world(tmp_path / "one", tmp_path / "reloaded.sqlite")
    second = dump_world(reloaded, tmp_path / "two")
    assert [path.name for path in first] == [path.name for path in second]
    for one, two in zip(first, second, strict=True):
        assert one.read_text() == two.read_text(), one.name
    opportunity = json.loads((tmp_path / "one" / "opportunities.jsonl").read_text().splitlines()[0])
    assert opportunity["is_closed"] in (True, False) and "crm" not in opportunity


def test_a_search_of_one_engagement_type_by_stamp_is_served_by_an_index_of_that_type(tmp_path: Path) -> None:
    # The statements the HubSpot search runs for each page of an incremental sync of calls: the page and
    # its `total`.  Through (kind, deleted) alone the count read every call of the world.
    world = small_world(tmp_path)
    where = "r.kind = 'call' AND r.deleted = 0 AND (r.updated_at >= ?)"
    for sql in (f"SELECT COUNT(*) FROM activities r WHERE {where}",
                f"SELECT r.id FROM activities r WHERE {where} ORDER BY r.updated_at ASC, r.id ASC LIMIT 200"):
        plan = " ".join(str(row[3]) for row in world.execute(f"EXPLAIN QUERY PLAN {sql}", ["2026-01-01"]))
        assert "ix_activities_kind_updated (kind=? AND updated_at>?)" in plan, plan
