"""The world store: the records the sandbox serves, in their own SQLite file.

The file is the only copy: services read it with streamed queries (a million records are never held in
memory), tests and faults change it through `update`/`delete`/`purge`. Reads use one connection per thread
(WAL mode lets them run beside a write); writes share one connection behind a lock.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.sandbox.world.schema import (
    BOOL,
    CURRENCY_TABLES,
    DATE,
    INSTANT,
    INT,
    REAL,
    TABLE_ORDER,
    TABLES,
    TEXT,
    WORLD_COLUMNS,
    Column,
    column_names,
    index_sql,
    schema_sql,
)

SCHEMA_VERSION = 1
CRMS = ("salesforce", "hubspot")
_INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S"
_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")

# The last instant `now()` handed out, per world file: strictly increasing within the process.
_last_stamp_ms: dict[Path, int] = {}
_stamp_lock = threading.Lock()


class WorldError(ValueError):
    """A record or world file that does not fit the world format; the message names what and where."""


def format_instant(moment: dt.datetime) -> str:
    """The world's instant form: ISO 8601 UTC with milliseconds, '2026-03-04T09:15:00.000Z'."""
    moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment
    return moment.strftime(_INSTANT_FORMAT) + f".{moment.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant (Z or an offset; a bare time is taken as UTC) as an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def instant_ms(text: str) -> int:
    return int(parse_instant(text).timestamp() * 1000)


def ms_instant(milliseconds: int) -> str:
    return format_instant(dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC))


def coerce_value(table: str, column: Column, value: Any) -> Any:
    """A value checked against its column's type and put in stored form; WorldError says what is wrong."""
    if value is None:
        return None
    kind = column.type
    where = f"{table}.{column.name}"
    if kind == BOOL:
        if isinstance(value, bool) or value in (0, 1):
            return int(value)
        raise WorldError(f"{where} must be true or false, not {value!r}")
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WorldError(f"{where} must be a whole number, not {value!r}")
        return value
    if kind == REAL:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WorldError(f"{where} must be a number, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise WorldError(f"{where} must be a string, not {value!r}")
    if kind == INSTANT:
        try:
            return format_instant(parse_instant(value))
        except ValueError:
            raise WorldError(f"{where} must be an ISO 8601 instant like 2026-03-04T09:15:00.000Z, "
                             f"not {value!r}") from None
    if kind == DATE:
        if not _DATE_PATTERN.fullmatch(value):
            raise WorldError(f"{where} must be a date like 2026-03-04, not {value!r}")
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise WorldError(f"{where} is not a real date: {value!r}") from None
        return value
    assert kind == TEXT
    return value


class World:
    """A world file: its settings and its records."""

    path: Path
    home_currency: str
    timezone: str
    seed: int | None
    size: str | None
    reference_now: str | None  # the `now` the world was generated relative to (world.now in the format)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._write_lock = threading.RLock()
        self._writer = self._connect(read_only=False)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._stamp_floor_ms: int | None = None
        self._load_settings()

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, *, seed: int | None = None, size: str | int | None = None,
               home_currency: str = "USD", timezone: str = "UTC", now: str | None = None,
               indexes: bool = True) -> World:
        """An empty world with the schema at `path` (an existing file there is replaced)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in schema_sql() + (index_sql() if indexes else []):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO world (seed, size, home_currency, timezone, now) VALUES (?, ?, ?, ?, ?)",
                (seed, None if size is None else str(size), home_currency, timezone,
                 None if now is None else format_instant(parse_instant(now))))
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            connection.commit()
        finally:
            connection.close()
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> World:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no sandbox world at {path}: generate one (kpi-agent sandbox --seed N "
                                    f"--size S) or load a directory of JSON Lines (--world DIR)")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
        finally:
            connection.close()
        if version != SCHEMA_VERSION:
            raise WorldError(f"{path} is not a sandbox world of this version (schema {version}, expected "
                             f"{SCHEMA_VERSION}): generate or load it again")
        return cls(path)

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0,
                                     isolation_level=None if read_only else "DEFERRED")
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA mmap_size=268435456")
        if read_only:
            connection.execute("PRAGMA query_only=1")
        else:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _load_settings(self) -> None:
        row = self._writer.execute("SELECT * FROM world LIMIT 1").fetchone()
        settings = dict(row) if row else {}
        self.home_currency = settings.get("home_currency") or "USD"
        self.timezone = settings.get("timezone") or "UTC"
        self.seed = settings.get("seed")
        self.size = settings.get("size")
        self.reference_now = settings.get("now")

    def set_settings(self, **fields: Any) -> None:
        """Change the `world` line (seed, size, home_currency, timezone, now)."""
        known = {column.name: column for column in WORLD_COLUMNS}
        for name, value in fields.items():
            if name not in known:
                raise WorldError(f"world has no setting {name!r}: use one of {', '.join(known)}")
            stored = coerce_value("world", known[name], str(value) if name == "size" and value is not None else value)
            with self._write_lock:
                self._writer.execute(f"UPDATE world SET {name} = ?", (stored,))
                self._writer.commit()
        self._load_settings()

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for connection in readers:
            connection.close()
        with self._write_lock:
            self._writer.close()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------------

    def read(self) -> sqlite3.Connection:
        """This thread's read connection (row_factory = sqlite3.Row, query_only)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect(read_only=True)
            self._local.connection = connection
            with self._readers_lock:
                self._readers.append(connection)
        return connection

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Run one statement: a SELECT on this thread's read connection, anything else as a committed write."""
        if _is_read(sql):
            return self.read().execute(sql, params).fetchall()
        with self._write_lock:
            try:
                rows = self._writer.execute(sql, params).fetchall()
                self._writer.commit()
            except BaseException:
                self._writer.rollback()
                raise
        return rows

    def iter_query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = (),
                   batch: int = 2000) -> Iterator[sqlite3.Row]:
        """Rows of a SELECT, fetched `batch` at a time (for streaming big answers)."""
        cursor = self.read().execute(sql, params)
        try:
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def get(self, table: str, record_id: int) -> sqlite3.Row | None:
        _check_table(table)
        return self.read().execute(f"SELECT * FROM {table} WHERE id = ?", (record_id,)).fetchone()

    def count(self, table: str, where: str = "", params: Sequence[Any] = ()) -> int:
        _check_table(table)
        sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.read().execute(sql, params).fetchone()[0])

    # -- writing -------------------------------------------------------------------------------------

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add records given as mappings of the format's keys; checked and completed with defaults.

        `crm` is derived for the new rows from what the world holds now (insert parents first).
        """
        _check_table(table)
        names = column_names(table)
        placeholders = ", ".join("?" for _ in names)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})"
        count = 0
        with self._write_lock:
            try:
                for batch in _batches((self.normalize(table, row) for row in rows), 1000):
                    self._writer.executemany(sql, [tuple(row[name] for name in names) for row in batch])
                    count += len(batch)
                if "crm" in names and table != "teams":
                    self._writer.execute(derive_crm_sql(table, only_missing=True))
                self._writer.commit()
            except sqlite3.IntegrityError as error:
                self._writer.rollback()
                raise WorldError(f"cannot insert into {table}: {error} (ids must be unique)") from error
            except BaseException:
                self._writer.rollback()
                raise
        return count

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Fast path for the generator: tuples in `columns` order, stored as given (no checks)."""
        _check_table(table)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        count = 0
        with self._write_lock:
            try:
                for batch in _batches(rows, 5000):
                    self._writer.executemany(sql, batch)
                    count += len(batch)
                self._writer.commit()
            except BaseException:
                self._writer.rollback()
                raise
        return count

    def normalize(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """A record in stored form: unknown keys, missing required keys and bad types raise WorldError."""
        _check_table(table)
        columns = {column.name: column for column in TABLES[table]}
        for key in row:
            if key not in columns or columns[key].derived:
                keys = ", ".join(name for name, column in columns.items() if not column.derived)
                raise WorldError(f"{table} has no key {key!r} (keys: {keys})")
        record: dict[str, Any] = {}
        for name, column in columns.items():
            value = row.get(name)
            if value is None and column.required:
                raise WorldError(f"{table} record is missing required key {name!r}")
            record[name] = coerce_value(table, column, value) if value is not None else column.default
        if table == "teams":
            record["crm"] = record["crm"] or "salesforce"
            if record["crm"] not in CRMS:
                raise WorldError(f"teams.crm must be one of {', '.join(CRMS)}, not {record['crm']!r}")
        if table == "stage_history" and record.get("created_at") is None:
            record["created_at"] = record["entered_at"]
        if "created_at" in record and record["created_at"] is None:
            record["created_at"] = self.reference_now or format_instant(dt.datetime.now(dt.UTC))
        if "updated_at" in record and record["updated_at"] is None:
            record["updated_at"] = record["created_at"]
        if table in CURRENCY_TABLES and record.get("currency") is None:
            record["currency"] = self.home_currency
        if record.get("deleted") and record.get("deleted_at") is None:
            record["deleted_at"] = record["updated_at"]
        return record

    def update(self, table: str, record_id: int, fields: Mapping[str, Any], *, bump: bool = True) -> None:
        """Change a record's keys; bump=True also sets updated_at to `now()` (unless fields give it)."""
        _check_table(table)
        columns = {column.name: column for column in TABLES[table]}
        changes = {}
        for name, value in fields.items():
            if name not in columns or name == "id":
                raise WorldError(f"cannot update {table}.{name}: no such key (or it is the id)")
            changes[name] = coerce_value(table, columns[name], value)
        if bump and "updated_at" in columns and "updated_at" not in changes:
            changes["updated_at"] = self.now()
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self._write_one(f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), record_id),
                        table, record_id)

    def delete(self, table: str, record_id: int) -> None:
        """Soft delete (recycle bin / archived): deleted=1, deleted_at=now; updated_at is left alone."""
        _check_table(table)
        if "deleted" not in column_names(table):
            raise WorldError(f"{table} records cannot be soft-deleted (no `deleted` key): use purge()")
        self._write_one(f"UPDATE {table} SET deleted = 1, deleted_at = ? WHERE id = ?", (self.now(), record_id),
                        table, record_id)

    def purge(self, table: str, record_id: int) -> None:
        """Hard delete: the record is gone for good (emptied recycle bin, GDPR erase)."""
        _check_table(table)
        self._write_one(f"DELETE FROM {table} WHERE id = ?", (record_id,), table, record_id)

    def _write_one(self, sql: str, params: Sequence[Any], table: str, record_id: int) -> None:
        with self._write_lock:
            changed = self._writer.execute(sql, params).rowcount
            self._writer.commit()
        if changed == 0:
            raise KeyError(f"{table} has no record with id {record_id}")

    def derive_crm(self) -> None:
        """Write `crm` on every record table from the owners' teams (after loading a whole world)."""
        with self._write_lock:
            for table in TABLE_ORDER:
                if "crm" in column_names(table):
                    self._writer.execute(derive_crm_sql(table, only_missing=False))
            self._writer.commit()

    def create_indexes(self) -> None:
        """The serving indexes (the generator builds them after its bulk inserts: faster)."""
        with self._write_lock:
            for statement in index_sql():
                self._writer.execute(statement)
            self._writer.execute("ANALYZE")
            self._writer.commit()

    # -- time ----------------------------------------------------------------------------------------

    def now(self) -> str:
        """The instant the world uses for "now": the wall clock, moved on past the world's own `now` and
        its newest record if those lie ahead, in ms, strictly increasing within the process."""
        wall_ms = time.time_ns() // 1_000_000
        if self._stamp_floor_ms is None:
            floor = self._newest_stamp_ms()
            # Shift the clock once, so a world dated in the future still gets stamps after its records.
            self._stamp_offset_ms = max(0, floor + 1 - wall_ms)
            self._stamp_floor_ms = floor
        candidate = wall_ms + self._stamp_offset_ms
        with _stamp_lock:
            key = self.path.resolve()
            candidate = max(candidate, _last_stamp_ms.get(key, 0) + 1)
            _last_stamp_ms[key] = candidate
        return ms_instant(candidate)

    def _newest_stamp_ms(self) -> int:
        stamps = [self.reference_now] if self.reference_now else []
        for table in TABLE_ORDER:
            if "updated_at" in column_names(table):
                # MAX over the (updated_at, id) index: instant even on millions of rows.
                newest = self.read().execute(f"SELECT MAX(updated_at) FROM {table}").fetchone()[0]
                stamps += [newest] if newest else []
        return max((instant_ms(stamp) for stamp in stamps), default=0)


def derive_crm_sql(table: str, *, only_missing: bool) -> str:
    """SQL that sets `crm` per docs/sandbox-world.md: the owner's team's, salesforce when unowned,
    an opportunity child's from its opportunity."""
    if table == "teams":
        source = "COALESCE(crm, 'salesforce')"
    elif table == "reps":
        source = "(SELECT t.crm FROM teams t WHERE t.id = reps.team_id)"
    elif table in ("line_items", "stage_history"):
        source = f"(SELECT o.crm FROM opportunities o WHERE o.id = {table}.opportunity_id)"
    elif table == "contracts":
        source = ("COALESCE((SELECT o.crm FROM opportunities o WHERE o.id = contracts.opportunity_id), "
                  "(SELECT a.crm FROM accounts a WHERE a.id = contracts.account_id))")
    else:
        source = f"(SELECT r.crm FROM reps r WHERE r.id = {table}.owner_rep_id)"
    where = " WHERE crm IS NULL" if only_missing else ""
    return f"UPDATE {table} SET crm = COALESCE({source}, 'salesforce'){where}"


def _is_read(sql: str) -> bool:
    first = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return first in ("SELECT", "WITH", "EXPLAIN", "VALUES")


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise WorldError(f"the world has no table {table!r}: use one of {', '.join(TABLE_ORDER)}")


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
