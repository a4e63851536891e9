"""Config-held reference data written into the cache: teams and their members, quotas, costs.

Everything is rewritten in one transaction, so the KPI queries always see one consistent version of
the config.  Reps are known by email: a rep the CRMs have not shown yet is created, and the sync links
CRM users to it by the same email later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from agent.kpi.periods import shift
from agent.models import Cost, Quota, Rep, Team

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.db import Database

CONFIG_CONNECTION = "config"
TEAM, REP, QUOTA, COST = Team.__table__, Rep.__table__, Quota.__table__, Cost.__table__


class ReferenceDataError(ValueError):
    """Config data that cannot be written as it is (e.g. two quotas for one rep and period)."""


@dataclass(frozen=True)
class ReferenceCounts:
    teams: int
    reps_assigned: int
    quotas: int
    costs: int


def load_reference_data(db: Database, config: AgentConfig) -> ReferenceCounts:
    """Write ``[teams]``, ``[[quotas]]`` and ``[[costs]]`` into the cache, replacing what config wrote before."""
    with db.write_connection() as connection:
        team_ids = _write_teams(connection, config)
        assigned = _assign_members(connection, config, team_ids)
        quotas = _write_quotas(connection, config, team_ids)
        costs = _write_costs(connection, config, team_ids)
        _drop_removed_teams(connection, set(team_ids.values()))
    return ReferenceCounts(len(team_ids), assigned, quotas, costs)


def rep_id(connection: Connection, email: str) -> int:
    """The rep with this email, created when the CRMs have not shown it yet."""
    email = email.strip().lower()
    found = connection.execute(select(REP.c.id).where(func.lower(REP.c.email) == email)).scalar()
    if found is not None:
        return int(found)
    name = email.split("@")[0]
    return int(connection.execute(insert(REP).values(email=email, name=name, active=True)).inserted_primary_key[0])


def _write_teams(connection: Connection, config: AgentConfig) -> dict[str, int]:
    ids: dict[str, int] = {}
    for key, team in config.teams.items():
        values = {"name": team.name, "region": team.region}
        found = connection.execute(
            select(TEAM.c.id).where(TEAM.c.connection == CONFIG_CONNECTION, TEAM.c.source_id == key)
        ).scalar()
        if found is None:
            found = connection.execute(
                insert(TEAM).values(connection=CONFIG_CONNECTION, source_id=key, **values)
            ).inserted_primary_key[0]
        else:
            connection.execute(update(TEAM).where(TEAM.c.id == found).values(**values))
        ids[key] = int(found)
        if team.manager:
            connection.execute(
                update(TEAM).where(TEAM.c.id == found).values(manager_rep_id=rep_id(connection, team.manager))
            )
    return ids


def _assign_members(connection: Connection, config: AgentConfig, team_ids: dict[str, int]) -> int:
    """Membership is the current one: a rep listed in a config team belongs to it now; a rep who left
    every config team leaves its old one."""
    config_teams = select(TEAM.c.id).where(TEAM.c.connection == CONFIG_CONNECTION).scalar_subquery()
    connection.execute(update(REP).where(REP.c.team_id.in_(config_teams)).values(team_id=None))
    assigned = 0
    for key, team in config.teams.items():
        for member in team.members:
            connection.execute(update(REP).where(REP.c.id == rep_id(connection, member)).values(team_id=team_ids[key]))
            assigned += 1
    return assigned


def _write_quotas(connection: Connection, config: AgentConfig, team_ids: dict[str, int]) -> int:
    connection.execute(delete(QUOTA).where(QUOTA.c.source == CONFIG_CONNECTION))
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for index, item in enumerate(config.quotas):
        if item.rep is not None:
            kind, scope_id = "rep", str(rep_id(connection, item.rep))
        else:
            kind, scope_id = "team", str(team_ids[str(item.team)])
        end = shift(item.grain, item.start, 1)
        key = (item.kpi, kind, scope_id, item.start, end)
        if key in rows:
            who = item.rep or item.team
            raise ReferenceDataError(
                f"quotas[{index}]: a second {item.kpi} quota for {who} from {item.start}; keep one"
            )
        rows[key] = {
            "kpi": item.kpi,
            "scope_kind": kind,
            "scope_id": scope_id,
            "period_start": item.start,
            "period_end": end,
            "amount": item.amount,
            "source": CONFIG_CONNECTION,
        }
    if rows:
        connection.execute(insert(QUOTA), list(rows.values()))
    return len(rows)


def _write_costs(connection: Connection, config: AgentConfig, team_ids: dict[str, int]) -> int:
    connection.execute(delete(COST).where(COST.c.connection == CONFIG_CONNECTION))
    rows = [
        {
            "connection": CONFIG_CONNECTION,
            "source_id": f"{index}:{item.kind}:{item.team or ''}:{item.grain}:{item.start.isoformat()}",
            "kind": item.kind,
            "period_start": item.start,
            "period_end": shift(item.grain, item.start, 1),
            "team_id": team_ids[item.team] if item.team else None,
            "amount_home": item.amount,
        }
        for index, item in enumerate(config.costs)
    ]
    if rows:
        connection.execute(insert(COST), rows)
    return len(rows)


def _drop_removed_teams(connection: Connection, kept: set[int]) -> None:
    removed = [
        team_id
        for team_id in connection.execute(select(TEAM.c.id).where(TEAM.c.connection == CONFIG_CONNECTION)).scalars()
        if team_id not in kept
    ]
    if removed:
        connection.execute(update(REP).where(REP.c.team_id.in_(removed)).values(team_id=None))
        connection.execute(delete(TEAM).where(TEAM.c.id.in_(removed)))


__all__ = ["ReferenceCounts", "ReferenceDataError", "load_reference_data", "rep_id"]
