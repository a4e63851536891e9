"""What ``kpi-agent kpis`` prints: a table (or JSON lines) of stored values, computing them first."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

from rich.table import Table

from agent.kpi.engine import compute_kpis
from agent.kpi.query import KpiValueRow, query_kpi_values
from agent.kpi.reference import load_reference_data
from agent.kpi.registry import collect_kpis
from agent.kpi.significance import kpi_significance

if TYPE_CHECKING:
    from rich.console import Console

    from agent.config import AgentConfig
    from agent.plugins import PluginHost


def show(
    console: Console,
    config: AgentConfig,
    host: PluginHost,
    *,
    period: str = "month",
    at: date | None = None,
    team: str | None = None,
    rep: str | None = None,
    kpi: str | None = None,
    as_json: bool = False,
    significance: bool = False,
    compute: bool = True,
) -> None:
    """Compute (unless ``compute`` is False), then print the values of the period containing ``at``."""
    from agent.db import create_database

    db = create_database(config.agent.database_url.get_secret_value())
    try:
        registry = collect_kpis(host, config)
        for error in registry.errors:
            console.print(f"[yellow]![/] {error.message}")
        if compute:
            load_reference_data(db, config)
            result = compute_kpis(db, config, host, grain=period, at=at, registry=registry,
                                  dimensions=config.kpis.dimensions)
            for key, error in result.failed.items():
                console.print(f"[red]✗ {key}[/] failed: {error}")
        if significance:
            _print_significance(console, db, config, at, registry, as_json)
            return
        rows = query_kpi_values(db, grain=period, at=at, team=team, rep=rep, kpi=kpi)
        if as_json:
            # JSON Lines: one compact object per value, for jq and scripts (rich would wrap and colour it).
            for row in rows:
                console.file.write(json.dumps(row.as_json()) + "\n")
            return
        console.print(_table(rows, {key: entry.definition.unit.value for key, entry in registry.definitions.items()}))
    finally:
        db.dispose()


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{value:,.2f}"


def _table(rows: list[KpiValueRow], units: dict[str, str]) -> Table:
    title = f"KPIs {rows[0].period_start} – {rows[0].period_end}" if rows else "KPIs (no values)"
    table = Table(title=title, title_justify="left")
    for column in ("kpi", "scope", "slice", "value", "numerator", "denominator"):
        table.add_column(column, justify="right" if column in ("value", "numerator", "denominator") else "left")
    for row in rows:
        unit = units.get(row.kpi, "")
        value = _format(row.value, unit) if row.status == "ok" else f"[red]{row.status}[/]"
        sliced = f"{row.dimension}={row.dimension_value}" if row.dimension else ""
        number = lambda n: "" if n is None else f"{n:,.2f}"  # noqa: E731
        table.add_row(
            row.kpi, f"{row.scope_kind} {row.scope_name}", sliced, value, number(row.numerator), number(row.denominator)
        )
    return table


def _print_significance(
    console: Console, db: object, config: AgentConfig, at: date | None, registry: object, as_json: bool
) -> None:
    rows = kpi_significance(db, config, at=at, registry=registry)  # type: ignore[arg-type]
    if as_json:
        for row in rows:
            fields = {**row.__dict__, "first_period": str(row.first_period), "last_period": str(row.last_period)}
            console.file.write(json.dumps(fields) + "\n")
        return
    table = Table(title="Do activity KPIs go with winning? (Spearman, rep × period)", title_justify="left")
    for column in ("kpi", "pairs", "rho", "p", "verdict"):
        table.add_column(column)
    for row in rows:
        rho = "" if row.rho is None else f"{row.rho:+.2f}"
        p = "" if row.p_value is None else f"{row.p_value:.3f}"
        table.add_row(row.kpi, str(row.pairs), rho, p, row.verdict)
    console.print(table)
