"""Which activity KPIs are worth coaching on (source [003]): does doing more of them go with winning?

For each activity KPI, the Spearman rank correlation between a rep's value in a period and the deals the
rep won in that period and the ``significance_lag`` periods after it, over rep × period pairs of the last
``significance_periods`` periods whose outcome window has ended.  "significant" means p < 0.05 with at
least ``significance_min_pairs`` pairs; fewer pairs (or no variation) is "insufficient data".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from agent.kpi.periods import instant_of, local_day_of, period_start, shift
from agent.models import KpiValue

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.db import Database
    from agent.kpi.registry import KpiRegistry

KPI_VALUE = KpiValue.__table__
P_THRESHOLD = 0.05
OUTCOME_KPI = "deals_won"
BUILTIN_ACTIVITY_KPIS = ("calls", "emails", "meetings", "demos", "proposals", "activities_per_rep", "call_to_meeting")


@dataclass(frozen=True)
class SignificanceRow:
    kpi: str
    pairs: int
    rho: float | None
    p_value: float | None
    verdict: str
    first_period: date
    last_period: date
    lag: int


def activity_kpis(registry: KpiRegistry | None) -> list[str]:
    if registry is None:
        return list(BUILTIN_ACTIVITY_KPIS)
    return sorted(key for key, entry in registry.definitions.items() if "activity" in entry.definition.tags)


def kpi_significance(
    db: Database,
    config: AgentConfig,
    *,
    at: date | datetime | None = None,
    registry: KpiRegistry | None = None,
) -> list[SignificanceRow]:
    """One row per activity KPI (tagged ``activity`` in ``registry``; default: the built-in ones), from
    the stored rep-scope values."""
    settings = config.kpis
    timezone, grain, lag = config.agent.timezone, settings.grain, settings.significance_lag
    running = period_start(
        grain, local_day_of(instant_of(at, timezone), timezone), config.agent.fiscal_year_start_month
    )
    last_outcome = shift(grain, running, -1)  # the last complete period
    last = shift(grain, last_outcome, -lag)
    starts = [shift(grain, last, -back) for back in range(settings.significance_periods - 1, -1, -1)]
    keys = activity_kpis(registry)
    values = _rep_values(db, grain, [*keys, OUTCOME_KPI], starts[0], last_outcome)
    return [_judge(key, values, starts, grain, lag, settings.significance_min_pairs) for key in keys]


def _rep_values(
    db: Database, grain: str, keys: Sequence[str], first: date, last: date
) -> dict[tuple[str, str, date], float]:
    v = KPI_VALUE.c
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(v.kpi, v.scope_id, v.period_start, v.value).where(
                v.grain == grain,
                v.scope_kind == "rep",
                v.dimension == "",
                v.status == "ok",
                v.kpi.in_(list(keys)),
                v.period_start >= first,
                v.period_start <= last,
            )
        ).all()
    return {
        (row.kpi, row.scope_id, _as_date(row.period_start)): float(row.value) for row in rows if row.value is not None
    }


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _pairs(
    key: str, values: dict[tuple[str, str, date], float], starts: Sequence[date], grain: str, lag: int
) -> tuple[list[float], list[float]]:
    reps = sorted({rep for (kpi, rep, _) in values if kpi == key})
    activity, outcome = [], []
    for rep in reps:
        for start in starts:
            effort = values.get((key, rep, start))
            wins = [values.get((OUTCOME_KPI, rep, shift(grain, start, step))) for step in range(lag + 1)]
            if effort is None or any(win is None for win in wins):
                continue
            activity.append(effort)
            outcome.append(sum(win for win in wins if win is not None))
    return activity, outcome


def _judge(
    key: str,
    values: dict[tuple[str, str, date], float],
    starts: Sequence[date],
    grain: str,
    lag: int,
    min_pairs: int,
) -> SignificanceRow:
    from scipy.stats import spearmanr  # heavy import, only when asked

    activity, outcome = _pairs(key, values, starts, grain, lag)
    rho = p_value = None
    if len(activity) >= 3 and len(set(activity)) > 1 and len(set(outcome)) > 1:
        result = spearmanr(activity, outcome)
        rho, p_value = float(result.statistic), float(result.pvalue)
        if math.isnan(rho):
            rho = p_value = None
    if rho is None or p_value is None or len(activity) < min_pairs:
        verdict = "insufficient data"
    else:
        verdict = "significant" if p_value < P_THRESHOLD else "not significant"
    return SignificanceRow(key, len(activity), rho, p_value, verdict, starts[0], starts[-1], lag)
