"""A conformance kit for connector authors, and an in-memory reference connector.

A connector (Pipedrive, a CSV export, the built-in Salesforce and HubSpot ones) is checked against the
contract of ``agent/sync/connector.py`` by driving it exactly as the engine does::

    from agent.testing.connectors import ConformanceKit

    def test_my_connector_conforms(my_source):
        kit = ConformanceKit(spec, connector, context)
        kit.check_objects()
        kit.check_first_load("deals")                    # valid records, a cursor that completes the load
        kit.check_resumable("deals", stop_after=1)       # a resumed first load ends with the same ids
        my_source.update_some_deals(); my_source.delete_one_deal("42")
        kit.check_incremental("deals", expect_changed={"7", "8"}, expect_deleted={"42"})
        kit.check_all_ids("deals", expect={...})

Each ``check_*`` raises :class:`ConformanceError` saying what is wrong and what the contract wants, and
returns what it collected so a test can assert more.  ``MemoryConnector`` is a complete connector over
records held in memory: the smallest correct implementation of the contract, for reading and for engine
tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.sync.connector import Connector, ConnectorSpec, Cursor, Page, Problem, SyncContext
from agent.sync.records import RECORD_TABLES, CrmRecord


class ConformanceError(AssertionError):
    """The connector breaks the contract; the message says where and what the contract wants."""


@dataclass
class FetchResult:
    """What one ``fetch`` produced, page by page."""

    pages: list[Page] = field(default_factory=list)

    @property
    def records(self) -> list[CrmRecord]:
        return [record for page in self.pages for record in page.records]

    @property
    def ids(self) -> set[str]:
        return {record.source_id for record in self.records}

    @property
    def deleted_ids(self) -> set[str]:
        return {source_id for page in self.pages for source_id in page.deleted_ids}

    @property
    def last_cursor(self) -> Cursor | None:
        return self.pages[-1].cursor if self.pages else None


def _fail(where: str, what: str) -> ConformanceError:
    return ConformanceError(f"{where}: {what}")


class ConformanceKit:
    """Checks one connector against the contract, the way the engine drives it."""

    def __init__(self, spec: ConnectorSpec, connector: Connector, context: SyncContext, *, max_pages: int = 10_000):
        self.spec = spec
        self.connector = connector
        self.context = context
        self.max_pages = max_pages
        self.cursors: dict[str, Cursor] = {}

    # -- the pieces --------------------------------------------------------------------------------------

    def fetch(self, object_name: str, cursor: Cursor, *, stop_after: int | None = None) -> FetchResult:
        """Run ``fetch`` like the engine: page by page, validating each; ``stop_after`` abandons the
        generator after that many pages, as a kill would."""
        result = FetchResult()
        pages = iter(self.connector.fetch(object_name, cursor, self.context))
        try:
            for page in pages:
                self.check_page(object_name, page, len(result.pages))
                result.pages.append(page)
                if stop_after is not None and len(result.pages) >= stop_after:
                    break
                if len(result.pages) > self.max_pages:
                    raise _fail(object_name, f"more than {self.max_pages} pages: does the cursor advance?")
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
        return result

    def check_page(self, object_name: str, page: Page, index: int) -> None:
        where = f"{self.spec.kind} {object_name} page {index + 1}"
        if not isinstance(page, Page):
            raise _fail(where, f"fetch yielded {type(page).__name__}, not agent.sync.connector.Page")
        if not isinstance(page.cursor, Cursor):
            raise _fail(where, "the page's cursor is not an agent.sync.connector.Cursor")
        for record in page.records:
            self.check_record(where, object_name, record)
        for source_id in page.deleted_ids:
            if not isinstance(source_id, str) or not source_id:
                raise _fail(where, f"deleted id {source_id!r} is not a non-empty string")
        _check_instant(where, "cursor.stamp", page.cursor.stamp)
        _check_instant(where, "cursor.initial_load_started_at", page.cursor.initial_load_started_at)

    def check_record(self, where: str, object_name: str, record: CrmRecord) -> None:
        kinds = [kind for kind in type(record).__mro__ if kind in RECORD_TABLES]
        if not kinds:
            raise _fail(where, f"{type(record).__name__} is not a record type of agent/sync/records.py")
        if not isinstance(record.source_id, str) or not record.source_id.strip():
            raise _fail(where, f"a {type(record).__name__} has no source_id; quarantine it instead (QuarantinedItem)")
        declared = self.spec.object_tables.get(object_name)
        table = RECORD_TABLES[kinds[0]]
        if declared is not None and declared != table:
            raise _fail(where, f"record {record.source_id} is a {type(record).__name__} (table {table}) but "
                               f"object_tables says {object_name} fills {declared}")
        for item in dataclasses.fields(record):
            value = getattr(record, item.name)
            if isinstance(value, datetime):
                _check_instant(f"{where}, record {record.source_id}", item.name, value)
            elif isinstance(value, float) and value != value:
                raise _fail(where, f"record {record.source_id}: {item.name} is NaN; send None or quarantine it")

    # -- the checks ---------------------------------------------------------------------------------------

    def check_objects(self) -> list[str]:
        objects = list(self.connector.objects())
        if not objects:
            raise _fail(self.spec.kind, "objects() is empty")
        if len(set(objects)) != len(objects):
            raise _fail(self.spec.kind, f"objects() lists an object twice: {objects}")
        undeclared = [name for name in objects if name not in self.spec.object_tables]
        if undeclared:
            raise _fail(self.spec.kind, f"ConnectorSpec.object_tables does not say which table {undeclared} fill; "
                                        "the engine needs it for deletes and reconciliation")
        return objects

    def check_first_load(self, object_name: str) -> FetchResult:
        """A first load from an empty cursor: unique ids, and a last cursor that completes the load with
        a watermark no later than the load's start."""
        result = self.fetch(object_name, Cursor())
        where = f"{self.spec.kind} {object_name} first load"
        _check_unique(where, result.records)
        last = result.last_cursor
        if last is None or not last.initial_load_done:
            raise _fail(where, "the last page's cursor must say initial_load_done=True")
        for page in result.pages[:-1]:
            if page.cursor.initial_load_done and page is not result.pages[-1]:
                raise _fail(where, "initial_load_done is set before the last page")
        started = last.initial_load_started_at
        if last.stamp is not None and started is not None and last.stamp > started:
            raise _fail(where, "the watermark must be the load's start minus the overlap, not later")
        self.cursors[object_name] = last
        return result

    def check_resumable(self, object_name: str, stop_after: int = 1) -> FetchResult:
        """Stop a first load after ``stop_after`` pages, resume from the last cursor: the two runs together
        deliver exactly the ids of an uninterrupted load."""
        where = f"{self.spec.kind} {object_name} resumed first load"
        whole = self.fetch(object_name, Cursor())
        first = self.fetch(object_name, Cursor(), stop_after=stop_after)
        if first.last_cursor is None:
            raise _fail(where, "no page at all: give the object records to test resumption")
        rest = self.fetch(object_name, first.last_cursor)
        resumed = first.ids | rest.ids
        if resumed != whole.ids:
            missing, extra = sorted(whole.ids - resumed), sorted(resumed - whole.ids)
            raise _fail(where, f"resuming from page {stop_after}'s cursor lost {missing[:5]} and added {extra[:5]}")
        return rest

    def check_incremental(self, object_name: str, *, expect_changed: Iterable[str] = (),
                          expect_deleted: Iterable[str] = ()) -> FetchResult:
        """From the completed first load's cursor (as the engine hands it: stamp minus the overlap), the
        records changed since come, deletions are reported, and the stamp never goes backwards."""
        where = f"{self.spec.kind} {object_name} incremental"
        cursor = self.cursors.get(object_name)
        if cursor is None:
            raise _fail(where, "run check_first_load first")
        start = replace(cursor, stamp=cursor.stamp - self.context.overlap if cursor.stamp else None, last_id=None)
        result = self.fetch(object_name, start)
        stamps = [page.cursor.stamp for page in result.pages if page.cursor.stamp is not None]
        if any(later < earlier for earlier, later in zip(stamps, stamps[1:], strict=False)):
            raise _fail(where, f"the cursor's stamp went backwards between pages: {stamps}")
        missing = set(expect_changed) - result.ids
        if missing:
            raise _fail(where, f"changed records {sorted(missing)[:5]} did not come")
        not_reported = set(expect_deleted) - result.deleted_ids
        if not_reported:
            raise _fail(where, f"deleted records {sorted(not_reported)[:5]} were not reported in deleted_ids")
        if result.last_cursor is not None:
            self.cursors[object_name] = result.last_cursor
        return result

    def check_all_ids(self, object_name: str, expect: Iterable[str] | None = None) -> set[str]:
        ids = list(self.connector.all_ids(object_name, self.context))
        where = f"{self.spec.kind} {object_name} all_ids"
        if len(set(ids)) != len(ids):
            raise _fail(where, "an id is listed twice")
        if expect is not None and set(ids) != set(expect):
            raise _fail(where, f"expected {len(set(expect))} live ids, got {len(ids)}: "
                               f"missing {sorted(set(expect) - set(ids))[:5]}, "
                               f"extra {sorted(set(ids) - set(expect))[:5]}")
        return set(ids)

    def check_preflight(self) -> list[Problem]:
        problems = self.connector.preflight()
        for problem in problems:
            if not isinstance(problem, Problem) or not problem.what or not problem.fix:
                raise _fail(f"{self.spec.kind} preflight", f"{problem!r} must be a Problem with what and fix")
        return problems


def _check_unique(where: str, records: Sequence[CrmRecord]) -> None:
    seen: set[tuple[type, str]] = set()
    for record in records:
        key = (type(record), record.source_id)
        if key in seen:
            raise _fail(where, f"record {record.source_id} came twice in one load")
        seen.add(key)


def _check_instant(where: str, name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise _fail(where, f"{name} is a naive datetime; the cache wants aware UTC instants")


# ------------------------------------------------------------------------------------------------ memory


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class MemoryConnector:
    """A connector over records held in memory, keyed by object: the contract in its smallest form.

    First load: records in id order, ``page_size`` a page, resumable by ``initial_last_id``.  Steady state:
    keyset on ``(last_modified_at, source_id)`` — ``stamp = S and id > I`` before ``stamp > S`` — with
    deletions (records whose ``is_deleted`` is set) reported as ``deleted_ids``.
    """

    def __init__(self, records: Mapping[str, Iterable[CrmRecord]], *, page_size: int = 2,
                 tables: Mapping[str, str] | None = None) -> None:
        self.store: dict[str, dict[str, CrmRecord]] = {
            name: {record.source_id: record for record in items} for name, items in records.items()}
        self.page_size = page_size
        self.tables = dict(tables or {})
        self.fetches = 0
        self.fail_after: int | None = None  # raise after this many pages (tests of failed runs)

    def objects(self) -> Sequence[str]:
        return list(self.store)

    def put(self, object_name: str, record: CrmRecord) -> None:
        self.store.setdefault(object_name, {})[record.source_id] = record

    def erase(self, object_name: str, source_id: str) -> None:
        """A hard delete: the record is gone without a trace (only reconciliation notices)."""
        self.store[object_name].pop(source_id, None)

    def fetch(self, object_name: str, cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        self.fetches += 1
        if not cursor.initial_load_done:
            yield from self._first_load(object_name, cursor, context)
        else:
            yield from self._since(object_name, cursor)

    def _first_load(self, object_name: str, cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        started = cursor.initial_load_started_at or context.now or datetime.now(UTC)
        live = sorted((r for r in self.store.get(object_name, {}).values() if not r.is_deleted),
                      key=lambda r: r.source_id)
        remaining = [r for r in live if cursor.initial_last_id is None or r.source_id > cursor.initial_last_id]
        chunks = [remaining[i : i + self.page_size] for i in range(0, len(remaining), self.page_size)] or [[]]
        for number, chunk in enumerate(chunks, start=1):
            self._maybe_fail(number)
            done = number == len(chunks)
            position = chunk[-1].source_id if chunk else cursor.initial_last_id
            next_cursor = Cursor(initial_load_started_at=started, initial_last_id=position, initial_load_done=done,
                                 stamp=started - context.overlap if done else None)
            yield Page(cursor=next_cursor, records=chunk, table=self.tables.get(object_name))

    def _since(self, object_name: str, cursor: Cursor) -> Iterator[Page]:
        stamp, last_id = cursor.stamp, cursor.last_id or ""
        changed = sorted(
            (r for r in self.store.get(object_name, {}).values()
             if r.last_modified_at is not None and stamp is not None
             and (r.last_modified_at > stamp or (r.last_modified_at == stamp and r.source_id > last_id))),
            key=lambda r: (r.last_modified_at, r.source_id))
        for number, start in enumerate(range(0, len(changed), self.page_size), start=1):
            self._maybe_fail(number)
            chunk = changed[start : start + self.page_size]
            last = chunk[-1]
            yield Page(cursor=replace(cursor, stamp=last.last_modified_at, last_id=last.source_id),
                       records=[r for r in chunk if not r.is_deleted],
                       deleted_ids=[r.source_id for r in chunk if r.is_deleted], table=self.tables.get(object_name))

    def _maybe_fail(self, number: int) -> None:
        if self.fail_after is not None and number > self.fail_after:
            raise RuntimeError(f"memory connector: failing after page {self.fail_after} as the test asked")

    def all_ids(self, object_name: str, context: SyncContext) -> Iterator[str]:
        for record in self.store.get(object_name, {}).values():
            if not record.is_deleted:
                yield record.source_id

    def preflight(self) -> list[Problem]:
        return []

    def close(self) -> None:
        pass


def memory_spec(connector: MemoryConnector, kind: str = "memory") -> ConnectorSpec:
    """A spec whose factory returns ``connector`` (whatever the connection's config)."""
    return ConnectorSpec(kind=kind, title="In-memory records", factory=lambda name, config, context: connector,
                         objects=tuple(connector.objects()), object_tables=dict(connector.tables))


def memory_context(connection: str = "memory", *, now: datetime | None = None, overlap: timedelta = timedelta(0),
                   **extra: Any) -> SyncContext:
    return SyncContext(connection=connection, home_currency=extra.pop("home_currency", "USD"),
                       timezone=extra.pop("timezone", "UTC"), overlap=overlap,
                       now=now or utc(2026, 1, 1), **extra)


__all__ = ["ConformanceError", "ConformanceKit", "FetchResult", "MemoryConnector", "memory_context", "memory_spec",
           "utc"]
