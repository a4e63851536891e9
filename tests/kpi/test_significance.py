"""KPI significance (source [003]): Spearman over rep × period pairs, with the lag and the minimum."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import insert

from agent.db import Database
from agent.kpi import kpi_significance
from agent.kpi.periods import shift
from agent.models import KpiValue
from agent.testing.kpi import kpi_config


def _store(db: Database, values: dict[tuple[str, int, date], float]) -> None:
    rows = [
        {"kpi": kpi, "grain": "month", "period_start": start, "period_end": shift("month", start, 1),
         "scope_kind": "rep", "scope_id": str(rep), "value": value, "computed_at": datetime(2024, 1, 1, tzinfo=UTC)}
        for (kpi, rep, start), value in values.items()
    ]
    with db.write_connection() as connection:
        connection.execute(insert(KpiValue.__table__), rows)


def test_calls_that_lead_wins_by_a_period_are_significant_and_noise_is_not(db: Database) -> None:
    months = [shift("month", date(2023, 1, 1), index) for index in range(14)]
    values: dict[tuple[str, int, date], float] = {}
    for rep in range(1, 4):
        for index, start in enumerate(months):
            calls = (index * 7 + rep * 3) % 11  # varies by rep and month
            values[("calls", rep, start)] = calls
            values[("emails", rep, start)] = (index * 5 + rep) % 3  # unrelated to wins
            values[("deals_won", rep, start)] = 0
    for (kpi, rep, start), calls in list(values.items()):
        if kpi == "calls" and start < months[-1]:
            values[("deals_won", rep, shift("month", start, 1))] = calls  # this month's calls win next month
    _store(db, values)
    # running period: March 2024 → last complete February 2024; with lag 1 the pairs end in January
    config = kpi_config(kpis={"significance_periods": 12, "significance_lag": 1})
    rows = {row.kpi: row for row in kpi_significance(db, config, at=date(2024, 3, 10))}
    # 3 reps × 12 months = 36 pairs; outcome = deals won in the month and the next (lag 1)
    assert rows["calls"].pairs == 36 and rows["calls"].verdict == "significant" and rows["calls"].rho > 0.5
    assert rows["emails"].verdict == "not significant"
    few = kpi_config(kpis={"significance_periods": 12, "significance_min_pairs": 40})
    assert (
        {row.kpi: row.verdict for row in kpi_significance(db, few, at=date(2024, 3, 10))}["calls"]
        == "insufficient data"
    )
