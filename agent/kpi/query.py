"""Reading stored KPI values back, for ``kpi-agent kpis``, digests and goals."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, and_, cast, func, literal, or_, select

from agent.kpi.sources import REP
from agent.models import KpiValue, Period, Team

if TYPE_CHECKING:
    from agent.db import Database

KPI_VALUE = KpiValue.__table__
PERIOD = Period.__table__
TEAM = Team.__table__


class KpiQueryError(LookupError):
    """A team, rep or period that the cache does not know."""


@dataclass(frozen=True)
class KpiValueRow:
    """One stored value, as ``kpi-agent kpis --json`` prints it."""

    kpi: str
    grain: str
    period_start: date
    period_end: date
    scope_kind: str
    scope_id: str
    scope_name: str
    dimension: str
    dimension_value: str
    value: float | None
    numerator: float | None
    denominator: float | None
    status: str
    error: str | None

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["period_start"], row["period_end"] = self.period_start.isoformat(), self.period_end.isoformat()
        return row


def _period_at(db: Database, grain: str, at: date | datetime | None) -> date:
    """The start of the stored ``grain`` period containing ``at`` (a local date; default: now)."""
    if isinstance(at, datetime) or at is None:
        instant = (at if at.tzinfo else at.replace(tzinfo=UTC)) if at else datetime.now(UTC)
        condition = and_(PERIOD.c.start_utc <= instant, PERIOD.c.end_utc > instant)
    else:
        condition = and_(PERIOD.c.start_date <= at, PERIOD.c.end_date > at)
    with db.engine.connect() as connection:
        start = connection.execute(select(PERIOD.c.start_date).where(PERIOD.c.grain == grain, condition)).scalar()
    if start is None:
        raise KpiQueryError(
            f"no {grain} period containing {at or 'now'} has been computed; run kpi-agent kpis with --compute"
        )
    return start if isinstance(start, date) else date.fromisoformat(str(start))


def query_kpi_values(
    db: Database,
    *,
    grain: str = "month",
    at: date | datetime | None = None,
    team: str | None = None,
    rep: str | None = None,
    kpi: str | None = None,
    dimension: str | None = None,
) -> list[KpiValueRow]:
    """Stored values of the ``grain`` period containing ``at``, filtered.

    Args:
        team: a team's key (config), name or id: the team's row and its reps' rows.
        rep: a rep's email or id: that rep's rows.
        kpi: one KPI key.
        dimension: only rows sliced by this dimension (``""``: only unsliced rows; None: all).
    """
    start = _period_at(db, grain, at)
    team_table, owner = TEAM.alias("scope_team"), REP.alias("scope_rep")
    scope_name = func.coalesce(
        team_table.c.name, owner.c.name, owner.c.email, cast(KPI_VALUE.c.scope_kind, String), literal("")
    )
    statement = (
        select(KPI_VALUE, scope_name.label("scope_name"))
        .select_from(
            KPI_VALUE.outerjoin(
                team_table,
                and_(KPI_VALUE.c.scope_kind == "team", KPI_VALUE.c.scope_id == cast(team_table.c.id, String)),
            ).outerjoin(owner, and_(KPI_VALUE.c.scope_kind == "rep", KPI_VALUE.c.scope_id == cast(owner.c.id, String)))
        )
        .where(KPI_VALUE.c.grain == grain, KPI_VALUE.c.period_start == start)
        .order_by(
            KPI_VALUE.c.kpi,
            KPI_VALUE.c.scope_kind,
            KPI_VALUE.c.scope_id,
            KPI_VALUE.c.dimension,
            KPI_VALUE.c.dimension_value,
        )
    )
    if kpi:
        statement = statement.where(KPI_VALUE.c.kpi == kpi)
    if dimension is not None:
        statement = statement.where(KPI_VALUE.c.dimension == dimension)
    with db.engine.connect() as connection:
        if team:
            team_id = _team_id(connection, team)
            statement = statement.where(
                or_(
                    and_(KPI_VALUE.c.scope_kind == "team", KPI_VALUE.c.scope_id == team_id),
                    and_(KPI_VALUE.c.scope_kind == "rep", owner.c.team_id == int(team_id)),
                )
            )
        if rep:
            statement = statement.where(
                KPI_VALUE.c.scope_kind == "rep", KPI_VALUE.c.scope_id == _rep_id(connection, rep)
            )
        rows = connection.execute(statement).mappings().all()
    return [_row(row) for row in rows]


def _team_id(connection: Any, team: str) -> str:
    match = or_(TEAM.c.source_id == team, TEAM.c.name == team, cast(TEAM.c.id, String) == team)
    found = connection.execute(select(TEAM.c.id).where(match).order_by(TEAM.c.id)).scalar()
    if found is None:
        names = ", ".join(connection.execute(select(TEAM.c.source_id)).scalars()) or "none"
        raise KpiQueryError(f"no team {team!r} in the cache (teams: {names}); use a key from [teams]")
    return str(found)


def _rep_id(connection: Any, rep: str) -> str:
    match = or_(func.lower(REP.c.email) == rep.strip().lower(), cast(REP.c.id, String) == rep)
    found = connection.execute(select(REP.c.id).where(match)).scalar()
    if found is None:
        raise KpiQueryError(f"no rep {rep!r} in the cache; give the rep's email as the CRM has it")
    return str(found)


def _row(row: Any) -> KpiValueRow:
    def as_date(value: Any) -> date:
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    scope_name = row["scope_name"]
    if row["scope_kind"] in ("org", "unassigned"):
        scope_name = row["scope_kind"]
    return KpiValueRow(
        kpi=row["kpi"],
        grain=row["grain"],
        period_start=as_date(row["period_start"]),
        period_end=as_date(row["period_end"]),
        scope_kind=row["scope_kind"],
        scope_id=row["scope_id"],
        scope_name=str(scope_name),
        dimension=row["dimension"],
        dimension_value=row["dimension_value"],
        value=row["value"],
        numerator=row["numerator"],
        denominator=row["denominator"],
        status=row["status"],
        error=row["error"],
    )
