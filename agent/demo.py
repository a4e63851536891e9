"""``kpi-agent demo``: the whole loop against the sandbox, each step shown.

1. generate a CRM world (some teams on Salesforce, some on HubSpot) and serve it on loopback, with a few
   faults switched on, as the real services fail;
2. write the agent's config for it and check it as ``kpi-agent config check`` does;
3. sync both CRMs into one SQLite cache with the built-in connectors (real clients, real HTTP);
4. compute every KPI of every enabled plugin for the running month and show org and team values;
5. show which activity KPIs go with winning (significance), the first input of coaching.

Everything lives under ``data_dir`` (made anew on each run), so the demo never touches a real cache.
"""

from __future__ import annotations

import shutil
import tomllib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from agent.config import AgentConfig, ConfigError, check_kpi_keys, parse_config
from agent.db import create_database
from agent.logs import configure_logging, secrets_of
from agent.plugins import create_plugin_manager

# Faults the connectors must ride out: a burst of HubSpot 429s, a Salesforce session that expires
# mid-sync (simple-salesforce logs in again) and a 503 (retried with backoff).
DEMO_FAULTS = (
    "hubspot:rate_limit:after=3,times=2,retry_after=1;"
    "salesforce:session_expired:after=4,times=1;"
    "salesforce:unavailable:after=8,times=1,retry_after=1"
)
HEADLINE_KPIS = (
    "revenue", "deals_won", "win_rate", "avg_deal_size", "quota_attainment", "pipeline_value",
    "weighted_pipeline", "calls", "meetings", "call_to_meeting", "lead_flow", "lead_response_minutes",
)
MONTHLY_QUOTA_PER_REP = 300_000.0


def run_demo(console: Console, *, seed: int, size: str, data_dir: Path) -> int:
    """Run every step; return the process exit code (0 when every step worked)."""
    from connectors.sandbox.runner import describe, serve

    if data_dir.exists():
        shutil.rmtree(data_dir)  # the demo's own directory: a fresh world dated today on each run
    data_dir.mkdir(parents=True)
    console.rule("[bold]1. A CRM world in the sandbox")
    with serve(seed=seed, size=size, serve_as="split", faults=DEMO_FAULTS, data_dir=data_dir / "sandbox") as sandbox:
        console.print(_world_summary(sandbox, describe))
        console.rule("[bold]2. The agent's config")
        config = _demo_config(sandbox, data_dir)
        if config is None:
            return 1
        configure_logging("WARNING", secrets_of(config))
        console.rule("[bold]3. Sync Salesforce and HubSpot into one cache")
        code = _sync(console, config)
        console.print(_faults_met(sandbox))
    if code != 0:
        console.print("[red]The sync did not complete; see above.[/]")
        return code
    console.rule("[bold]4. KPIs of the last full month")
    _kpis(console, config)
    console.rule("[bold]5. Which activities go with winning")
    _significance(console, config)
    console.print(Panel.fit(
        f"Cache: {data_dir / 'cache.sqlite'}\nConfig: {data_dir / 'config.toml'}\n"
        f"Try: kpi-agent kpis -c {data_dir / 'config.toml'} --team <name>   |   "
        f"kpi-agent status -c {data_dir / 'config.toml'}",
        title="Done"))
    return 0


def _world_summary(sandbox: Any, describe: Any) -> Table:
    world = sandbox.world
    table = Table(title="Served on loopback", title_justify="left")
    table.add_column("CRM")
    table.add_column("URL")
    table.add_column("teams", justify="right")
    table.add_column("opportunities", justify="right")
    table.add_column("activities", justify="right")
    for crm, server in (("salesforce", sandbox.salesforce), ("hubspot", sandbox.hubspot)):
        counts = [_count(world, table_name, crm) for table_name in ("teams", "opportunities", "activities")]
        table.add_row(crm, server.base_url, *(f"{n:,}" for n in counts))
    table.caption = f"world seed {world.seed}, size {world.size}, home currency {world.home_currency}; faults: " \
                    f"{sandbox.faults}"
    return table


def _count(world: Any, table_name: str, crm: str) -> int:
    return int(world.execute(f"SELECT COUNT(*) AS n FROM {table_name} WHERE crm = ?", (crm,))[0]["n"])


def _demo_config(sandbox: Any, data_dir: Path) -> AgentConfig | None:
    world = sandbox.world
    today = datetime.now(ZoneInfo(world.timezone)).date()
    month = today.replace(day=1)
    months = ((month - timedelta(days=1)).replace(day=1), month)
    reps = world.execute("SELECT email FROM reps WHERE active = 1 ORDER BY id")
    quotas = "".join(
        f'\n[[quotas]]\nrep = "{rep["email"]}"\ngrain = "month"\nstart = "{start.isoformat()}"\n'
        f"amount = {MONTHLY_QUOTA_PER_REP}\n"
        for rep in reps
        for start in months
    )
    text = (
        f'[agent]\ntimezone = "{world.timezone}"\nhome_currency = "{world.home_currency}"\n'
        f'database_url = "sqlite:///{(data_dir / "cache.sqlite").resolve()}"\n\n'
        + sandbox.config_snippet()
        + quotas
    )
    path = data_dir / "config.toml"
    path.write_text(text)
    path.chmod(0o600)  # it holds the sandbox's credentials
    try:
        config = parse_config(tomllib.loads(text), str(path))
    except ConfigError as error:
        print(error)
        return None
    host = create_plugin_manager(blocked=config.plugins.disabled)
    from agent.kpi import collect_kpis

    registry = collect_kpis(host, config)
    problems = check_kpi_keys(config, registry.definitions) + [
        f"plugin {e.name}: {e.message}" for e in host.load_errors  # type: ignore[list-item]
    ]
    Console().print(
        f"Wrote {path}: {len(config.connections)} connections, {len(config.quotas)} rep quotas of "
        f"{MONTHLY_QUOTA_PER_REP:,.0f} a month, timezone {config.agent.timezone}. "
        + ("config check: [green]✓ valid[/]" if not problems else f"[red]{problems}[/]")
    )
    return config


def _sync(console: Console, config: AgentConfig) -> int:
    from agent.sync.cli import run_sync

    host = create_plugin_manager(blocked=config.plugins.disabled)
    db = create_database(config.agent.database_url.get_secret_value())
    try:
        return run_sync(console, config, host, db)
    finally:
        db.dispose()


def _faults_met(sandbox: Any) -> str:
    log = sandbox.log
    lines = [
        f"The sandbox served {log.count():,} requests; the faults the connectors rode out:",
        f"  HubSpot 429 rate limits: {log.count(service='hubspot', status=429)}",
        f"  Salesforce expired sessions (401, then a new login): {log.count(service='salesforce', status=401)}",
        f"  Salesforce 503s (retried after backoff): {log.count(service='salesforce', status=503)}",
    ]
    return "\n".join(lines)


def _kpis(console: Console, config: AgentConfig) -> None:
    from agent.kpi import collect_kpis, compute_kpis, load_reference_data, query_kpi_values

    host = create_plugin_manager(blocked=config.plugins.disabled)
    registry = collect_kpis(host, config)
    db = create_database(config.agent.database_url.get_secret_value())
    try:
        load_reference_data(db, config)
        result = compute_kpis(db, config, host, grain="month", at=None, registry=registry,
                                  dimensions=config.kpis.dimensions)
        # The running month may be a day old; the last full one tells more.
        last_month = datetime.now(ZoneInfo(config.agent.timezone)).date().replace(day=1) - timedelta(days=1)
        rows = query_kpi_values(db, grain="month", at=last_month, team=None, rep=None, kpi=None)
    finally:
        db.dispose()
    failed = f", [red]{len(result.failed)} failed[/]" if result.failed else ""
    console.print(f"Computed {len(registry.definitions)} KPIs for org, teams and reps{failed}.")
    console.print(_kpi_table(rows, registry))


def _kpi_table(rows: list[Any], registry: Any) -> Table:
    current = max((row.period_start for row in rows), default=date.today())
    wanted = [row for row in rows if row.period_start == current and row.kpi in HEADLINE_KPIS
              and row.scope_kind in ("org", "team") and not getattr(row, "dimension", "")]
    scopes = sorted({(row.scope_kind != "org", row.scope_name) for row in wanted})
    table = Table(title=f"Month starting {current:%d %B %Y} (org and teams; all KPIs: kpi-agent kpis)",
                  title_justify="left")
    table.add_column("KPI")
    for _, name in scopes:
        table.add_column(str(name), justify="right")
    values = {(row.kpi, row.scope_name): row.value for row in wanted}
    for key in HEADLINE_KPIS:
        if key not in registry.definitions:
            continue
        unit = registry.definitions[key].definition.unit.value
        table.add_row(key, *(_format(values.get((key, name)), unit) for _, name in scopes))
    return table


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("count",):
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def _significance(console: Console, config: AgentConfig) -> None:
    from agent.kpi import kpi_significance

    db = create_database(config.agent.database_url.get_secret_value())
    try:
        rows = kpi_significance(db, config, at=None)
    finally:
        db.dispose()
    table = Table(title="Spearman correlation of a rep's activity with their won deals (this and next period)",
                  title_justify="left")
    for column in ("activity KPI", "pairs", "rho", "p", "verdict"):
        table.add_column(column)
    for row in rows:
        cells = [getattr(row, name, None) for name in ("kpi", "pairs", "rho", "p_value", "verdict")]
        table.add_row(*("-" if cell is None else (f"{cell:.3f}" if isinstance(cell, float) else str(cell))
                        for cell in cells))
    console.print(table)
