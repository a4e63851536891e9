"""Pipeline snapshots: the open pipeline as it stood at an instant, kept by the agent.

CRMs keep a deal's current state and (partly) its stage history, not what the whole pipeline looked
like on the first of last month.  The engine snapshots it at every period boundary; a snapshot taken
later than that is rebuilt from stage history (``rebuilt = True``) and is refreshed while its period is
still being recomputed, whereas a live one is kept as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Date, Float, Integer, MetaData, Table, delete, exists, func, insert, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable, DropTable
from sqlmodel.sql.sqltypes import UTCDateTime

from agent.kpi.sources import SNAPSHOT, rebuilt_pipeline


def snapshot_status(connection: Connection, instants: Sequence[datetime]) -> dict[datetime, bool]:
    """For each instant that has a snapshot: whether it was rebuilt (True) or taken live (False)."""
    if not instants:
        return {}
    rows = connection.execute(
        select(SNAPSHOT.c.taken_for, func.count(), func.sum(SNAPSHOT.c.rebuilt.cast(Integer)))
        .where(SNAPSHOT.c.taken_for.in_(list(instants)))
        .group_by(SNAPSHOT.c.taken_for)
    ).all()
    return {_aware(row[0]): bool(row[2]) for row in rows}


STATE_COLUMNS = ("opportunity_id", "owner_rep_id", "stage_id", "amount_home", "probability", "close_date")
FRESH = Table(
    "fresh_pipeline_snapshot",
    MetaData(),
    Column("opportunity_id", Integer, primary_key=True),  # the lookup key of the two anti-joins
    Column("owner_rep_id", Integer),
    Column("stage_id", Integer),
    Column("amount_home", Float),
    Column("probability", Float),
    Column("close_date", Date),
    prefixes=["TEMPORARY"],
)
"""The rebuilt state before it replaces a stored snapshot (a temporary table of the connection)."""


def snapshot_pipeline(connection: Connection, instant: datetime, now: datetime, *, rebuilt: bool) -> int:
    """Replace the snapshot at ``instant`` with the open pipeline as stage history says it stood then.

    A snapshot already stored is refreshed by difference: only deals whose state changed (or that
    entered or left the open pipeline) are deleted and written again, so a refresh in which little
    changed writes little (PostgreSQL checks the deal's foreign key and both indexes for every row
    written, more than rebuilding the state costs).  Returns the rows written."""
    at = literal(instant, UTCDateTime())
    frm, state, where = rebuilt_pipeline(None, at)
    values = (
        state.opportunity_id, state.owner_rep_id, state.stage_id, state.amount, state.probability, state.close_date
    )
    fresh = (
        select(*[value.label(name) for name, value in zip(STATE_COLUMNS, values, strict=True)])
        .select_from(frm)
        .where(where)
    )
    stamps = {"taken_for": at, "taken_at": literal(now, UTCDateTime()), "rebuilt": literal(rebuilt)}
    stored = connection.execute(select(SNAPSHOT.c.id).where(SNAPSHOT.c.taken_for == instant).limit(1)).first()
    if stored is None:
        return _insert_state(connection, fresh.subquery("fresh"), stamps)
    connection.execute(DropTable(FRESH, if_exists=True))
    connection.execute(CreateTable(FRESH))
    try:
        connection.execute(insert(FRESH).from_select(list(STATE_COLUMNS), fresh))
        # Equality on the deal (PostgreSQL hashes it), null-safe equality on its state.
        same = [FRESH.c.opportunity_id == SNAPSHOT.c.opportunity_id]
        same += [FRESH.c[name].is_not_distinct_from(SNAPSHOT.c[name]) for name in STATE_COLUMNS[1:]]
        connection.execute(
            delete(SNAPSHOT).where(
                SNAPSHOT.c.taken_for == instant, ~exists(select(FRESH.c.opportunity_id).where(*same))
            )
        )
        kept = select(SNAPSHOT.c.id).where(
            SNAPSHOT.c.taken_for == instant, SNAPSHOT.c.opportunity_id == FRESH.c.opportunity_id
        )
        changed = select(*[FRESH.c[name] for name in STATE_COLUMNS]).where(~exists(kept)).subquery("changed")
        return _insert_state(connection, changed, stamps)
    finally:
        connection.execute(DropTable(FRESH, if_exists=True))


def _insert_state(connection: Connection, rows: Any, stamps: dict[str, Any]) -> int:
    query = select(*stamps.values(), *[rows.c[name] for name in STATE_COLUMNS])
    result = connection.execute(insert(SNAPSHOT).from_select([*stamps, *STATE_COLUMNS], query))
    return result.rowcount or 0


def _aware(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
