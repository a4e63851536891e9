"""Keyset paging of the HubSpot connector against the sandbox: records that share one stamp, records
changed or archived between pages, a killed first load, and 25,000 deals modified in one day.

The sandbox's search behaves as HubSpot's: ``after`` is an offset into the live result and paging past
10,000 results answers 400.  The connector never sends ``after``; these tests show that nothing is lost
or doubled however the records change under it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.sync.connector import Cursor, Page, SyncContext
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.world import World
from tests.connectors.test_hubspot_helpers import (
    DEAL,
    WORLD,
    build_world,
    connector_for,
    context_for,
    deal_id,
    fetch_all,
    hubspot_sandbox,
    next_run,
    records_of,
    settled_log,
)

ONE_STAMP = "2026-01-10T10:00:00.000Z"
BEFORE_ALL = Cursor(stamp=datetime(2025, 12, 31, tzinfo=UTC), initial_load_done=True)


def _deals_world(tmp_path: Path, stamps: dict[int, str]) -> World:
    tables = {key: WORLD[key] for key in ("teams", "reps", "accounts", "pipelines", "stages")}
    tables["opportunities"] = [
        {"id": number, "name": f"Deal {number}", "account_id": 1, "owner_rep_id": 1, "pipeline_id": 1, "stage_id": 1,
         "amount": 10.0 * number, "created_at": "2025-10-01T08:00:00.000Z", "updated_at": stamp}
        for number, stamp in stamps.items()]
    return build_world(tmp_path, tables)


def _steady(connector: HubSpotConnector, context: SyncContext, cursor: Cursor = BEFORE_ALL) -> list[Page]:
    return fetch_all(connector, "deals", context, cursor)


def _ids(pages: list[Page]) -> list[str]:
    return [record.source_id for record in records_of(pages)]


def test_records_sharing_one_stamp_across_page_boundaries_come_once_each(tmp_path: Path) -> None:
    # deals 1-2 before, 3-9 all at one stamp (seven records over pages of three), 10-11 after
    stamps = {1: "2026-01-09T10:00:00.000Z", 2: "2026-01-09T11:00:00.000Z"}
    stamps |= {number: ONE_STAMP for number in range(3, 10)}
    stamps |= {10: "2026-01-11T10:00:00.000Z", 11: "2026-01-11T10:00:00.000Z"}
    with hubspot_sandbox(_deals_world(tmp_path, stamps)) as sandbox:
        pages = _steady(connector_for(sandbox, page_size=3), context_for())
    assert Counter(_ids(pages)) == Counter(deal_id(number) for number in range(1, 12))
    positions = [(page.cursor.stamp, int(page.cursor.last_id or 0)) for page in pages]
    assert positions == sorted(positions)  # the cursor only moves on
    last = pages[-1].cursor
    assert (last.stamp, last.last_id) == (datetime(2026, 1, 11, 10, tzinfo=UTC), deal_id(11))


def test_the_sandbox_same_stamp_fault_is_paged_without_loss(tmp_path: Path) -> None:
    stamps = {number: f"2026-01-{number:02d}T10:00:00.000Z" for number in range(1, 13)}
    # the first request gives the eight oldest deals one stamp (the newest of theirs, Jan 8)
    with hubspot_sandbox(_deals_world(tmp_path, stamps), faults="hubspot:same_stamp:count=8") as sandbox:
        pages = _steady(connector_for(sandbox, page_size=3), context_for())
        assert sandbox.faults.hits("same_stamp") == 1
    assert Counter(_ids(pages)) == Counter(deal_id(number) for number in range(1, 13))


def test_records_updated_and_archived_between_pages_end_up_right(tmp_path: Path) -> None:
    stamps = {number: f"2026-01-{number:02d}T10:00:00.000Z" for number in range(1, 11)}
    world = _deals_world(tmp_path, stamps)
    cache: dict[str, Any] = {}
    with hubspot_sandbox(world) as sandbox:
        connector = connector_for(sandbox, page_size=3)
        context = context_for()
        pages = connector.fetch("deals", BEFORE_ALL, context)
        first = next(pages)  # deals 1 and 2; deal 3 (the page's last stamp) is left to the next query
        assert [record.source_id for record in first.records] == [deal_id(1), deal_id(2)]
        # between pages: a delivered deal and one still ahead change, one still ahead is archived.  With
        # HubSpot's offset paging the two changes would shift later pages and lose deals 3 and 4.
        world.update("opportunities", 1, {"name": "Deal 1 (renamed)"})
        world.update("opportunities", 5, {"name": "Deal 5 (renamed)"})
        world.delete("opportunities", 6)
        run = [first, *pages]
        for page in run:
            cache |= {record.source_id: record for record in page.records}
        following = fetch_all(connector, "deals", context, next_run(run[-1].cursor, context))
        for page in following:
            cache |= {record.source_id: record for record in page.records}
            for gone in page.deleted_ids:
                cache.pop(gone, None)
    ids = _ids(run)
    assert Counter(ids)[deal_id(5)] == 1 and deal_id(6) not in ids
    assert Counter(ids)[deal_id(1)] == 2  # read again after its change: its new stamp is ahead
    assert {source_id: record.name for source_id, record in cache.items()} == {
        deal_id(number): f"Deal {number}" for number in (2, 3, 4, 7, 8, 9, 10)
    } | {deal_id(1): "Deal 1 (renamed)", deal_id(5): "Deal 5 (renamed)"}
    assert [page.deleted_ids for page in following if page.deleted_ids] == [[deal_id(6)]]


def test_a_killed_first_load_resumes_after_its_last_page(tmp_path: Path) -> None:
    stamps = {number: ONE_STAMP for number in range(1, 12)}
    with hubspot_sandbox(_deals_world(tmp_path, stamps)) as sandbox:
        connector = connector_for(sandbox, page_size=3)
        context = context_for()
        pages = connector.fetch("deals", Cursor(), context)
        before_kill = [next(pages), next(pages)]
        pages.close()  # the process dies here; the engine committed these two pages and their cursor
        resumed = fetch_all(connector, "deals", context, before_kill[-1].cursor)
    assert before_kill[-1].cursor.initial_last_id == deal_id(6)
    assert Counter(_ids(before_kill) + _ids(resumed)) == Counter(deal_id(number) for number in range(1, 12))
    started = before_kill[0].cursor.initial_load_started_at
    assert resumed[-1].cursor == Cursor(stamp=started - context.overlap, initial_load_done=True,  # type: ignore[operator]
                                        initial_load_started_at=started)


def _big_world(tmp_path: Path, count: int, day: datetime) -> World:
    """``count`` deals all modified on ``day``, bulk-inserted; every three consecutive deals share a stamp."""
    world = build_world(tmp_path, {key: WORLD[key] for key in ("teams", "reps", "pipelines", "stages")})
    step_ms = 86_400_000 // count * 3

    def stamp(number: int) -> str:
        moment = day + timedelta(milliseconds=(number // 3) * step_ms)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    columns = ("id", "name", "owner_rep_id", "pipeline_id", "stage_id", "amount", "created_at", "updated_at",
               "deleted", "crm")
    world.insert_rows("opportunities", columns, (
        (number, f"Deal {number}", 1, 1, 1, float(number), "2025-10-01T08:00:00.000Z", stamp(number), 0, "hubspot")
        for number in range(1, count + 1)))
    return world


def test_25000_deals_modified_in_one_day_all_arrive(tmp_path: Path) -> None:
    day = datetime(2026, 1, 10, tzinfo=UTC)
    world = _big_world(tmp_path, 25_000, day)
    with hubspot_sandbox(world) as sandbox:
        connector = connector_for(sandbox)
        seen: Counter[str] = Counter()
        pages = 0
        for page in connector.fetch("deals", Cursor(stamp=day - timedelta(seconds=1), initial_load_done=True),
                                    context_for()):
            seen.update(record.source_id for record in page.records)
            pages += 1
        log = settled_log(sandbox)
    refused = sum(entry.status == 400 for entry in log)
    searches = sum("/search" in entry.path for entry in log)
    assert len(seen) == 25_000 and set(seen.values()) == {1}
    assert min(seen, key=int) == str(DEAL + 1) and max(seen, key=int) == str(DEAL + 25_000)
    assert refused == 0  # never past HubSpot's 10,000-result window
    assert pages >= 125 and searches <= 2 * pages  # 200 a page; each search starts at offset 0
