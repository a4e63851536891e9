"""Pipeline snapshots: the open pipeline as it stood at an instant, kept by the agent.

CRMs keep a deal's current state and (partly) its stage history, not what the whole pipeline looked
like on the first of last month.  The engine snapshots it at every period boundary; a snapshot taken
later than that is rebuilt from stage history (``rebuilt = True``) and is refreshed while its period is
still being recomputed, whereas a live one is kept as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Integer, delete, func, insert, literal, select
from sqlmodel.sql.sqltypes import UTCDateTime
from sqlalchemy.engine import Connection

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


def snapshot_pipeline(connection: Connection, instant: datetime, now: datetime, *, rebuilt: bool) -> int:
    """Replace the snapshot at ``instant`` with the open pipeline as stage history says it stood then."""
    connection.execute(delete(SNAPSHOT).where(SNAPSHOT.c.taken_for == instant))
    at = literal(instant, UTCDateTime())
    frm, state, where = rebuilt_pipeline(None, at)
    query = select(
        at,
        literal(now, UTCDateTime()),
        state.opportunity_id,
        state.owner_rep_id,
        state.stage_id,
        state.amount,
        state.probability,
        state.close_date,
        literal(rebuilt),
    ).select_from(frm).where(where)
    columns = [
        "taken_for",
        "taken_at",
        "opportunity_id",
        "owner_rep_id",
        "stage_id",
        "amount_home",
        "probability",
        "close_date",
        "rebuilt",
    ]
    result = connection.execute(insert(SNAPSHOT).from_select(columns, query))
    return result.rowcount or 0


def _aware(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
