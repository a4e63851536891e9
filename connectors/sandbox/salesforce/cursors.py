"""Server-side query cursors, as Salesforce keeps them behind `nextRecordsUrl` and Bulk API locators.

Salesforce gathers the ids a query matches when it runs and pages through that list: later pages show the
records' values at the time they are fetched, records that start matching later are not added, and records
deleted meanwhile drop out (or, for queryAll, come back with IsDeleted true). The sandbox does the same
without holding ids in memory: a cursor is a table of (position, id) in a SQLite file of its own, filled by
one INSERT ... SELECT over the world, read a page at a time by joining back to the world's table.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.sandbox.world import World

from .query import CompiledQuery

MAX_IDLE_CONNECTIONS = 8
CURSOR_IDLE_SECONDS = 15 * 60  # Salesforce releases a query locator after 15 minutes of inactivity


@dataclass
class Cursor:
    number: int
    table: str
    compiled: CompiledQuery
    total: int
    include_deleted: bool
    counted: bool  # counts toward the open-cursor limit (REST query locators do; bulk jobs do not)
    last_used: float

    @property
    def sobject_table(self) -> str | None:
        return self.compiled.sobject.world_table


class CursorStore:
    """Cursor tables in a temporary SQLite file attached to per-thread connections on the world."""

    def __init__(self, world: World, *, max_open: int | None = 10, idle_seconds: float = CURSOR_IDLE_SECONDS) -> None:
        self.world = world
        self.max_open = max_open
        self.idle_seconds = idle_seconds
        self.directory = Path(tempfile.mkdtemp(prefix="salesforce-sandbox-cursors-"))
        self.path = self.directory / "cursors.sqlite"
        self._numbers = itertools.count(1)
        self._cursors: OrderedDict[int, Cursor] = OrderedDict()
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self._finalizer = weakref.finalize(self, _cleanup, self._idle, self.directory)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._finalizer()

    # -- connections
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection: the world as `main`, the cursor file as `cur` (pooled rather than one per
        thread, because the HTTP server starts a thread per client connection)."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = sqlite3.connect(self.world.path, check_same_thread=False, timeout=30.0,
                                         isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("ATTACH DATABASE ? AS cur", (str(self.path),))
            connection.execute("PRAGMA cur.journal_mode = WAL")
            connection.execute("PRAGMA cur.synchronous = OFF")
        try:
            yield connection
        finally:
            with self._lock:
                if len(self._idle) < MAX_IDLE_CONNECTIONS and not self._closed:
                    self._idle.append(connection)
                    connection = None
            if connection is not None:
                connection.close()

    def execute(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self.connect() as connection:
            return connection.execute(sql, params).fetchall()

    # -- cursors
    def open(self, compiled: CompiledQuery, *, include_deleted: bool,
             counted: bool = True) -> tuple[Cursor, list[Cursor]]:
        """Run the query's id list into a new cursor; returns it and the cursors released to make room."""
        number = next(self._numbers)
        table = f"cur.c{number}"
        with self.connect() as connection:
            connection.execute(f"CREATE TABLE {table} (pos INTEGER PRIMARY KEY, rid INTEGER NOT NULL)")
            try:
                inserted = connection.execute(f"INSERT INTO {table} (rid) {compiled.id_select_sql()}",
                                              compiled.params).rowcount
            except BaseException:
                connection.execute(f"DROP TABLE IF EXISTS {table}")
                raise
        cursor = Cursor(number, table, compiled, inserted, include_deleted, counted, time.monotonic())
        released = self._register(cursor)
        return cursor, released

    def _register(self, cursor: Cursor) -> list[Cursor]:
        released: list[Cursor] = []
        with self._lock:
            self._cursors[cursor.number] = cursor
            now = time.monotonic()
            for other in list(self._cursors.values()):
                if other.counted and now - other.last_used > self.idle_seconds:
                    released.append(self._cursors.pop(other.number))
            if self.max_open:
                counted = [other for other in self._cursors.values() if other.counted]
                while len(counted) > self.max_open:
                    oldest = counted.pop(0)
                    released.append(self._cursors.pop(oldest.number))
        for old in released:
            self._drop(old)
        return released

    def get(self, number: int) -> Cursor | None:
        with self._lock:
            cursor = self._cursors.get(number)
            if cursor is None:
                return None
            if cursor.counted and time.monotonic() - cursor.last_used > self.idle_seconds:
                del self._cursors[number]
                expired = cursor
            else:
                cursor.last_used = time.monotonic()
                return cursor
        self._drop(expired)
        return None

    def release(self, cursor: Cursor) -> None:
        with self._lock:
            present = self._cursors.pop(cursor.number, None)
        if present is not None:
            self._drop(present)

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for cursor in self._cursors.values() if cursor.counted)

    def _drop(self, cursor: Cursor) -> None:
        self.execute(f"DROP TABLE IF EXISTS {cursor.table}")

    # -- reading
    def page(self, cursor: Cursor, after: int, limit: int, upto: int | None = None) -> list[sqlite3.Row]:
        """Up to `limit` records at positions after `after` (and at most `upto`), current values."""
        sql = cursor.compiled.page_sql(cursor.table, cursor.include_deleted)
        return self.execute(sql, (after, cursor.total if upto is None else upto, limit))

    def page_bounds(self, cursor: Cursor, after: int, limit: int) -> tuple[int, int]:
        """(record count, last position) of the page after `after`, without fetching the records."""
        deleted = "" if cursor.include_deleted else \
            f" AND NOT ({cursor.compiled.sobject.deleted_sql.replace('{t}', 't')})"
        sql = (f"SELECT COUNT(*), MAX(pos) FROM (SELECT r.pos AS pos FROM {cursor.table} r "
               f"JOIN {cursor.compiled.source_sql} ON t.id = r.rid WHERE r.pos > ?{deleted} ORDER BY r.pos LIMIT ?)")
        count, last = self.execute(sql, (after, limit))[0]
        return int(count), int(last or after)

    def ids(self, cursor: Cursor, after: int | None = None, upto: int | None = None, limit: int = 1,
            descending: bool = False) -> list[int]:
        """Record ids in the cursor (for faults that mutate records the pages include)."""
        conditions, params = [], []
        if after is not None:
            conditions.append("pos > ?")
            params.append(after)
        if upto is not None:
            conditions.append("pos <= ?")
            params.append(upto)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        order = "DESC" if descending else "ASC"
        rows = self.execute(f"SELECT rid FROM {cursor.table}{where} ORDER BY pos {order} LIMIT ?",
                            (*params, limit))
        return [int(row[0]) for row in rows]

def _cleanup(connections: list[sqlite3.Connection], directory: Path) -> None:
    for connection in connections:
        with suppress(sqlite3.Error):
            connection.close()
    shutil.rmtree(directory, ignore_errors=True)
