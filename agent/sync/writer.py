"""Writing normalized records into the cache: bulk upserts, set-based key resolution and derived values.

One page is written by :meth:`CacheWriter.write_page` inside the engine's transaction (the same one that
moves the cursor).  Every table is written with one ``INSERT .. ON CONFLICT (connection, source_id) DO
UPDATE`` for the whole batch — never a per-row ORM loop: on PostgreSQL one array per column (``unnest``), on
SQLite one executemany.  References are resolved set-based in that same INSERT — ``account_source_id`` →
``account_id`` through the parent's unique ``(connection, source_id)`` index (a LEFT JOIN on PostgreSQL, a
subquery on SQLite) — so each row is written once; rows whose parent arrives later are resolved by one
``UPDATE`` per reference at the end of the run (:meth:`CacheWriter.resolve_dangling`).

Derived here, where the connector could not say it (set on the rows before the upsert, so that each row is
written once; only a first load's deals get their close instant from stage history by an UPDATE after it):

- ``crm_user`` → ``rep`` by email (lower-cased): one rep per email across connections; the rep's team is
  the config team that lists the email, else the CRM team (role) of the user.
- ``opportunity.closed_at``: the connector's value, else the entry into a closed stage (stage history),
  else the end of the close date's local day in the org timezone.
- ``opportunity.probability``: the deal's own, else its stage's default.
- ``amount_home`` (deals, stage history, line items): from the connection's currency rates (a dated rate
  covering the close date, else the current one) when the connector gave only ``amount`` and ``currency``.
- Activities that Salesforce moved from a lead to its contact at conversion are linked back to the lead
  (``lead_source_id``) when they were created before the conversion.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from agent.config import TeamConfig
from agent.models import (  # (importing agent.models registers the cache tables)
    CRM_CONTRACT_NAMES_DEAL,
    DELETED_MARK,
    KEY_REFERENCES,
    MARKED_DELETED_TABLES,
    unresolved_condition,
)
from agent.sync.connector import Page
from agent.sync.records import RECORD_TABLES, CrmRecord, QuarantinedItem, UserRecord

log = logging.getLogger(__name__)

BATCH_ROWS = 2000
"""Rows per executed statement and ids per ``IN`` list: far below SQLite's variable limit (32,766)."""
LINK_BY_ID_MAX = 50_000
"""Past this many activities written in a run, linking them to converted leads id by id costs more than one
set-based statement over the whole table."""
# The keys whose late resolution (a contact that came after its lead or activity) can move an activity to a lead.
_CONTACT_LINKS = {("lead", "converted_contact_id"), ("activity", "contact_id")}
SQLITE_CACHE_KIB = 65_536
CONFIG_CONNECTION = "config"
"""The ``connection`` of teams defined in the agent's config (``[teams]``)."""

# Tables in the order a page's records are written: parents before the rows that point at them.
TABLE_ORDER = (
    "team", "crm_user", "pipeline", "stage", "product", "currency_rate", "account", "contact", "lead",
    "opportunity", "line_item", "stage_history", "activity", "contract",
)


@dataclass(frozen=True)
class Reference:
    """A resolved key: ``id_column`` of the row is the ``id`` of ``parent`` whose source_id is ``source_column``
    (for owners: the ``rep_id`` of the crm_user)."""

    id_column: str
    parent: str
    source_column: str

    @property
    def parent_key(self) -> str:
        return "rep_id" if self.parent == "crm_user" else "id"


def _references_by_table() -> dict[str, tuple[Reference, ...]]:
    by_table: dict[str, list[Reference]] = {}
    for table, id_column, parent, source_column in KEY_REFERENCES:
        by_table.setdefault(table, []).append(Reference(id_column, parent, source_column))
    return {table: tuple(references) for table, references in by_table.items()}


REFERENCES: dict[str, tuple[Reference, ...]] = _references_by_table()
"""Each table's keys resolved from CRM ids (``agent.models.KEY_REFERENCES``, which also indexes the rows
whose key is still unresolved)."""


@dataclass(frozen=True)
class WriterSettings:
    """What the writer needs to know about the connection it writes for."""

    connection: str
    home_currency: str = "USD"
    timezone: str = "UTC"
    config_teams: Mapping[str, TeamConfig] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def config_team_of(self) -> dict[str, str]:
        """Member email (lower-case) → config team key; a member of two teams belongs to the first listed."""
        owners: dict[str, str] = {}
        for key, team in self.config_teams.items():
            for email in team.members:
                owners.setdefault(email.lower(), key)
        return owners


@dataclass
class PageCounts:
    written: int = 0
    deleted: int = 0
    quarantined: int = 0
    tables: set[str] = field(default_factory=set)


def table_of(record: CrmRecord) -> str:
    """The cache table of a record; a connector's subclass of a record type goes where its base goes."""
    return _table_of_kind(type(record))


@cache
def _table_of_kind(kind: type[CrmRecord]) -> str:
    for base in kind.__mro__:
        if base in RECORD_TABLES:
            return RECORD_TABLES[base]  # type: ignore[index]
    raise TypeError(f"{kind.__name__} is not a normalized record type (see agent/sync/records.py)")


def cache_table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


@cache
def _string_lengths(name: str) -> dict[str, int]:
    lengths = {}
    for column in cache_table(name).columns:
        length = getattr(column.type, "length", None)
        if isinstance(length, int):
            lengths[column.name] = length
    return lengths


@cache
def _record_columns(kind: type[CrmRecord], table_name: str) -> tuple[str, ...]:
    """The record's fields that are columns of its table (UserRecord.manager_source_id, say, is not)."""
    columns = set(cache_table(table_name).columns.keys())
    return tuple(f.name for f in dataclasses.fields(kind) if f.name in columns)


def _batches(items: Sequence[Any], size: int = BATCH_ROWS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def end_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """The end of ``day`` in ``zone`` as a UTC instant: the next day's local midnight, since a date covers
    ``[d 00:00, d+1 00:00)`` (the KPI catalog's convention for a close without stage history)."""
    return datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)


class CacheWriter:
    """Writes pages of one connection's records; stateless apart from compiled statements."""

    def __init__(self, dialect: str, settings: WriterSettings) -> None:
        self.dialect = dialect
        self.settings = settings
        self._zone = settings.zone
        self._team_of = settings.config_team_of()
        self._statements: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._may_hold_quarantined: dict[str, bool] = {}
        self._written: dict[str, int] = {}
        self._contracts_link_deals: bool | None = None
        self._analyzed: set[str] = set()
        # The activities this run wrote, for the end-of-run link to converted leads (None: too many to list).
        self._activities_written: list[str] | None = []
        self._contacts_resolved_late = False

    # -- pages -------------------------------------------------------------------------------------------

    def write_page(self, conn: Connection, object_name: str, page: Page, now: datetime,
                   deleted_table: str | None = None) -> PageCounts:
        """Upsert the page's records, mark its deletions, keep its quarantined records; one transaction."""
        if self.dialect == "sqlite":
            # SQLite's default page cache is 2 MB: a load into tables of millions of rows with several indexes
            # each would then re-read index pages for nearly every insert.  64 MB while a page is written.
            conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        elif self.dialect == "postgresql":
            # The page's transaction need not wait for its WAL to reach the disk: a database crash can lose
            # only the last pages committed, rows and cursor together, and the next run reads them again.
            # SQLite's WAL with synchronous=NORMAL makes the same trade.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            self.without_jit(conn)
        counts = PageCounts()
        grouped = self._group(page.records)
        for table_name in sorted(grouped, key=_table_rank):
            records = grouped[table_name]
            self.upsert(conn, table_name, records, updates_expected=page.cursor.initial_load_done)
            counts.written += len(records)
            counts.tables.add(table_name)
        landed = [record.source_id for records in grouped.values() for record in records]
        self.release_quarantined(conn, object_name, landed)
        if page.deleted_ids and deleted_table is not None:
            counts.deleted = self.mark_deleted(conn, deleted_table, page.deleted_ids)
            counts.tables.add(deleted_table)
        if page.quarantined:
            counts.quarantined = self.quarantine(conn, object_name, page.quarantined, now)
        if self.dialect == "sqlite":
            # Back to the default (which frees the pages): the pool hands pages to its connections in turn,
            # and each would otherwise keep its own 64 MB.
            conn.exec_driver_sql("PRAGMA cache_size = -2000")
        return counts

    def _group(self, records: Iterable[CrmRecord]) -> dict[str, list[CrmRecord]]:
        grouped: dict[str, dict[str, CrmRecord]] = {}
        for record in records:
            # A record twice in one statement breaks PostgreSQL's ON CONFLICT; the later version wins.
            grouped.setdefault(table_of(record), {})[record.source_id] = record
        return {name: list(by_id.values()) for name, by_id in grouped.items()}

    # -- upserts -----------------------------------------------------------------------------------------

    def upsert(self, conn: Connection, table_name: str, records: Sequence[CrmRecord], *,
               updates_expected: bool = False) -> None:
        """Insert or update ``records`` (all of one table), then resolve keys and derive values for them.

        ``updates_expected``: the records are mostly in the cache already (a page past the first load), which
        on SQLite picks a different way to the same result."""
        by_kind: dict[type[CrmRecord], list[CrmRecord]] = {}
        for record in records:
            by_kind.setdefault(type(record), []).append(record)
        for kind, same_kind in by_kind.items():
            columns, values = self._column_values(conn, table_name, kind, same_kind, updates_expected)
            for start in range(0, len(same_kind), BATCH_ROWS):
                batch = {name: column[start : start + BATCH_ROWS] for name, column in values.items()}
                if self.dialect == "postgresql":
                    self._upsert_arrays(conn, table_name, columns, batch, updates_expected)
                else:
                    self._upsert_rows(conn, table_name, columns, batch, updates_expected)
        source_ids = [record.source_id for record in records]
        if table_name == "activity":
            self._note_activities_written(source_ids)
        self._after_upsert(conn, table_name, records, source_ids, closed_at_known=updates_expected)

    def _note_activities_written(self, source_ids: Sequence[str]) -> None:
        if self._activities_written is None:
            return
        self._activities_written.extend(source_ids)
        if len(self._activities_written) > LINK_BY_ID_MAX:
            self._activities_written = None

    def _column_values(self, conn: Connection, table_name: str, kind: type[CrmRecord], records: Sequence[CrmRecord],
                       updates_expected: bool = False) -> tuple[tuple[str, ...], dict[str, list[Any]]]:
        """The records as one list per column (what both databases' statements take), over-long text cut to
        its column's length.  Tables with values derived per row go through row dicts; the others (the
        big ones: activities, contacts, leads) are read column by column, which costs a C loop per column
        instead of a Python step per value.

        Values derived from the cache (a deal's stage probability, home amounts at the connection's rates, a
        closed deal's entry into a closed stage) are set on the rows too, so that the upsert writes each row
        once: set after it by an UPDATE, they cost every such row a second version, and a row read again
        unchanged (each run's overlap) looked changed, since the upsert first wrote them empty."""
        fields = _record_columns(kind, table_name)
        if table_name in _DERIVED_ON_ROW or table_name == "stage_history":
            rows = [self._row(table_name, fields, record) for record in records]
            if table_name == "stage_history":
                self._stage_history_amounts(conn, records, rows)
            elif table_name == "opportunity":
                self._deal_values_from_cache(conn, records, rows, with_history=updates_expected)
            elif table_name == "line_item":
                self._line_values_from_cache(conn, rows)
            columns = tuple(rows[0])
            values = {name: [row[name] for row in rows] for name in columns}
        else:
            columns = (*fields, "connection")
            values = {name: list(map(attrgetter(name), records)) for name in fields}
            values["connection"] = [self.settings.connection] * len(records)
        for name, length in _string_lengths(table_name).items():
            column = values.get(name)
            if column is not None and _longest(column) > length:
                # PostgreSQL refuses an over-long varchar; keep the record
                values[name] = [value[:length] if isinstance(value, str) else value for value in column]
        return columns, values

    def _row(self, table_name: str, columns: tuple[str, ...], record: CrmRecord) -> dict[str, Any]:
        row = {name: getattr(record, name) for name in columns}
        row["connection"] = self.settings.connection
        deriver = _DERIVED_ON_ROW.get(table_name)
        if deriver is not None:
            deriver(self, row)
        return row

    def _upsert_rows(self, conn: Connection, table_name: str, columns: tuple[str, ...],
                     values: Mapping[str, list[Any]], updates_expected: bool) -> None:
        """SQLite: plain tuples, keys resolved in the same INSERT; one executemany for a first load's batch;
        past it, an UPDATE in place per row first (see below).

        Values are already in the form SQLAlchemy would store (aware instants as UTC text, dates ISO,
        booleans 0/1): its per-value type processing costs more than the insert itself on a big load.  Each
        ``*_id`` is a subquery on the parent's unique (connection, source_id) index, so a row is written once
        with its keys (a later UPDATE would rewrite every indexed key column: activities have five)."""
        references = [ref for ref in REFERENCES.get(table_name, ()) if ref.source_column in columns]
        key = ("rows:" + table_name, columns)
        statements = self._statements.get(key)
        if statements is None:
            targets = [*columns, *(ref.id_column for ref in references)]
            lookups = [_parent_search(ref, f"p.{ref.parent_key}") for ref in references]
            insert = (f"INSERT INTO {table_name} ({', '.join(targets)}) VALUES "
                      f"({', '.join(['?'] * len(columns) + lookups)}) ON CONFLICT (connection, source_id) ")
            statements = (insert + _update_if_changed(table_name, targets, "sqlite"),
                          _sqlite_update_leaving_indexes(table_name, targets, insert),
                          _sqlite_update_in_place(table_name, columns, references))
            self._statements[key] = statements
        every_column, leaving_indexes, in_place = statements
        stored = [values[name] if _value_kind(table_name, name) in ("text", "number")
                  else list(map(_sqlite_value, values[name])) for name in columns]
        connections = values["connection"]
        lookups = [column for ref in references for column in (connections, values[ref.source_column])]
        rows = list(zip(*stored, *lookups, strict=True))
        if updates_expected and in_place is not None:
            # Past the first load most rows exist and the usual change touches no indexed value: the UPDATE
            # writes those without the upsert's parent searches (five random index pages for an activity,
            # the most of an incremental run's reads).  Each row goes alone, since an executemany's rowcount
            # is only the batch's total; the rest (new, read again unchanged, an indexed value or a key
            # changed) take the upsert that sets every column.
            left = _rows_not_written(conn, in_place.sql, rows, in_place.parameters)
            if left:
                conn.exec_driver_sql(every_column, left)
            return
        if leaving_indexes is None:
            conn.exec_driver_sql(every_column, rows)
            return
        # A first load's batch is all inserts: one executemany, whose rowcount says there is nothing left for
        # the statement that sets every column (it runs for the whole batch if something is).
        if conn.exec_driver_sql(leaving_indexes, rows).rowcount < len(rows):
            conn.exec_driver_sql(every_column, rows)

    def _upsert_arrays(self, conn: Connection, table_name: str, columns: tuple[str, ...],
                       values: Mapping[str, list[Any]], updates_expected: bool = False) -> None:
        """PostgreSQL: the batch as one array per column, keys resolved in the same statement.

        ``INSERT .. SELECT .. FROM unnest(..) LEFT JOIN <parent> ..``: psycopg 3 runs an executemany row by
        row, and a multi-row VALUES statement of 2,000 rows costs more to build and parse than to run; one
        array per column is a single small statement.  Joining the parents here writes each row once (a
        separate UPDATE would write every row a second time, which PostgreSQL's MVCC pays for twice).
        Each array goes as one literal built here (``pg_array_literal``): psycopg's list dumper costs a
        Python call per element, half of a big load's writing time.  Instants must be aware (records are).

        Past the first load (``updates_expected``) the parents are not joined: for a page of 2,000 rows the
        planner hashed the whole of each big parent table (sequential scans of every lead, contact and
        account: 294 of the 372 ms of an activity page at 100k deals, and the tables grow with the cache).
        Instead the statement joins the row as stored (one probe of the table's own unique key, whose pages
        the conflict check then finds in memory) and keeps each stored key whose CRM id is unchanged, the usual
        case past a first load; only a key whose CRM id moved or is still unresolved probes its parent.  The
        same activity page: 304 ms with the join, 131 ms with a probe of every parent per row, 69 ms keeping
        the stored keys.  Owners are still joined: users are few (a hash of them costs nothing), and a user's
        rep can change under an unchanged CRM id (a new e-mail).  A first load's pages (10,000 new rows each)
        keep the join, whose figures the benchmark has."""
        references = [ref for ref in REFERENCES.get(table_name, ()) if ref.source_column in columns]
        self._keep_statistics(conn, table_name, references, len(values["connection"]))
        key = ("unnest:" + table_name, columns, updates_expected)
        sql = self._statements.get(key)
        if sql is None:
            sql = _unnest_upsert(table_name, columns, references, lookups=updates_expected)
            self._statements[key] = sql
        conn.exec_driver_sql(sql, {f"c{index}": pg_array_literal(_value_kind(table_name, name), values[name])
                                   for index, name in enumerate(columns)})

    def _build_upsert(self, table: Table, columns: Sequence[str], conflict: Sequence[str],
                      update: Mapping[str, Any] | None = None) -> Any:
        insert = _dialect_insert(self.dialect)(table)
        assignments = update if update is not None else {
            name: insert.excluded[name] for name in columns if name not in (*conflict, "id")
        }
        if not assignments:
            return insert.on_conflict_do_nothing(index_elements=list(conflict))
        return insert.on_conflict_do_update(index_elements=list(conflict), set_=dict(assignments))

    # -- derived on the row (Python, before the insert) ------------------------------------------------

    def _derive_opportunity(self, row: dict[str, Any]) -> None:
        if row.get("closed_at") is None and row.get("is_closed") and row.get("close_date") is not None:
            row["closed_at"] = end_of_local_day(row["close_date"], self._zone)
        self._home_amount(row, "amount", "amount_home")

    def _derive_line_item(self, row: dict[str, Any]) -> None:
        if row.get("net_total") is None and row.get("unit_price") is not None:
            row["net_total"] = row["unit_price"] * (row.get("quantity") or 0)
        self._home_amount(row, "net_total", "net_total_home")
        if row.get("list_total_home") is None and row.get("list_price") is not None and self._is_home(row):
            row["list_total_home"] = row["list_price"] * (row.get("quantity") or 0)

    def _home_amount(self, row: dict[str, Any], amount: str, home: str) -> None:
        if row.get(home) is None and row.get(amount) is not None and self._is_home(row):
            row[home] = row[amount]

    def _is_home(self, row: Mapping[str, Any]) -> bool:
        return row.get("currency") in (None, self.settings.home_currency)

    # -- derived in SQL (after the upsert, restricted to the page's rows) -------------------------------

    def _after_upsert(self, conn: Connection, table_name: str, records: Sequence[CrmRecord],
                      source_ids: Sequence[str], *, closed_at_known: bool = False) -> None:
        # The keys were resolved in the INSERT itself (both databases).
        if table_name == "crm_user":
            self._map_users_to_reps(conn, [r for r in records if isinstance(r, UserRecord)])
        elif table_name == "opportunity":
            self._derive_opportunities(conn, records, closed_at_known=closed_at_known)
            self._derive_contracts(conn, "opportunity", records)
        elif table_name == "stage_history":
            self._closed_at_from_history(conn, source_ids)
        elif table_name == "line_item":
            self._derive_contracts(conn, "line_item", records)
        elif table_name == "lead":
            self._link_activities_of_converted_leads(conn, source_ids)
        elif table_name == "contract":
            self._contract_owners(conn, records)
            self._drop_contracts_the_crm_replaces(conn, records)

    def _keep_statistics(self, conn: Connection, table_name: str, references: Sequence[Reference],
                         written: int) -> None:
        """ANALYZE what a big load just filled.  Fresh tables have no statistics until autovacuum comes
        round, and with none PostgreSQL plans the page's join as if every table were tiny (nested loops over
        sequential scans: 24 s instead of 1 s for 47,000 activities).  Parents are considered the first time a
        table points at them in this run, the table itself each time its rows written grow tenfold; each is
        analysed only if its statistics are missing or stale (``_statistics_current``)."""
        before = self._written.get(table_name, 0)
        self._written[table_name] = before + written
        stale = {ref.parent for ref in references} - self._analyzed
        if _order_of_magnitude(before + written) > _order_of_magnitude(before):
            stale.add(table_name)
        for name in sorted(stale):
            if not _statistics_current(conn, name):
                conn.exec_driver_sql(f"ANALYZE {name}")
            self._analyzed.add(name)

    def refresh_statistics(self, conn: Connection) -> list[str]:
        """PostgreSQL, at the end of a run: ANALYZE each table this run wrote whose statistics are stale by
        autovacuum's own measure (changed by more than a tenth since), so that the next run and the KPI
        queries plan with the table as it is.  After a first load that is every table it filled (what
        PostgreSQL's "Populating a Database" advises); an incremental run changes too little to need it, so it
        does not pay for it.  Autovacuum would get there too, but only within its naptime, and not at all
        where it is switched off.  Returns the tables analysed."""
        if self.dialect != "postgresql":
            return []  # SQLite plans without statistics unless ANALYZE was ever run; the cache never runs it
        analysed = []
        for name in sorted(table for table, written in self._written.items() if written):
            if not _statistics_current(conn, name, changed_share=0.1):
                conn.exec_driver_sql(f"ANALYZE {name}")
                analysed.append(name)
        return analysed

    def without_jit(self, conn: Connection) -> None:
        """PostgreSQL: no JIT compilation in this transaction.  The sync's statements touch few rows through
        indexes, but on a big table the planner's estimates pass ``jit_above_cost`` and each statement spent
        about 0.4 s compiling (most of an incremental run's end-of-run passes)."""
        if self.dialect == "postgresql":
            conn.exec_driver_sql("SET LOCAL jit = off")

    def resolve_dangling(self, conn: Connection) -> None:
        """Resolve keys whose parent arrived after the row (a deal's account created mid-run, a lead's
        opportunity synced after the lead): once per run, only rows still unresolved, found through their
        partial index (``agent.models.UNRESOLVED_REFERENCES``: the WHERE below is its condition), and only
        those whose parent (with its key: a user may have no rep) is now there: a row whose parent never
        comes (outside the first load's reach, or an object this connector does not sync, such as products)
        is not rewritten on every run."""
        self.without_jit(conn)
        params = {"connection": self.settings.connection}
        parents_present: dict[str, bool] = {}
        for table_name, references in REFERENCES.items():
            for ref in references:
                if ref.parent not in parents_present:
                    found = conn.execute(text(f"SELECT 1 FROM {ref.parent} WHERE connection = :connection LIMIT 1"),
                                         params).first()
                    parents_present[ref.parent] = found is not None
                if not parents_present[ref.parent]:
                    continue
                resolved = conn.execute(text(
                    f"UPDATE {table_name} SET {ref.id_column} = {_lookup(table_name, ref)} "
                    f"WHERE connection = :connection AND {unresolved_condition(ref.id_column, ref.source_column)} "
                    f"AND {_lookup(table_name, ref)} IS NOT NULL"), params).rowcount
                if resolved and (table_name, ref.id_column) in _CONTACT_LINKS:
                    self._contacts_resolved_late = True

    def _page_sql(self, statement: str, table_name: str, extra: str = "") -> Any:
        return _in_page(statement, table_name, extra, self.dialect)

    def _run_for_ids(self, conn: Connection, statement: Any, source_ids: Sequence[str], **params: Any) -> None:
        for batch in _batches(list(source_ids)):
            conn.execute(statement, {"connection": self.settings.connection, "ids": list(batch), **params})

    # -- users and reps ----------------------------------------------------------------------------------

    def _map_users_to_reps(self, conn: Connection, users: Sequence[UserRecord]) -> None:
        with_email = [user for user in users if user.email]
        if not with_email:
            return
        reps = {}
        for user in with_email:
            reps[user.email.strip().lower()] = {  # type: ignore[union-attr]
                "email": user.email.strip().lower(), "name": (user.name or user.email)[:200],  # type: ignore[union-attr]
                "active": user.active, "region": user.region, "timezone": user.timezone,
            }
        rep = cache_table("rep")
        insert = _dialect_insert(self.dialect)(rep)
        update = {"name": insert.excluded["name"], "active": insert.excluded["active"],
                  "region": _coalesce(insert.excluded["region"], rep.c.region),
                  "timezone": _coalesce(insert.excluded["timezone"], rep.c.timezone)}
        statement = insert.on_conflict_do_update(index_elements=["email"], set_=update)
        for batch in _batches(list(reps.values())):
            conn.execute(statement, list(batch))
        self._run_for_ids(conn, self._page_sql(
            "UPDATE crm_user SET rep_id = (SELECT r.id FROM rep r WHERE r.email = lower(trim(crm_user.email)))",
            "crm_user"), [user.source_id for user in with_email])
        self._assign_teams(conn, with_email)

    def _assign_teams(self, conn: Connection, users: Sequence[UserRecord]) -> None:
        config_rows, crm_rows, manager_rows = [], [], []
        for user in users:
            email = user.email.strip().lower()  # type: ignore[union-attr]
            if email in self._team_of:
                config_rows.append({"email": email, "team": self._team_of[email], "config": CONFIG_CONNECTION})
            else:
                crm_rows.append({"email": email, "team": user.team_source_id, "config": self.settings.connection})
            if user.manager_source_id:
                manager_rows.append({"email": email, "manager": user.manager_source_id,
                                     "connection": self.settings.connection})
        team_update = text("UPDATE rep SET team_id = (SELECT t.id FROM team t WHERE t.connection = :config "
                           "AND t.source_id = :team) WHERE email = :email")
        for rows in (config_rows, crm_rows):
            if rows:
                conn.execute(team_update, rows)
        if manager_rows:
            conn.execute(text("UPDATE rep SET manager_rep_id = (SELECT u.rep_id FROM crm_user u WHERE "
                              "u.connection = :connection AND u.source_id = :manager) WHERE email = :email"),
                         manager_rows)

    def apply_config_teams(self, conn: Connection) -> None:
        """Write the config's teams (connection ``config``) and put their members' reps in them."""
        if not self.settings.config_teams:
            return
        rows = [{"connection": CONFIG_CONNECTION, "source_id": key, "name": team.name, "region": team.region}
                for key, team in self.settings.config_teams.items()]
        conn.execute(self._build_upsert(cache_table("team"), tuple(rows[0]), ("connection", "source_id")), rows)
        members = [{"email": email, "team": key, "config": CONFIG_CONNECTION} for email, key in self._team_of.items()]
        conn.execute(text("UPDATE rep SET team_id = (SELECT t.id FROM team t WHERE t.connection = :config "
                          "AND t.source_id = :team) WHERE email = :email"), members)
        managers = [{"team": key, "manager": team.manager.lower(), "config": CONFIG_CONNECTION}
                    for key, team in self.settings.config_teams.items() if team.manager]
        if managers:
            conn.execute(text("UPDATE team SET manager_rep_id = (SELECT r.id FROM rep r WHERE r.email = :manager) "
                              "WHERE connection = :config AND source_id = :team"), managers)

    # -- deals ------------------------------------------------------------------------------------------

    def _derive_opportunities(self, conn: Connection, records: Sequence[CrmRecord], *,
                              closed_at_known: bool = False) -> None:
        """A first load's closed deals: their entry into a closed stage, where the cache has their history
        (a resumed load's deals may).  Past the first load it was read before the upsert."""
        if closed_at_known:
            return
        without_closed_at = [r.source_id for r in records if getattr(r, "closed_at", None) is None]
        self._run_for_ids(conn, self._page_sql(
            f"UPDATE opportunity SET closed_at = COALESCE({_CLOSED_STAGE_ENTRY}, closed_at)",
            "opportunity", f"AND {_NO_INDEX.format('is_closed')}"), without_closed_at)

    def _deal_values_from_cache(self, conn: Connection, records: Sequence[CrmRecord], rows: list[dict[str, Any]], *,
                                with_history: bool) -> None:
        """Set on the deals' rows what the connector left out: the stage's probability, the home amount at
        the rate of the close date (``_rate_on``), and (``with_history``) the instant a closed deal entered
        a closed stage by its stage history in the cache."""
        if any(row["probability"] is None and row["stage_source_id"] for row in rows):
            probability = self._stage_probabilities(conn)
            for row in rows:
                if row["probability"] is None and row["stage_source_id"]:
                    row["probability"] = probability.get(row["stage_source_id"])
        self._home_amounts_at_rates(conn, rows, ((itemgetter("amount"), "amount_home"),), on="close_date")
        if with_history:
            entered = self._closed_at_in_history(conn, [
                record.source_id for record in records
                if getattr(record, "closed_at", None) is None and getattr(record, "is_closed", False)])
            for row in rows:
                row["closed_at"] = entered.get(row["source_id"], row["closed_at"])

    def _line_values_from_cache(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Set on the line items' rows their home amounts at the current rate, and a recurring line's monthly
        value (its net home total over its term)."""
        self._home_amounts_at_rates(conn, rows, ((itemgetter("net_total"), "net_total_home"),
                                                 (_list_total, "list_total_home")))
        for row in rows:
            term = row["recurring_term_months"]
            if row["monthly_value_home"] is None and row["net_total_home"] is not None and term and term > 0:
                row["monthly_value_home"] = row["net_total_home"] / term

    def _home_amounts_at_rates(self, conn: Connection, rows: list[dict[str, Any]],
                               amounts: Sequence[tuple[Callable[[dict[str, Any]], float | None], str]],
                               on: str | None = None) -> None:
        """``row[home] = amount(row) / rate`` where the connector gave no home amount, at the rate of the
        row's currency on ``row[on]`` (else the current one); left empty where the connection has no rate."""
        rates: dict[str, list[tuple[date | None, date | None, float]]] | None = None
        for row in rows:
            currency = row["currency"]
            for amount_of, home in amounts:
                amount = amount_of(row)
                if row[home] is None and amount is not None and currency is not None:
                    if rates is None:
                        rates = self._rates(conn)
                    rate = _rate_on(rates, currency, row[on] if on else None)
                    row[home] = None if rate is None else amount / rate

    def _stage_probabilities(self, conn: Connection) -> dict[str, float | None]:
        stage = cache_table("stage")
        return dict(conn.execute(select(stage.c.source_id, stage.c.probability).where(
            stage.c.connection == self.settings.connection)).all())

    def _closed_at_in_history(self, conn: Connection, wanted: Sequence[str]) -> dict[str, datetime]:
        """The instant each deal of ``wanted`` entered a closed stage, by its stage history in the cache (what
        ``_CLOSED_STAGE_ENTRY`` reads); deals without such history are left out."""
        # the subquery of the UPDATE that derives it for a first load's deals, so both read the history alike
        statement = _ids_text(f"SELECT source_id, {_CLOSED_STAGE_ENTRY} FROM opportunity "
                              "WHERE connection = :connection AND source_id IN :ids", self.dialect).columns(
            cache_table("opportunity").c.source_id, cache_table("stage_history").c.entered_at)
        found: dict[str, datetime] = {}
        for batch in _batches(list(wanted)):
            found.update((source_id, entered) for source_id, entered in conn.execute(
                statement, {"connection": self.settings.connection, "ids": list(batch)}) if entered is not None)
        return found

    def _closed_at_from_history(self, conn: Connection, source_ids: Sequence[str]) -> None:
        # Only deals whose close instant changes are written: history pages touch the same deals many times.
        differs = "IS DISTINCT FROM" if self.dialect == "postgresql" else "IS NOT"
        statement = _ids_text(
            f"UPDATE opportunity SET closed_at = {_CLOSED_STAGE_ENTRY} WHERE closed_at {differs} "
            f"{_CLOSED_STAGE_ENTRY} AND {_NO_INDEX.format('is_closed')} AND id IN "
            "(SELECT h.opportunity_id FROM stage_history h WHERE h.connection = :connection "
            "AND h.source_id IN :ids) AND EXISTS (SELECT 1 FROM stage_history h JOIN stage s ON s.id = h.stage_id "
            "WHERE h.opportunity_id = opportunity.id AND s.is_closed = TRUE)", self.dialect)
        self._run_for_ids(conn, statement, source_ids)

    def _stage_history_amounts(self, conn: Connection, records: Sequence[CrmRecord],
                               rows: list[dict[str, Any]]) -> None:
        """Stage history keeps only the home amount: convert what the connector sent (``amount`` in
        ``currency``, else in the deal's currency) with the connection's rates, before the insert."""
        pending = [(row, record) for row, record in zip(rows, records, strict=True)
                   if row.get("amount_home") is None and getattr(record, "amount", None) is not None]
        if not pending:
            return
        deal_currency = self._deal_currencies(conn, {record.opportunity_source_id for _, record in pending  # type: ignore[attr-defined]
                                                      if getattr(record, "currency", None) is None})
        rates = self._rates(conn)
        for row, record in pending:
            currency = record.currency or deal_currency.get(record.opportunity_source_id)  # type: ignore[attr-defined]
            rate = 1.0 if currency in (None, self.settings.home_currency) else _rate_on(rates, currency,
                                                                                        row.get("close_date"))
            row["amount_home"] = None if rate is None else record.amount / rate  # type: ignore[attr-defined]

    def _deal_currencies(self, conn: Connection, source_ids: set[str | None]) -> dict[str, str]:
        opportunity = cache_table("opportunity")
        wanted = [source_id for source_id in source_ids if source_id]
        found: dict[str, str] = {}
        for batch in _batches(wanted):
            found.update(conn.execute(select(opportunity.c.source_id, opportunity.c.currency).where(
                opportunity.c.connection == self.settings.connection,
                _in(opportunity.c.source_id, list(batch), self.dialect))).all())
        return found

    def _rates(self, conn: Connection) -> dict[str, list[tuple[date | None, date | None, float]]]:
        rate = cache_table("currency_rate")
        rates: dict[str, list[tuple[date | None, date | None, float]]] = {}
        # by id: the current rate is the first undated one
        for iso_code, start, end, value in conn.execute(select(rate.c.iso_code, rate.c.start_date, rate.c.end_date,
                                                               rate.c.rate).where(
                rate.c.connection == self.settings.connection).order_by(rate.c.id)):
            rates.setdefault(iso_code, []).append((start, end, value))
        return rates

    def _contract_owners(self, conn: Connection, records: Sequence[CrmRecord]) -> None:
        """Contracts keep no owner source id: resolve the record's owner now, else the account's owner."""
        rows = [{"connection": self.settings.connection, "sid": r.source_id,
                 "owner": getattr(r, "owner_source_id", None)} for r in records]
        conn.execute(text(
            "UPDATE contract SET owner_rep_id = COALESCE((SELECT u.rep_id FROM crm_user u WHERE "
            "u.connection = :connection AND u.source_id = :owner), (SELECT a.owner_rep_id FROM account a "
            "WHERE a.id = contract.account_id)) WHERE connection = :connection AND source_id = :sid"), rows)

    # -- contracts from deals ------------------------------------------------------------------------------

    def _derive_contracts(self, conn: Connection, table_name: str, records: Sequence[CrmRecord]) -> None:
        """A won deal with recurring line items starts a contract (the KPI catalog's definition): from its close
        date, for the longest recurring term, worth the recurring lines' monthly value.  A deal the CRM gives a
        contract of its own keeps that one alone; a deal no longer won (or no longer recurring) loses it.

        ``records`` are the deals or the line items just written.  Of a page of deals only the won, live ones
        with a close date are looked up with their lines (a third of a page in the benchmark's world: each lookup
        reads the deal's lines); the others can only lose a contract."""
        if table_name == "opportunity":
            deals = [record.source_id for record in records]
            candidates = [record.source_id for record in records if getattr(record, "is_won", False)
                          and not getattr(record, "is_deleted", False) and getattr(record, "close_date", None)]
        else:
            deals = candidates = sorted({source_id for record in records
                                         if (source_id := getattr(record, "opportunity_source_id", None))})
        if not deals:
            return
        found = self._recurring_deals(conn, candidates) if candidates else []
        rows = [self._derived_contract(deal, lines) for deal, lines in found]
        if rows:
            conn.execute(self._build_upsert(cache_table("contract"), tuple(rows[0]), ("connection", "source_id")),
                         rows)
        kept = {row["source_id"] for row in rows}
        gone = [f"deal:{deal}" for deal in deals if f"deal:{deal}" not in kept]
        if gone:
            contract = cache_table("contract")
            conn.execute(contract.delete().where(contract.c.connection == self.settings.connection,
                                                 contract.c.derived_from == "deal",
                                                 _in(contract.c.source_id, gone, self.dialect)))

    def _recurring_deals(self, conn: Connection, deals: Sequence[str]) -> list[tuple[Any, list[Any]]]:
        """The won, live deals among ``deals`` with their live recurring lines.  Selected by source id alone
        and filtered here: given ``is_won = TRUE`` too, SQLite walks the (is_won, close_date) index over every
        won deal in the cache for each page — a load that slows as it grows."""
        opportunity = cache_table("opportunity")
        sql = _RECURRING_DEALS if self._crm_contracts_link_deals(conn) else _RECURRING_DEALS.replace(_CRM_CONTRACT, "")
        query = _ids_text(sql, self.dialect).columns(
            close_date=opportunity.c.close_date.type, last_modified_at=opportunity.c.last_modified_at.type,
            is_won=opportunity.c.is_won.type, is_deleted=opportunity.c.is_deleted.type,
            line_deleted=opportunity.c.is_deleted.type)
        found: dict[int, tuple[Any, list[Any]]] = {}
        for batch in _batches(list(deals)):
            for row in conn.execute(query, {"connection": self.settings.connection, "ids": list(batch)}):
                if row.is_won and not row.is_deleted and row.close_date is not None and not row.line_deleted:
                    found.setdefault(row.id, (row, []))[1].append(row)
        return list(found.values())

    def _derived_contract(self, deal: Any, lines: Sequence[Any]) -> dict[str, Any]:
        start = deal.close_date if isinstance(deal.close_date, date) else date.fromisoformat(str(deal.close_date))
        term = max(int(line.recurring_term_months) for line in lines)
        monthly = sum(float(line.monthly_value_home or 0.0) for line in lines)
        return {"connection": self.settings.connection, "source_id": f"deal:{deal.source_id}",
                "account_source_id": deal.account_source_id, "account_id": deal.account_id,
                "opportunity_source_id": deal.source_id, "opportunity_id": deal.id, "owner_rep_id": deal.owner_rep_id,
                "start_date": start, "end_date": _add_months(start, term) - timedelta(days=1),
                "term_months": term, "monthly_value_home": monthly, "status": "Activated",
                "derived_from": "deal", "last_modified_at": deal.last_modified_at, "is_deleted": False}

    def _crm_contracts_link_deals(self, conn: Connection) -> bool:
        """Whether any contract of the CRM names its deal (Salesforce's standard Contract does not): asked
        once per run, since without an index on ``contract.opportunity_id`` the check costs a scan a deal.
        The condition is spelled as the partial index's (``ix_contract_crm_names_deal``), literal included:
        a database uses a partial index only for a WHERE it can prove implies the index's."""
        if self._contracts_link_deals is None:
            self._contracts_link_deals = conn.execute(text(
                f"SELECT 1 FROM contract WHERE connection = :connection AND {CRM_CONTRACT_NAMES_DEAL} LIMIT 1"),
                {"connection": self.settings.connection}).first() is not None
        return self._contracts_link_deals

    def _drop_contracts_the_crm_replaces(self, conn: Connection, records: Sequence[CrmRecord]) -> None:
        deals = sorted({source_id for record in records
                        if (source_id := getattr(record, "opportunity_source_id", None)) is not None
                        and getattr(record, "derived_from", "crm") != "deal"})
        if deals:
            self._contracts_link_deals = True
        contract = cache_table("contract")
        for batch in _batches(deals):
            conn.execute(contract.delete().where(contract.c.connection == self.settings.connection,
                                                 contract.c.derived_from == "deal",
                                                 _in(contract.c.opportunity_source_id, list(batch), self.dialect)))

    # -- leads and their activities ----------------------------------------------------------------------

    def link_moved_activities(self, conn: Connection) -> None:
        """Activities on a contact whose lead converted after they were created are the lead's too
        (Salesforce moves a lead's activities to its contact on conversion).  Once per run, for the activities
        this run wrote (a lead written is linked to its activities with its page): an incremental run looks
        up its few thousand ids instead of joining every converted lead's activities (0.26 s of a 4 s run at
        100k deals, ten times that at 1M).  A run that wrote more than ``LINK_BY_ID_MAX`` activities (a first
        load), or whose end-of-run key pass gave a lead or an activity its contact only now, links the whole
        table in one statement."""
        differs = "IS DISTINCT FROM" if self.dialect == "postgresql" else "IS NOT"
        update = "UPDATE activity SET lead_id = l.id, lead_source_id = l.source_id FROM lead l"
        moved = ("AND l.connection = :connection AND activity.contact_id = l.converted_contact_id "
                 "AND l.converted_at IS NOT NULL AND activity.created_at <= l.converted_at "
                 f"AND activity.lead_source_id IS NULL AND activity.lead_id {differs} l.id")
        written, self._activities_written = self._activities_written, []
        if written is None or self._contacts_resolved_late:
            self.without_jit(conn)
            conn.execute(text(f"{update} WHERE activity.connection = :connection {moved}"),
                         {"connection": self.settings.connection})
        elif written:
            self._run_for_ids(conn, self._page_sql(update, "activity", moved), list(dict.fromkeys(written)))
        self._contacts_resolved_late = False

    def _link_activities_of_converted_leads(self, conn: Connection, source_ids: Sequence[str]) -> None:
        statement = text(
            "UPDATE activity SET lead_source_id = (SELECT l.source_id FROM lead l WHERE l.id = :lead_id), "
            "lead_id = :lead_id WHERE contact_id = :contact_id AND lead_source_id IS NULL "
            "AND created_at <= :converted_at"
        ).bindparams(bindparam("converted_at", type_=cache_table("lead").c.converted_at.type))
        lead = cache_table("lead")
        for batch in _batches(list(source_ids)):
            found = conn.execute(
                lead.select().with_only_columns(lead.c.id, lead.c.converted_contact_id, lead.c.converted_at)
                .where(lead.c.connection == self.settings.connection, _in(lead.c.source_id, list(batch), self.dialect),
                       lead.c.converted_contact_id.is_not(None), lead.c.converted_at.is_not(None))
            ).all()
            rows = [{"lead_id": row[0], "contact_id": row[1], "converted_at": row[2]} for row in found]
            if rows:
                conn.execute(statement, rows)

    # -- deletes and quarantine --------------------------------------------------------------------------

    def mark_deleted(self, conn: Connection, table_name: str, source_ids: Sequence[str]) -> int:
        """Mark rows deleted in the CRM (purged at the end of the run); tables without ``is_deleted``
        (teams, stages, users...) lose the rows at once.  Returns how many rows matched."""
        has_flag = "is_deleted" in cache_table(table_name).columns
        self.without_jit(conn)
        total = 0
        for batch in _batches(list(dict.fromkeys(source_ids))):
            params = {"connection": self.settings.connection, "ids": list(batch)}
            if has_flag:
                statement = self._page_sql(f"UPDATE {table_name} SET is_deleted = TRUE", table_name)
                total += conn.execute(statement, params).rowcount
            else:
                doomed = (f"SELECT d.id FROM {table_name} d WHERE d.connection = :connection "
                          "AND d.source_id IN :ids")
                total += self._remove(conn, table_name, doomed, params, expanding=True)
        return total

    def purge_deleted(self, conn: Connection, table_names: Iterable[str]) -> int:
        """Delete the rows marked deleted, so what the CRM deleted or erased is not kept forever."""
        self.without_jit(conn)
        purged = 0
        params = {"connection": self.settings.connection}
        for table_name in table_names:
            if table_name not in MARKED_DELETED_TABLES:
                continue
            # found through the index of marked rows (agent.models: its condition is DELETED_MARK)
            doomed = f"SELECT d.id FROM {table_name} d WHERE d.connection = :connection AND d.{DELETED_MARK}"
            if conn.execute(text(f"{doomed} LIMIT 1"), params).first() is None:
                continue  # the usual run: nothing deleted since the last, and no child table to scan for it
            purged += self._remove(conn, table_name, doomed, params)
        return purged

    def _remove(self, conn: Connection, table_name: str, doomed: str, params: Mapping[str, Any], *,
                expanding: bool = False) -> int:
        """Delete the rows ``doomed`` selects; references to them become NULL (the ``*_source_id`` stays),
        and rows that cannot exist without them (a pipeline snapshot of an erased deal) go too."""

        def run(sql: str) -> int:
            statement = _ids_text(sql, self.dialect) if expanding else text(sql)
            return conn.execute(statement, dict(params)).rowcount

        for child, column in _children_of(table_name):
            if column.nullable:
                run(f"UPDATE {child} SET {column.name} = NULL WHERE {column.name} IN ({doomed})")
            else:
                run(f"DELETE FROM {child} WHERE {column.name} IN ({doomed})")
        return run(f"DELETE FROM {table_name} WHERE id IN ({doomed})")

    def quarantine(self, conn: Connection, object_name: str, items: Sequence[QuarantinedItem], now: datetime) -> int:
        rows = {}
        for item in items:
            payload = json.dumps(item.payload, default=str, sort_keys=True)
            source_id = item.source_id or "(no id) " + hashlib.sha1(payload.encode()).hexdigest()[:16]
            rows[source_id] = {"connection": self.settings.connection, "object": object_name,
                               "source_id": source_id[:100], "reason": item.reason, "payload": payload,
                               "first_seen_at": now, "last_seen_at": now}
        table = cache_table("quarantined_record")
        insert = _dialect_insert(self.dialect)(table)
        statement = insert.on_conflict_do_update(
            index_elements=["connection", "object", "source_id"],
            set_={"reason": insert.excluded["reason"], "payload": insert.excluded["payload"],
                  "last_seen_at": insert.excluded["last_seen_at"]})
        conn.execute(statement, list(rows.values()))
        self._may_hold_quarantined[object_name] = True
        return len(rows)

    def release_quarantined(self, conn: Connection, object_name: str, source_ids: Sequence[str]) -> None:
        """A record that lands after being quarantined is no longer a problem."""
        table = cache_table("quarantined_record")
        if object_name not in self._may_hold_quarantined:
            # Asked once per object and run: most objects never have a quarantined record, and a DELETE per
            # page for nothing adds up on a big load.  The lease keeps other writers off this object.
            held = conn.execute(select(table.c.id).where(table.c.connection == self.settings.connection,
                                                         table.c.object == object_name).limit(1)).first()
            self._may_hold_quarantined[object_name] = held is not None
        if not self._may_hold_quarantined[object_name]:
            return
        for batch in _batches(list(source_ids)):
            conn.execute(table.delete().where(table.c.connection == self.settings.connection,
                                              table.c.object == object_name,
                                              _in(table.c.source_id, list(batch), self.dialect)))


_DERIVED_ON_ROW = {
    "opportunity": CacheWriter._derive_opportunity,
    "line_item": CacheWriter._derive_line_item,
}

_CLOSED_STAGE_ENTRY = (
    "(SELECT MAX(h.entered_at) FROM stage_history h JOIN stage s ON s.id = h.stage_id "
    "WHERE h.opportunity_id = opportunity.id AND s.is_closed = TRUE)"
)

def _table_rank(name: str) -> int:
    return TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER)


def _unnest_upsert(table_name: str, columns: Sequence[str], references: Sequence[Reference], *,
                   lookups: bool = False) -> str:
    """The PostgreSQL upsert of one batch given as arrays; each key from its parent by a join, or with
    ``lookups`` kept from the stored row where its CRM id is unchanged and otherwise from a subquery per row
    (a probe of the parent's unique key, which the planner cannot turn into a scan of the whole parent).
    Owners are always joined (see ``CacheWriter._upsert_arrays``)."""
    table = cache_table(table_name)
    arrays = ", ".join(f"%(c{index})s::{_pg_array_type(table.c[name])}" for index, name in enumerate(columns))
    targets = [*columns, *(ref.id_column for ref in references)]
    joined = [ref for ref in references if not lookups or ref.parent == "crm_user"]
    joins = " ".join(f"LEFT JOIN {ref.parent} p{index} ON p{index}.connection = u.connection "
                     f"AND p{index}.source_id = u.{ref.source_column}" for index, ref in enumerate(joined))
    keys_joined = {ref: f"p{index}.{ref.parent_key}" for index, ref in enumerate(joined)}
    if lookups:
        joins = (f"LEFT JOIN {table_name} t ON t.connection = u.connection AND t.source_id = u.source_id "
                 + joins)
    keys = [keys_joined.get(ref) or _kept_or_looked_up(ref) for ref in references]
    picks = ", ".join([f"u.{name}" for name in columns] + keys)
    return (f"INSERT INTO {table_name} ({', '.join(targets)}) SELECT {picks} FROM unnest({arrays}) "
            f"AS u({', '.join(columns)}) {joins} ON CONFLICT (connection, source_id) "
            f"{_update_if_changed(table_name, targets, 'postgresql')}")


def _kept_or_looked_up(ref: Reference) -> str:
    """The row's stored key (``t``) where its CRM id is unchanged and the key resolved, else the parent's."""
    return (f"CASE WHEN t.{ref.id_column} IS NOT NULL AND t.{ref.source_column} = u.{ref.source_column} "
            f"THEN t.{ref.id_column} ELSE {_lookup('u', ref)} END")


def _update_if_changed(table_name: str, targets: Sequence[str], dialect: str, *, unchanged: Sequence[str] = ()) -> str:
    """``DO UPDATE`` of a row that exists, only where a value differs: a record read again unchanged (each
    run's overlap re-reads the last minutes' records) is not rewritten, which on PostgreSQL would cost a new
    row version and, off a HOT update, an entry in every index.  The ``unchanged`` columns are not set, and
    a row where one of them differs is left alone."""
    names = [name for name in _updatable(targets) if name not in unchanged]
    differs, equal = ("IS DISTINCT FROM", "IS NOT DISTINCT FROM") if dialect == "postgresql" else ("IS NOT", "IS")
    updates = ", ".join(f"{name} = excluded.{name}" for name in names)
    changed = " OR ".join(f"{table_name}.{name} {differs} excluded.{name}" for name in names)
    same = "".join(f"{table_name}.{name} {equal} excluded.{name} AND " for name in unchanged)
    return f"DO UPDATE SET {updates} WHERE {same}({changed})"


def _updatable(targets: Sequence[str]) -> list[str]:
    return [name for name in targets if name not in ("id", "connection", "source_id")]


def _rows_not_written(conn: Connection, statement: str, rows: list[tuple[Any, ...]],
                      parameters: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``statement`` run row by row on the driver's cursor with ``parameters(row)``, and the rows it changed
    nothing for.  A call per row costs about 1.5 µs more than one executemany (whose rowcount is only the
    batch's total)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        execute = cursor.execute
        return [row for row in rows if execute(statement, parameters(row)).rowcount == 0]
    finally:
        cursor.close()


@dataclass(frozen=True)
class _InPlaceUpdate:
    sql: str
    parameters: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    """The statement's parameters from a row of ``_upsert_rows`` (its columns' values, in order, first)."""


def _sqlite_update_in_place(table_name: str, columns: Sequence[str],
                            references: Sequence[Reference]) -> _InPlaceUpdate | None:
    """An UPDATE, by the row's unique key, of the columns no index reads, where every indexed value is as
    stored and another differs: the usual change past a first load, written without a parent search.

    A resolved key is right while its CRM id is unchanged: a row's id never changes, and purging a parent
    sets its children's keys to NULL.  So "CRM id equal and key resolved" stands in for "key equal"; a key
    left NULL is right while its parent is still absent (a product not synced, a deal filtered out), and
    only such a key costs a search.  Not for an owner, whose key is the crm_user's ``rep_id`` (a changed
    e-mail moves it): that one is looked up, and users are few.  ``None`` when every updatable column is
    indexed."""
    indexed = _indexed_columns(table_name)
    names = _updatable(columns)
    free = [name for name in names if name not in indexed]
    if not free:
        return None
    position = {name: index for index, name in enumerate(columns)}
    keyed = [name for name in names if name in indexed]
    keyed += [ref.source_column for ref in references if ref.source_column not in keyed]
    conditions = ["connection = ?", "source_id = ?", *(f"{name} IS ?" for name in keyed)]
    picks = [position[name] for name in (*free, "connection", "source_id", *keyed)]
    for ref in references:
        if ref.parent == "crm_user":
            conditions.append(f"{ref.id_column} IS {_parent_search(ref, f'p.{ref.parent_key}')}")
            picks += [position["connection"], position[ref.source_column]]
        else:  # resolved, nothing to resolve, or still nothing to resolve it to (searched only then)
            conditions.append(f"({ref.id_column} IS NOT NULL OR {ref.source_column} IS NULL OR NOT EXISTS "
                              f"{_parent_search(ref, '1')})")
            picks += [position["connection"], position[ref.source_column]]
    conditions.append("(" + " OR ".join(f"{name} IS NOT ?" for name in free) + ")")
    picks += [position[name] for name in free]
    sql = (f"UPDATE {table_name} SET {', '.join(f'{name} = ?' for name in free)} "
           f"WHERE {' AND '.join(conditions)}")
    return _InPlaceUpdate(sql, itemgetter(*picks))


def _sqlite_update_leaving_indexes(table_name: str, targets: Sequence[str], insert: str) -> str | None:
    """The upsert for the usual change, which touches no indexed value: it sets only the columns no index
    reads, and only on rows whose indexed values are all equal.

    SQLite rewrites the entries of every index that reads a column named in ``SET``, changed or not: an
    activity whose subject changed cost a random leaf page in each of its six indexes, about three quarters
    of an incremental run's pages.  ``None`` when the table has no such split."""
    names = _updatable(targets)
    keyed = [name for name in names if name in _indexed_columns(table_name)]
    if not keyed or len(keyed) == len(names):
        return None
    return insert + _update_if_changed(table_name, targets, "sqlite", unchanged=keyed)


@cache
def _indexed_columns(table_name: str) -> frozenset[str]:
    """The columns some index of ``table_name`` reads: its key columns and those of a partial index's
    condition (SQLite maintains a partial index when a column of its condition is set), and those of its
    unique constraints (which SQLite keeps as indexes)."""
    table = cache_table(table_name)
    found = {column.name for constraint in table.constraints if isinstance(constraint, UniqueConstraint)
             for column in constraint.columns}
    for index in table.indexes:
        found.update(column.name for column in index.columns)
        condition = index.dialect_options["sqlite"].get("where")
        if condition is not None:
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(condition)))
            found.update(column.name for column in table.columns if column.name in words)
    return frozenset(found)


def _parent_search(ref: Reference, picked: str) -> str:
    """``picked`` from the parent whose (connection, source_id) are the next two parameters."""
    return f"(SELECT {picked} FROM {ref.parent} p WHERE p.connection = ? AND p.source_id = ?)"


def _lookup(table_name: str, ref: Reference) -> str:
    return (f"(SELECT p.{ref.parent_key} FROM {ref.parent} p WHERE p.connection = {table_name}.connection "
            f"AND p.source_id = {table_name}.{ref.source_column})")


def _in_page(statement: str, table_name: str, extra: str = "", dialect: str = "sqlite") -> Any:
    """``statement`` limited to the rows of one connection whose source_id is in ``:ids``."""
    sql = f"{statement} WHERE {table_name}.connection = :connection AND {table_name}.source_id IN :ids {extra}"
    return _ids_text(sql, dialect)


def _ids_text(sql: str, dialect: str) -> Any:
    """``IN :ids`` as one parameter whose statement text never changes, whatever the number of ids.

    PostgreSQL gets one array (``= ANY``): prepared once, planned with its indexes (a list of 2,000
    parameters is costly to parse and, on a fresh table, planned as a scan).  SQLite gets one JSON array
    read by ``json_each``: one parameter per id would make a new statement text for every batch length, and
    the driver's statement cache (128 per connection) would keep each of those big programs, about 36 MB
    held through a 100k-deal load."""
    if dialect == "postgresql":
        return text(sql.replace("IN :ids", "= ANY(CAST(:ids AS VARCHAR[]))"))
    return text(sql.replace("IN :ids", "IN (SELECT value FROM json_each(:ids))")).bindparams(
        bindparam("ids", type_=_JsonArray()))


def _in(column: Any, values: list[Any], dialect: str) -> Any:
    """``column IN values`` for Core selects, as ``_ids_text`` does it."""
    if dialect == "postgresql":
        from sqlalchemy import any_
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))

    rows = func.json_each(bindparam(None, values, type_=_JsonArray())).table_valued("value")
    return column.in_(select(rows.c.value))


class _JsonArray(TypeDecorator[list[Any]]):
    """A list bound as one JSON text (SQLite's ``json_each`` reads it back as rows)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Sequence[Any] | None, dialect: Any) -> str | None:
        return None if value is None else json.dumps(list(value))


_CRM_CONTRACT = "AND NOT EXISTS (SELECT 1 FROM contract c WHERE c.opportunity_id = o.id AND c.derived_from <> 'deal') "
_RECURRING_DEALS = (
    "SELECT o.id, o.source_id, o.account_source_id, o.account_id, o.owner_rep_id, o.close_date, o.last_modified_at, "
    "o.is_won, o.is_deleted, li.recurring_term_months, li.monthly_value_home, li.is_deleted AS line_deleted "
    "FROM opportunity o JOIN line_item li ON li.opportunity_id = o.id "
    "WHERE o.connection = :connection AND o.source_id IN :ids AND li.recurring_term_months > 0 "
    f"{_CRM_CONTRACT}"
)
# A boolean test no index can serve: page-scoped statements must reach their rows through (connection,
# source_id), not walk a (flag, date) index over the whole table.
_NO_INDEX = "({} OR FALSE) = TRUE"


def _add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has fewer days)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - timedelta(days=1)).day))


def _statistics_current(conn: Connection, table_name: str, changed_share: float = 9.0) -> bool:
    """Whether PostgreSQL's statistics of ``table_name`` are good enough: analysed, and changed since by at
    most ``50 + changed_share × the rows it had then``.

    The default (9: analysed when the table held a tenth of what it holds now) is what the statements of a
    page need: the guard is against a plan made for an empty table (nested loops over sequential scans), and
    an incremental run that re-analysed every big table it touched spent seconds on it at 100k deals.  0.1
    is autovacuum's own threshold (``autovacuum_analyze_scale_factor``), for the end of a run.

    "Analysed" is also read off ``pg_stats``: the activity counters (``last_analyze``) are reset by a crash,
    by ``pg_stat_reset()`` and in a database copied from a template, while the statistics themselves stay."""
    current = conn.exec_driver_sql(
        "SELECT (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL OR EXISTS ("
        "SELECT 1 FROM pg_stats p WHERE p.schemaname = s.schemaname AND p.tablename = s.relname)) "
        "AND s.n_mod_since_analyze <= 50 + %(share)s * greatest(c.reltuples, 0) "
        "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.relid = to_regclass(%(name)s)", {"name": table_name, "share": changed_share}).scalar()
    return bool(current)


def _order_of_magnitude(count: int) -> int:
    return len(str(count)) if count >= 1000 else 0


def _list_total(row: Mapping[str, Any]) -> float | None:
    """A line's total at list price (list price × quantity), where both are known."""
    if row["list_price"] is None or row["quantity"] is None:
        return None
    return float(row["list_price"] * row["quantity"])


def _rate_on(rates: Mapping[str, list[tuple[date | None, date | None, float]]], currency: str,
             on: date | None) -> float | None:
    """Units of ``currency`` per home unit on ``on``: the dated rate covering the day (the latest to start),
    else the current (undated) one; ``None`` where there is none or it is 0."""
    candidates = rates.get(currency, [])
    if on is not None:
        dated = [(start, value) for start, end, value in candidates
                 if start is not None and start <= on and (end is None or end > on)]
        if dated:
            return max(dated)[1] or None
    current = [value for start, _, value in candidates if start is None]
    return current[0] or None if current else None


def _coalesce(first: Any, second: Any) -> Any:
    return func.coalesce(first, second)


def _longest(column: list[Any]) -> int:
    try:
        return max(map(len, filter(None, column)), default=0)
    except TypeError:  # a value that is not text: measure the text ones only
        return max((len(value) for value in column if isinstance(value, str)), default=0)


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite (``UTCDateTime``: UTC, no offset, microseconds)."""
    if isinstance(value, datetime):
        if value.tzinfo is not UTC:  # records carry UTC: converting a UTC instant was half of this call
            if value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: records carry aware UTC instants")
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _pg_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pg_bool(value: Any) -> str:
    return "t" if value else "f"


def _pg_iso(value: date) -> str:
    return value.isoformat()


_PG_ARRAY_ELEMENT_FORMATS: dict[str, Any] = {"text": _pg_quoted, "bool": _pg_bool, "iso": _pg_iso, "number": str}


def pg_array_literal(kind: str, values: Sequence[Any]) -> str:
    """``values`` as one PostgreSQL array literal (``{"a","b\"c",NULL}``) for a cast to the column's array
    type.  Every text element is double-quoted, so commas, braces, blanks and the word NULL stay data; within
    the quotes only the backslash and the double quote are escaped (PostgreSQL's array syntax).  ``str`` of a
    float is its shortest exact form, and ``inf``/``nan`` are PostgreSQL's spellings too."""
    form = _PG_ARRAY_ELEMENT_FORMATS[kind]
    return "{" + ",".join(["NULL" if value is None else form(value) for value in values]) + "}"


@cache
def _value_kind(table_name: str, column_name: str) -> str:
    """What the column holds, for how its values are written: ``text``, ``bool``, ``iso`` (dates and
    instants: PostgreSQL's array literal spells them with ``isoformat``, which keeps an aware instant's
    offset; SQLite stores them as ``_sqlite_value`` text) or ``number``."""
    column_type = cache_table(table_name).c[column_name].type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, Date | DateTime):
        return "iso"
    if isinstance(column_type, Integer | Float | Numeric):
        return "number"
    return "text"


@cache
def _pg_array_type(column: Column[Any]) -> str:
    from sqlalchemy.dialects import postgresql

    return column.type.compile(dialect=postgresql.dialect()) + "[]"


def _dialect_insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


@cache
def _children_of(table_name: str) -> tuple[tuple[str, Column[Any]], ...]:
    children = []
    for table in SQLModel.metadata.tables.values():
        for column in table.columns:
            for foreign_key in column.foreign_keys:
                if foreign_key.column.table.name == table_name:
                    children.append((table.name, column))
    return tuple(children)
