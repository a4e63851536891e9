"""The sync loop: per (connection, object), a lease, the stored cursor, the connector's pages, one
transaction per page for its rows and its cursor, then id reconciliation, the purge of deleted rows and, on
PostgreSQL, fresh statistics for the tables the run changed by more than a tenth.

Guarantees, and what gives them:

- **Nothing lost, nothing doubled** on a kill at any instant: each page's rows, deletions, quarantined
  records and cursor are committed together (``Database.write_connection``), rows are upserted by
  ``(connection, source_id)``, and a run resumes from the last committed cursor.
- **Late commits are re-read**: a steady-state run starts ``overlap`` before the stored stamp (dlt#2269).
- **One writer per object**: a lease in ``sync_cursor`` (owner, expiry renewed with every page).  A lease
  whose owner process is gone (same host, pid not running) is taken over at once; a lease of another
  host is waited out until it expires.
- **Hard deletes are found**: on the ``reconcile_every`` cadence the connector's live ids are compared with
  the cache, table by table (several objects may fill one table, e.g. Task and Event).
- **Deleted rows are purged**, not kept: marked rows are removed at the end of each run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Connection

from agent.db import Database
from agent.sync.connector import Connector, ConnectorSpec, Cursor, Page, SyncContext
from agent.sync.records import CrmRecord
from agent.sync.retry import SyncStopped
from agent.sync.writer import TABLE_ORDER, CacheWriter, WriterSettings, cache_table, pg_array_literal, table_of

log = logging.getLogger(__name__)

LEASE_SECONDS = 15 * 60
RECONCILE_BATCH = 5000
CURSOR_FIELDS = ("stamp", "last_id", "initial_load_done", "initial_load_started_at", "initial_last_id",
                 "bulk_job_id", "bulk_locator")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ObjectOutcome:
    """How one object's sync ended: ``ok``, ``stopped`` (cleanly, cursor kept), ``failed`` or ``busy``."""

    connection: str
    object: str
    status: str
    records: int = 0
    deleted: int = 0
    quarantined: int = 0
    pages: int = 0
    seconds: float = 0.0
    message: str | None = None
    first_load_completed: bool = False


class Progress(Protocol):
    """What the CLI's progress bars listen to."""

    def object_started(self, connection: str, object_name: str) -> None: ...

    def page_written(self, connection: str, object_name: str, records: int, expected_total: int | None) -> None: ...

    def object_finished(self, outcome: ObjectOutcome) -> None: ...


class NoProgress:
    def object_started(self, connection: str, object_name: str) -> None:
        pass

    def page_written(self, connection: str, object_name: str, records: int, expected_total: int | None) -> None:
        pass

    def object_finished(self, outcome: ObjectOutcome) -> None:
        pass


@dataclass
class _Run:
    """Counters of one object's run."""

    records: int = 0
    deleted: int = 0
    quarantined: int = 0
    pages: int = 0
    tables: set[str] = field(default_factory=set)
    first_load_completed: bool = False


def lease_owner_id() -> str:
    """This process as a lease owner: host and pid (to spot a dead owner) and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SyncEngine:
    """Runs connectors into one cache database."""

    def __init__(self, db: Database, *, owner: str | None = None, lease_seconds: int = LEASE_SECONDS,
                 clock: Callable[[], datetime] = utc_now, progress: Progress | None = None,
                 prefetch: int = 1) -> None:
        self.db = db
        self.prefetch = prefetch
        self.owner = owner or lease_owner_id()
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self.progress = progress or NoProgress()

    # -- a connection --------------------------------------------------------------------------------------

    def sync_connection(self, connector: Connector, spec: ConnectorSpec, context: SyncContext,
                        settings: WriterSettings, *, objects: Sequence[str] | None = None,
                        reconcile_every: timedelta = timedelta(hours=24)) -> list[ObjectOutcome]:
        """Sync ``objects`` (default: all the connector's, parents first), then reconcile and purge."""
        writer = CacheWriter(self.db.dialect, settings)
        with self.db.write_connection() as conn:
            writer.apply_config_teams(conn)
        chosen = list(objects) if objects is not None else list(connector.objects())
        outcomes = []
        seen_tables: dict[str, str] = {}
        ahead = _Lookahead(self, connector, context, chosen if self.prefetch > 0 else [])
        try:
            for object_name in chosen:
                outcome = self.sync_object(connector, spec, object_name, context, writer, seen_tables,
                                           lookahead=ahead)
                outcomes.append(outcome)
        finally:
            ahead.abandon()
        synced_ok = [o.object for o in outcomes if o.status == "ok"]
        if synced_ok:
            with self.db.write_connection() as conn:
                writer.resolve_dangling(conn)
                writer.link_moved_activities(conn)
            # A first load that just read every live record is a reconciliation: the next one is due a
            # cadence later (records deleted during the load come as deletes in the next runs).
            loaded = [o.object for o in outcomes if o.status == "ok" and o.first_load_completed and not context.full]
            self._mark_reconciled(context.connection, loaded)
            others = [name for name in synced_ok if name not in loaded]
            self._reconcile_due(connector, spec, context, writer, others, reconcile_every)
            with self.db.write_connection() as conn:
                writer.purge_deleted(conn, _tables_of(spec, synced_ok, seen_tables))
        with self.db.write_connection() as conn:
            analysed = writer.refresh_statistics(conn)
        if analysed:
            log.info("%s: analysed %s (changed by more than a tenth in this run)", context.connection,
                     ", ".join(analysed))
        return outcomes

    # -- an object -----------------------------------------------------------------------------------------

    def sync_object(self, connector: Connector, spec: ConnectorSpec, object_name: str, context: SyncContext,
                    writer: CacheWriter, seen_tables: dict[str, str] | None = None, *,
                    lookahead: _Lookahead | None = None) -> ObjectOutcome:
        """One object: lease, pages (each in one transaction with its cursor), release.  With a
        ``lookahead``, the object may already have been opened while the one before it was written, and
        the next object is opened once this one's pages are all fetched."""
        connection = context.connection
        started = time.monotonic()
        opened = lookahead.take(object_name) if lookahead is not None else None
        if opened is None:
            holder = self.acquire_lease(connection, object_name)
            if holder is not None:
                message = f"{connection}/{object_name} is being synced by {holder}; try again when it finishes"
                return ObjectOutcome(connection, object_name, "busy", message=message)
        self.progress.object_started(connection, object_name)
        run_id = self._start_run(connection, object_name) if opened is None else opened.run_id
        counters = _Run()
        status, message = "ok", None
        try:
            if opened is None:
                start = self.starting_cursor(self.read_cursor(connection, object_name), context)
                opened = _Opened(run_id, start, self._prefetched(connector, object_name, start, context), object_name)
            if lookahead is not None:
                opened.pages.when_exhausted(lookahead.opener_after(object_name))
            self._pages(opened, spec, object_name, context, writer, counters, seen_tables or {})
        except SyncStopped as stop:
            status, message = "stopped", str(stop)
            log.warning("%s/%s stopped: %s", connection, object_name, stop)
        except Exception as error:  # the object fails alone; the others still sync
            status, message = "failed", _describe(error)
            log.error("%s/%s failed: %s", connection, object_name, message, exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            self._finish(connection, object_name, run_id, counters, status, message)
        outcome = ObjectOutcome(connection, object_name, status, counters.records, counters.deleted,
                                counters.quarantined, counters.pages, time.monotonic() - started, message,
                                counters.first_load_completed)
        self.progress.object_finished(outcome)
        return outcome

    def _prefetched(self, connector: Connector, object_name: str, start: Cursor, context: SyncContext) -> Prefetched:
        return Prefetched(connector.fetch(object_name, start, context), depth=self.prefetch,
                          heartbeat=lambda: self.renew_lease(context.connection, object_name),
                          every=self.lease.total_seconds() / 3)

    def _pages(self, opened: _Opened, spec: ConnectorSpec, object_name: str, context: SyncContext,
               writer: CacheWriter, counters: _Run, seen_tables: dict[str, str]) -> None:
        run_id, start, pages = opened.run_id, opened.start, opened.pages
        try:
            for page in pages:
                cursor = self._completed(page.cursor, context)
                counters.first_load_completed |= cursor.initial_load_done and not start.initial_load_done
                table = self._deleted_table(spec, object_name, page, seen_tables)
                now = self.clock()
                with self.db.write_connection() as conn:
                    counts = writer.write_page(conn, object_name, page, now, deleted_table=table)
                    self._save_cursor(conn, context.connection, object_name, cursor, len(page.records), now)
                    self._count_run(conn, run_id, len(page.records), counts.deleted, counts.quarantined)
                counters.records += len(page.records)
                counters.deleted += counts.deleted
                counters.quarantined += counts.quarantined
                counters.pages += 1
                counters.tables |= counts.tables
                self.progress.page_written(context.connection, object_name, len(page.records), page.expected_total)
        finally:
            pages.close()

    @staticmethod
    def starting_cursor(stored: Cursor, context: SyncContext) -> Cursor:
        """The cursor handed to ``fetch``: a fresh one for ``--full``; in steady state the stamp moved back
        by the overlap (rows committed late with an older stamp) and the id tie-break dropped with it.
        Without an overlap the stored ``(stamp, last_id)`` is resumed exactly."""
        if context.full:
            return Cursor()
        if stored.initial_load_done and stored.stamp is not None and context.overlap > timedelta(0):
            return replace(stored, stamp=stored.stamp - context.overlap, last_id=None)
        return stored

    def _completed(self, cursor: Cursor, context: SyncContext) -> Cursor:
        """The first load's end sets the watermark to its start minus the overlap, if the connector did not."""
        if cursor.initial_load_done and cursor.stamp is None:
            started = cursor.initial_load_started_at or context.now or self.clock()
            return replace(cursor, stamp=started - context.overlap, last_id=None)
        return cursor

    def _deleted_table(self, spec: ConnectorSpec, object_name: str, page: Page,
                       seen_tables: dict[str, str]) -> str | None:
        for record in page.records[:1]:
            seen_tables.setdefault(object_name, table_of(record))
        if page.table is not None:
            return page.table
        if object_name in spec.object_tables:
            return spec.object_tables[object_name]
        if object_name in seen_tables:
            return seen_tables[object_name]
        if page.deleted_ids:
            return self._table_holding(page, spec)
        return None

    def _table_holding(self, page: Page, spec: ConnectorSpec) -> str | None:
        """Last resort for an undeclared object: the one table that holds the deleted ids."""
        ids = list(page.deleted_ids)[:50]
        found = []
        with self.db.session() as session:
            for name in TABLE_ORDER:
                table = cache_table(name)
                counted = select(func.count()).select_from(table).where(table.c.source_id.in_(ids))
                hit = session.execute(counted).scalar()
                if hit:
                    found.append(name)
        if len(found) == 1:
            return found[0]
        log.warning("%s: cannot tell which table the deleted ids %s belong to (found in %s); declare "
                    "ConnectorSpec.object_tables", spec.kind, ids[:3], found or "no table")
        return None

    # -- cursor and lease ---------------------------------------------------------------------------------

    def read_cursor(self, connection: str, object_name: str) -> Cursor:
        table = cache_table("sync_cursor")
        with self.db.session() as session:
            row = session.execute(select(*[table.c[name] for name in CURSOR_FIELDS]).where(
                table.c.connection == connection, table.c.object == object_name)).first()
        if row is None:
            return Cursor()
        return Cursor(**{name: row._mapping[name] for name in CURSOR_FIELDS})

    def _save_cursor(self, conn: Connection, connection: str, object_name: str, cursor: Cursor, records: int,
                     now: datetime) -> None:
        table = cache_table("sync_cursor")
        values: dict[str, Any] = {name: getattr(cursor, name) for name in CURSOR_FIELDS}
        values.update(records_synced=table.c.records_synced + records, updated_at=now,
                      lease_expires_at=now + self.lease)
        conn.execute(update(table).where(table.c.connection == connection, table.c.object == object_name)
                     .values(**values))

    def acquire_lease(self, connection: str, object_name: str) -> str | None:
        """Take the object's lease; return None when taken, else who holds it."""
        table = cache_table("sync_cursor")
        now = self.clock()
        with self.db.write_connection() as conn:
            self._ensure_cursor_row(conn, connection, object_name)
            holder, expires = conn.execute(select(table.c.lease_owner, table.c.lease_expires_at).where(
                table.c.connection == connection, table.c.object == object_name)).one()
            free = holder is None or holder == self.owner or expires is None or expires < now or _is_dead(holder)
            if not free:
                return f"{holder} (lease until {expires:%Y-%m-%d %H:%M:%S} UTC)"
            taken = conn.execute(update(table).where(
                table.c.connection == connection, table.c.object == object_name,
                (table.c.lease_owner.is_(None)) | (table.c.lease_owner == holder),
            ).values(lease_owner=self.owner, lease_expires_at=now + self.lease)).rowcount
            if taken == 1 and holder is not None and holder != self.owner:
                self._close_orphaned_runs(conn, connection, object_name, holder, now)
        return None if taken == 1 else "another process"

    def _close_orphaned_runs(self, conn: Connection, connection: str, object_name: str, holder: str,
                             now: datetime) -> None:
        """Runs of a lease taken over (its process was killed) never finished: say so in their rows."""
        runs = cache_table("sync_run")
        conn.execute(update(runs).where(runs.c.connection == connection, runs.c.object == object_name,
                                        runs.c.status == "running").values(
            status="interrupted", finished_at=now,
            error=f"the process ({holder}) ended before the run finished; the next run resumed from its cursor"))

    def renew_lease(self, connection: str, object_name: str) -> None:
        """Extend the lease while a page takes long to come (a bulk job that runs for an hour, say): each
        written page renews it too, but without pages another process would take the object over."""
        table = cache_table("sync_cursor")
        with self.db.write_connection() as conn:
            conn.execute(update(table).where(table.c.connection == connection, table.c.object == object_name,
                                             table.c.lease_owner == self.owner)
                         .values(lease_expires_at=self.clock() + self.lease))

    def release_lease(self, conn: Connection, connection: str, object_name: str) -> None:
        table = cache_table("sync_cursor")
        conn.execute(update(table).where(table.c.connection == connection, table.c.object == object_name,
                                         table.c.lease_owner == self.owner)
                     .values(lease_owner=None, lease_expires_at=None))

    def _ensure_cursor_row(self, conn: Connection, connection: str, object_name: str) -> None:
        table = cache_table("sync_cursor")
        exists = conn.execute(select(table.c.id).where(table.c.connection == connection,
                                                       table.c.object == object_name)).first()
        if exists is None:
            conn.execute(table.insert().values(connection=connection, object=object_name, initial_load_done=False,
                                               records_synced=0))

    # -- sync_run -----------------------------------------------------------------------------------------

    def _start_run(self, connection: str, object_name: str) -> int:
        table = cache_table("sync_run")
        with self.db.write_connection() as conn:
            result = conn.execute(table.insert().values(connection=connection, object=object_name,
                                                        started_at=self.clock(), status="running", records=0,
                                                        deleted=0, quarantined=0))
            return int(result.inserted_primary_key[0])

    def _count_run(self, conn: Connection, run_id: int, records: int, deleted: int, quarantined: int) -> None:
        table = cache_table("sync_run")
        conn.execute(update(table).where(table.c.id == run_id).values(
            records=table.c.records + records, deleted=table.c.deleted + deleted,
            quarantined=table.c.quarantined + quarantined))

    def _finish(self, connection: str, object_name: str, run_id: int, counters: _Run, status: str,
                message: str | None) -> None:
        runs, cursors = cache_table("sync_run"), cache_table("sync_cursor")
        now = self.clock()
        with self.db.write_connection() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(finished_at=now, status=status, error=message))
            conn.execute(update(cursors).where(cursors.c.connection == connection, cursors.c.object == object_name)
                         .values(last_run_at=now, last_error=message))
            self.release_lease(conn, connection, object_name)

    # -- reconciliation -----------------------------------------------------------------------------------

    def _reconcile_due(self, connector: Connector, spec: ConnectorSpec, context: SyncContext, writer: CacheWriter,
                       synced_ok: Sequence[str], every: timedelta) -> None:
        due = [name for name in synced_ok
               if name in spec.object_tables and self._reconcile_is_due(context, name, every)]
        for table_name in sorted({spec.object_tables[name] for name in due}, key=TABLE_ORDER.index):
            feeders = [name for name, table in spec.object_tables.items() if table == table_name]
            try:
                marked = self.reconcile_table(connector, context, writer, table_name, feeders)
            except SyncStopped as stop:
                log.warning("%s: reconciliation of %s stopped: %s", context.connection, table_name, stop)
                continue
            except Exception as error:  # a failed reconciliation leaves the cache as it was
                log.error("%s: reconciliation of %s failed: %s", context.connection, table_name, _describe(error))
                continue
            log.info("%s: reconciliation of %s marked %d rows deleted", context.connection, table_name, marked)
            self._mark_reconciled(context.connection, feeders)

    def _reconcile_is_due(self, context: SyncContext, object_name: str, every: timedelta) -> bool:
        if context.full:
            return True
        table = cache_table("sync_cursor")
        with self.db.session() as session:
            last = session.execute(select(table.c.last_reconciled_at).where(
                table.c.connection == context.connection, table.c.object == object_name)).scalar()
        return last is None or last <= self.clock() - every

    def reconcile_table(self, connector: Connector, context: SyncContext, writer: CacheWriter, table_name: str,
                        feeders: Sequence[str]) -> int:
        """Mark deleted every row of ``table_name`` whose id none of ``feeders`` reports live any more.

        The live ids stream into a temporary table in batches (flat memory), then one UPDATE compares.
        """
        with self.db.engine.connect() as conn:
            conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS kpi_live_ids (source_id VARCHAR(100) PRIMARY KEY)"))
            conn.execute(text("DELETE FROM kpi_live_ids"))
            conn.commit()
            live = 0
            for batch in _batched(_all_ids(connector, feeders, context), RECONCILE_BATCH):
                live += len(batch)
                if self.db.dialect == "postgresql":  # one array literal, not an executemany row by row
                    conn.exec_driver_sql("INSERT INTO kpi_live_ids (source_id) SELECT unnest(%(ids)s::varchar[]) "
                                         "ON CONFLICT DO NOTHING", {"ids": pg_array_literal("text", batch)})
                else:
                    conn.execute(text("INSERT OR IGNORE INTO kpi_live_ids (source_id) VALUES (:source_id)"),
                                 [{"source_id": source_id} for source_id in batch])
                conn.commit()
            if live == 0:
                conn.execute(text("DROP TABLE kpi_live_ids"))
                conn.commit()
                cached = conn.execute(text(f"SELECT count(*) FROM {table_name} WHERE connection = :connection"),
                                      {"connection": context.connection}).scalar()
                if not cached:
                    return 0
                log.warning("%s: %s reported no live ids; reconciliation of %s skipped rather than emptying it",
                            context.connection, "/".join(feeders), table_name)
                return 0
            doomed = (f"SELECT d.source_id FROM {table_name} d WHERE d.connection = :connection AND NOT EXISTS "
                      f"(SELECT 1 FROM kpi_live_ids l WHERE l.source_id = d.source_id)")
            ids = [row[0] for row in conn.execute(text(doomed), {"connection": context.connection})]
            conn.execute(text("DROP TABLE kpi_live_ids"))
            conn.commit()
        if not ids:
            return 0
        with self.db.write_connection() as write:
            return writer.mark_deleted(write, table_name, ids)

    def _mark_reconciled(self, connection: str, objects: Iterable[str]) -> None:
        objects = list(objects)
        if not objects:
            return
        table = cache_table("sync_cursor")
        with self.db.write_connection() as conn:
            conn.execute(update(table).where(table.c.connection == connection, table.c.object.in_(list(objects)))
                         .values(last_reconciled_at=self.clock()))


@dataclass
class _Opened:
    """An object whose lease is held, whose run row is written and whose pages are being fetched."""

    run_id: int
    start: Cursor
    pages: Prefetched
    object_name: str


ABANDON_WAIT_SECONDS = 10.0
"""How long an interrupted run waits for an object being opened ahead to let itself go."""


class _Lookahead:
    """Opens the objects after the current one while its pages are written: each object is opened as soon
    as the one before it has all its pages fetched.  An incremental run is mostly one page per object, and
    without this the writer waited for each object's describe, newest-stamp query and first page in turn.

    How far ahead: past an object in its first load, one object (a load's pages are big, and its writing
    is long enough to hide the next object's opening); past an object in steady state (pages of a few
    thousand records at most), up to ``STEADY_AHEAD`` objects opened and not yet taken, so that a query the
    CRM is slow to answer (Tasks, at 100k deals a third of a second) is asked while several small objects
    are written (opening only one ahead, the writer waited a quarter of an incremental run for pages).

    The connector is still called by one thread at a time: an object's fetch begins after the one before it
    has finished.  Opening ahead does what the object's own turn would (lease, run row, cursor); whatever
    fails there is left to that turn."""

    STEADY_AHEAD = 3

    def __init__(self, engine: SyncEngine, connector: Connector, context: SyncContext, order: Sequence[str]) -> None:
        self._engine = engine
        self._connector = connector
        self._context = context
        # objects named twice (``--object X --object X``) are synced in turn without lookahead
        self._following = dict(zip(order, order[1:], strict=False)) if len(set(order)) == len(order) else {}
        self._lock = threading.Lock()
        self._opened: dict[str, _Opened] = {}
        self._requested: set[str] = set()
        self._paused: str | None = None  # opened ahead; its successor waits for room
        self._closed = False
        self._in_flight = 0  # objects being opened
        self._settled = threading.Condition(self._lock)

    def take(self, object_name: str) -> _Opened | None:
        """The object, if it was opened ahead (the engine's turn for it has come)."""
        with self._lock:
            opened = self._opened.pop(object_name, None)
            if self._paused == object_name:
                self._paused = None  # its own turn opens its successor
            resume = self._opened.get(self._paused) if self._paused is not None else None
            if resume is not None and len(self._opened) < self.STEADY_AHEAD:
                self._paused = None
            else:
                resume = None
        if resume is not None:
            resume.pages.when_exhausted(self.opener_after(resume.object_name))
        return opened

    def opener_after(self, object_name: str) -> Callable[[], None] | None:
        following = self._following.get(object_name)
        return None if following is None else lambda: self._open(following)

    def _open(self, object_name: str) -> None:
        """The fetch starts from the stored cursor at once; the lease and the run row follow.  On SQLite
        they wait for the page being written to commit, and the fetch must not wait with them.  Fetching
        writes nothing, and the pages are used only if the cursor is still the one they start from once the
        lease is held (another process may have synced the object in between)."""
        with self._lock:
            if self._closed or object_name in self._requested:
                return
            self._requested.add(object_name)
            self._in_flight += 1
        try:
            opened = self._opened_ahead(object_name)
            if opened is None:
                return
            with self._lock:
                kept = not self._closed
                if kept:
                    self._opened[object_name] = opened
                    further = opened.start.initial_load_done and len(self._opened) < self.STEADY_AHEAD
                    if opened.start.initial_load_done and not further:
                        self._paused = object_name
            if not kept:  # the run ended while this object was being opened
                self._let_go(object_name, opened)
            elif further:
                opened.pages.when_exhausted(self.opener_after(object_name))
        finally:
            with self._lock:
                self._in_flight -= 1
                self._settled.notify_all()

    def _opened_ahead(self, object_name: str) -> _Opened | None:
        engine, context = self._engine, self._context
        pages: Prefetched | None = None
        try:
            stored = engine.read_cursor(context.connection, object_name)
            start = engine.starting_cursor(stored, context)
            pages = engine._prefetched(self._connector, object_name, start, context)
            pages.start()
            if engine.acquire_lease(context.connection, object_name) is not None:
                pages.close()  # busy: its turn says so
                return None
            if engine.read_cursor(context.connection, object_name) != stored:
                pages.close()  # moved on meanwhile: its turn starts from where it is now
                return None
            return _Opened(engine._start_run(context.connection, object_name), start, pages, object_name)
        except Exception as error:  # the object's own turn opens it again, and reports what fails
            if pages is not None:
                pages.close()
            log.debug("%s/%s: not opened ahead: %s", context.connection, object_name, _describe(error))
            return None

    def abandon(self) -> None:
        """The run ended (an interrupt) with objects opened ahead: stop their fetches, close their run rows
        and release their leases; their cursors are untouched, so the next run syncs them.  An object being
        opened meanwhile lets itself go; it is waited for a while (its lease waits on the database)."""
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, {}
        for object_name, item in opened.items():
            self._let_go(object_name, item)
        with self._lock:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=ABANDON_WAIT_SECONDS)

    def _let_go(self, object_name: str, opened: _Opened) -> None:
        opened.pages.close()
        self._engine._finish(self._context.connection, object_name, opened.run_id, _Run(), "stopped",
                             "the sync ended before this object's turn; the next run syncs it")


class Prefetched:
    """The connector's pages, fetched ``depth`` pages ahead in a thread while the engine writes.

    Fetching waits on the network and writing on the database, and both release the GIL, so a load costs
    about the larger of the two instead of their sum.  Memory stays bounded (``depth`` pages queued, one
    being fetched).  The generator is driven by the thread alone; its exception is raised here, after the
    pages it yielded before failing, so the engine commits exactly what it would have without the thread.
    ``depth=0`` iterates in the caller's thread.
    """

    _END = object()

    def __init__(self, pages: Iterable[Page], depth: int = 1, *, heartbeat: Callable[[], None] | None = None,
                 every: float = 60.0) -> None:
        self._source = iter(pages)
        self._depth = depth
        self._heartbeat = heartbeat
        self._every = every
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._exhausted = False
        self._on_exhausted: Callable[[], None] | None = None

    def start(self) -> None:
        """Start fetching now (iterating starts it too)."""
        if self._depth > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sync-prefetch", daemon=True)
            self._thread.start()

    def when_exhausted(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` (in the fetching thread) once the source has yielded its last page, before the
        pages still queued are written; at once (in this thread) if it already has.  Not on an error."""
        if callback is None or self._depth <= 0:
            return
        with self._lock:
            if not self._exhausted:
                self._on_exhausted = callback
                return
        callback()

    def __iter__(self) -> Iterator[Page]:
        if self._depth <= 0:
            yield from self._source
            return
        self.start()
        while True:
            kind, item = self._next()
            if kind == "page":
                yield item
            elif kind == "error":
                raise item
            else:
                return

    def _next(self) -> tuple[str, Any]:
        """The next item; while none comes (a slow CRM), the heartbeat keeps the lease alive."""
        while True:
            try:
                return self._queue.get(timeout=self._every)
            except queue.Empty:
                if self._heartbeat is not None:
                    self._heartbeat()

    def _run(self) -> None:
        try:
            for page in self._source:
                if not self._put(("page", page)):
                    return
        except BaseException as error:  # handed to the engine's thread, which decides
            self._put(("error", error))
            return
        with self._lock:
            self._exhausted = True
            callback = self._on_exhausted
        try:
            if callback is not None and not self._stop.is_set():
                callback()
        finally:  # the engine waits for the end, whatever the callback did
            self._put(("end", None))

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """Stop fetching (the engine stopped writing: an error, a kill of the loop) and close the source."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):  # "generator already executing": not after join, but be safe
                close()


def _all_ids(connector: Connector, objects: Sequence[str], context: SyncContext) -> Iterator[str]:
    for name in objects:
        yield from connector.all_ids(name, context)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _tables_of(spec: ConnectorSpec, objects: Sequence[str], seen: Mapping[str, str]) -> list[str]:
    names = {spec.object_tables.get(name) or seen.get(name) for name in objects}
    return [name for name in TABLE_ORDER if name in names]


def _is_dead(holder: str) -> bool:
    """A lease owner on this host whose process is gone (killed mid-run) holds nothing any more."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _describe(error: BaseException) -> str:
    text_ = str(error).strip() or type(error).__name__
    return text_ if len(text_) < 2000 else text_[:2000] + "…"


def records_by_table(records: Iterable[CrmRecord]) -> dict[str, int]:
    """How many records of each cache table (for summaries and tests)."""
    counts: dict[str, int] = {}
    for record in records:
        name = table_of(record)
        counts[name] = counts.get(name, 0) + 1
    return counts


