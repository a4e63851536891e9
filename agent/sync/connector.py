"""The connector contract: a connector is a source of pages, with an injected incremental cursor.

The sync engine (``agent/sync/engine.py``) owns the cursor: it reads the stored one, hands it to
``Connector.fetch``, and writes each page's records **and** the page's ``cursor`` in one transaction.  A
kill at any instant therefore resumes from the last committed page: nothing lost (the cursor never runs
ahead of the rows) and nothing doubled (rows are upserted by ``(connection, source_id)``).  Each run
re-reads ``overlap`` before the stamp, for rows the CRM committed late with an older stamp (dlt#2269).

Who does what:

- The **engine** applies the overlap: at the start of a steady-state run (``initial_load_done``) the cursor
  handed to ``fetch`` has ``stamp`` moved back by ``context.overlap`` and ``last_id`` cleared.  A connector
  must not subtract it again.
- The **connector** sets ``initial_load_started_at`` on its first first-load page (``context.now``), and on
  the page that completes the first load returns ``initial_load_done=True`` with ``stamp`` = that start
  minus the overlap (the engine fills it in if the connector leaves it ``None``).
- A page's cursor must cover only what the page (and earlier pages) delivered: a resumed run starts after it.
- ``Page.deleted_ids`` name rows of the object's cache table: ``ConnectorSpec.object_tables[object]``, or
  ``Page.table`` when given.  Declare ``object_tables``: without it the engine must guess the table from the
  record types it has seen, and id reconciliation (which finds hard deletes) is skipped for that object.
- **Threads**: the engine iterates ``fetch`` in a thread of its own, a page ahead of its writes, and begins
  the next object's ``fetch`` as soon as the current one's generator has finished (while its last pages
  are still being written).  The connector is never called by two threads at once, but not always by the
  same thread: keep no thread-local state between calls.

A connector is registered through the ``register_connectors`` hook as a :class:`ConnectorSpec`; the
built-in Salesforce and HubSpot connectors come through it exactly as a third-party one would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from agent.sync.records import CrmRecord, QuarantinedItem


@dataclass(frozen=True)
class Cursor:
    """Where one (connection, object) stands.

    Steady state: keyset on ``(stamp, last_id)`` — the next page asks for ``stamp = S and id > I`` then
    ``stamp > S``, so records sharing one stamp are neither skipped nor repeated.  First load: its own
    resumable position (``initial_last_id``, or a bulk job and locator); ``stamp`` is set only when the
    load completes, to its start minus the overlap.
    """

    stamp: datetime | None = None
    last_id: str | None = None
    initial_load_done: bool = False
    initial_load_started_at: datetime | None = None
    initial_last_id: str | None = None
    bulk_job_id: str | None = None
    bulk_locator: str | None = None


@dataclass(frozen=True)
class Page:
    """What one fetch step yields: records to upsert, ids deleted in the CRM, records quarantined, and
    the cursor that is committed together with them."""

    cursor: Cursor
    records: Sequence[CrmRecord] = ()
    deleted_ids: Sequence[str] = ()
    quarantined: Sequence[QuarantinedItem] = ()
    table: str | None = None
    """The cache table ``deleted_ids`` belong to, when it is not ``ConnectorSpec.object_tables[object]``."""
    expected_total: int | None = None
    """How many records the whole fetch should deliver, when the CRM says (progress bars show an ETA)."""


@dataclass(frozen=True)
class SyncContext:
    """What the engine tells a connector about this run."""

    connection: str
    home_currency: str
    timezone: str
    overlap: timedelta = timedelta(minutes=5)
    initial_lookback: timedelta = timedelta(days=730)
    full: bool = False
    now: datetime | None = None
    warn: Callable[[str], None] = print


@dataclass(frozen=True)
class Problem:
    """A preflight finding: what is wrong and how to fix it."""

    what: str
    fix: str


class Connector(Protocol):
    """One configured CRM connection."""

    def objects(self) -> Sequence[str]:
        """The objects this connector syncs, parents first (users before accounts before deals...)."""
        ...

    def fetch(self, object_name: str, cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        """Yield pages of ``object_name`` changed since ``cursor``; each page carries its new cursor."""
        ...

    def all_ids(self, object_name: str, context: SyncContext) -> Iterator[str]:
        """Every live id of ``object_name`` in the CRM, for the reconciliation that finds hard deletes."""
        ...

    def preflight(self) -> list[Problem]:
        """Log in and check scopes and field access (``config check --online``)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConnectorSpec:
    """A connector kind, as registered by a plugin: ``[connections.<name>] kind = "<kind>"`` selects it.

    ``factory(name, connection_config, context)`` builds the connector for one configured connection.
    ``object_tables`` maps each object to the cache table its records fill (``"Task": "activity"``); the
    engine needs it to apply deletes and to reconcile ids (several objects may fill one table).
    """

    kind: str
    title: str
    factory: Callable[[str, Any, SyncContext], Connector]
    objects: tuple[str, ...] = field(default=())
    object_tables: Mapping[str, str] = field(default_factory=dict)
