"""Reusable measures that the declarative forms cannot say: quotas and the forecast snapshot.

Plugins may use them in their own KPIs (``Ratio(my_revenue, quota("revenue"))``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from functools import cache, partial
from typing import Any

from sqlalchemy import Integer, Select, String, and_, cast, func, literal_column, select

from agent.kpi.sources import REP, overlap_share, overlaps
from agent.kpi.spec import Custom, KpiContext
from agent.models import ForecastSnapshot, Quota

QUOTA = Quota.__table__
FORECAST = ForecastSnapshot.__table__


def quota_amounts(ctx: KpiContext, kpi: str, offset: int = 0) -> Select:
    """Quota amounts per window (``offset=1``: the next period's) and quota owner (rep or team), each
    quota spread over the days of the span it is given for."""
    w = ctx.windows()
    start = w.c.start_date if offset == 0 else w.c.next_start_date
    end = w.c.end_date if offset == 0 else w.c.next_end_date
    span = (QUOTA.c.period_start, QUOTA.c.period_end, start, end)
    return (
        select(
            w.c.period_start,
            QUOTA.c.scope_kind,
            QUOTA.c.scope_id,
            func.sum(QUOTA.c.amount * overlap_share(*span)).label("amount"),
        )
        .select_from(w.join(QUOTA, and_(QUOTA.c.kpi == kpi, overlaps(*span))))
        .group_by(w.c.period_start, QUOTA.c.scope_kind, QUOTA.c.scope_id)
    )


def rep_quotas(ctx: KpiContext, kpi: str) -> Any:
    """Per window and rep: the rep's own quota (for "reps at quota")."""
    amounts = quota_amounts(ctx, kpi).subquery("quota_amounts")
    return (
        select(amounts.c.period_start, cast(amounts.c.scope_id, Integer).label("rep_id"), amounts.c.amount)
        .where(amounts.c.scope_kind == "rep")
        .subquery("rep_quotas")
    )


def _quota_rows(kpi: str, offset: int, ctx: KpiContext) -> list[dict[str, Any]]:
    """Quota per scope: a rep's own; a team's own where given, else the sum of its reps'; the org's,
    the sum of its teams' and of the reps in no team."""
    assert ctx.connection is not None
    rows = ctx.connection.execute(quota_amounts(ctx, kpi, offset)).all()
    members = dict(ctx.connection.execute(select(cast(REP.c.id, String), cast(REP.c.team_id, String))).all())
    own: dict[tuple[Any, str, str], float] = {}
    for row in rows:
        own[(row.period_start, row.scope_kind, str(row.scope_id))] = float(row.amount or 0)
    return _compose_quotas(own, members)


def _compose_quotas(
    own: Mapping[tuple[Any, str, str], float], members: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    team_from_reps: dict[tuple[Any, str], float] = defaultdict(float)
    org: dict[Any, float] = defaultdict(float)
    for (period, kind, scope_id), amount in own.items():
        if kind != "rep":
            continue
        team = members.get(scope_id)
        if team is None:
            org[period] += amount
        else:
            team_from_reps[(period, team)] += amount
    teams: dict[tuple[Any, str], float] = dict(team_from_reps)
    teams.update({(period, scope_id): amount for (period, kind, scope_id), amount in own.items() if kind == "team"})
    for (period, _), amount in teams.items():
        org[period] += amount
    rows = [_row(period, "rep", scope_id, amount) for (period, kind, scope_id), amount in own.items() if kind == "rep"]
    rows += [_row(period, "team", team, amount) for (period, team), amount in teams.items()]
    rows += [_row(period, "org", "", amount) for period, amount in org.items()]
    return rows


def _row(period: Any, kind: str, scope_id: str, amount: float) -> dict[str, Any]:
    return {"period_start": period, "scope_kind": kind, "scope_id": scope_id, "value": amount}


@cache
def quota(kpi: str = "revenue", offset: int = 0) -> Custom:
    """The quota of each scope for the period (``offset=1``: for the next period); no value where a
    scope has none.  Cached, so every KPI that uses it shares one query."""
    return Custom(f"quota_{kpi}_{offset}", partial(_quota_rows, kpi, offset), rollup=False)


def _forecast_rows(ctx: KpiContext) -> Select:
    w = ctx.windows()
    return select(
        w.c.period_start,
        FORECAST.c.scope_kind,
        FORECAST.c.scope_id,
        literal_column("''", String).label("dimension_value"),
        FORECAST.c.value,
    ).select_from(w.join(FORECAST, and_(FORECAST.c.grain == ctx.grain, FORECAST.c.period_start == w.c.period_start)))


FORECAST_AT_START = Custom("forecast_at_start", _forecast_rows, rollup=False)
"""``revenue_forecast`` as the agent snapshotted it at each period's start, per scope."""


__all__ = ["FORECAST_AT_START", "quota", "quota_amounts", "rep_quotas"]
