"""The plugin module named by the ``kpi_agent`` entry point: a config section and one KPI."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from agent.config import ConfigSection
from agent.hookspecs import hookimpl
from agent.kpi import Custom, Direction, KpiContext, KpiDefinition, Ratio, Unit
from agent.models import Rep

SECTION = "collateral"


class CollateralSettings(BaseModel):
    """``[plugin_config.collateral]``"""

    model_config = ConfigDict(extra="forbid")
    csv_path: Path | None = None


class CollateralDataError(ValueError):
    """The CSV cannot be read; the message names the file, line and column."""


def _settings(ctx: KpiContext) -> CollateralSettings:
    return ctx.config.plugin_section(SECTION, CollateralSettings)  # type: ignore[return-value]


def _read(path: Path) -> Iterator[tuple[int, date, str, float, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                yield (
                    line,
                    date.fromisoformat(row["date"]),
                    row["rep_email"].strip().lower(),
                    float(row["deals"]),
                    float(row["with_collateral"]),
                )
            except (KeyError, ValueError) as error:
                msg = f"{path}:{line}: {error}; columns are date,rep_email,deals,with_collateral"
                raise CollateralDataError(msg) from None


def collateral_rows(ctx: KpiContext) -> list[dict[str, Any]]:
    """Rep-grain rows (the engine rolls them up to teams and the org): deals and deals with collateral."""
    path = _settings(ctx).csv_path
    if path is None:
        return []
    assert ctx.connection is not None
    rep = Rep.__table__
    reps = dict(ctx.connection.execute(select(func.lower(rep.c.email), rep.c.id)).all())
    rows = []
    for _, day, email, deals, used in _read(path):
        period = next((p for p in ctx.periods if p.start_date <= day < p.end_date), None)
        if period is not None:
            rows.append(
                {"period_start": period.start_date, "rep_id": reps.get(email), "deals": deals, "with_collateral": used}
            )
    return rows


WITH_COLLATERAL = Custom("collateral", collateral_rows, column="with_collateral")
DEALS = Custom("collateral", collateral_rows, column="deals")


@hookimpl
def register_config(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection(SECTION, CollateralSettings, "Where the collateral usage CSV is."))


@hookimpl
def register_kpis(register: Callable[[KpiDefinition], None]) -> None:
    register(
        KpiDefinition(
            key="collateral_usage_rate",
            title="Collateral usage rate",
            unit=Unit.PERCENT,
            direction=Direction.UP,
            description="deals worked with sales collateral ÷ deals worked × 100, from the collateral CSV.",
            compute=Ratio(WITH_COLLATERAL, DEALS, 100.0),
            references=("[001]",),
        )
    )
