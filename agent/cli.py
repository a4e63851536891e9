"""The ``kpi-agent`` command line.

Commands stay thin: they read the config, build the plugin host, call the core and print with rich.
Errors meant for a person (bad config, broken plugin, unreachable sandbox) are printed as one clear
message and exit non-zero; tracebacks are for bugs (``KPI_AGENT_RAISE_ERRORS=1`` shows them always).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agent.config import (
    AgentConfig,
    ConfigError,
    ConfigProblem,
    ConfigSection,
    check_kpi_keys,
    check_plugin_sections,
    load_config,
)
from agent.db import Database, DatabaseError, create_database
from agent.hookspecs import PLUGIN_API_VERSION
from agent.logs import configure_logging, secrets_of
from agent.plugins import PluginHost, create_plugin_manager

app = typer.Typer(
    name="kpi-agent",
    help="Sales KPIs from Salesforce and HubSpot, as goal-versus-actual digests and nudges in Slack.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console()
error_console = Console(stderr=True)

CONFIG_ENV = "KPI_AGENT_CONFIG"
DEFAULT_CONFIG = Path("config.toml")
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=f"Config file (default: ${CONFIG_ENV}, else ./config.toml)."),
]


def main() -> None:
    """Entry point of the ``kpi-agent`` script."""
    app()


def _config_path(option: Path | None) -> Path | None:
    if option is not None:
        return option
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


def _load(option: Path | None) -> AgentConfig:
    """The config from file (or the defaults when there is none), with logging set up to mask secrets."""
    path = _config_path(option)
    try:
        config = load_config(path) if path is not None else AgentConfig()
    except ConfigError as error:
        _print_problems(error.source, error.problems)
        raise typer.Exit(1) from None
    configure_logging(config.agent.log_level, secrets_of(config))
    return config


@contextmanager
def _database(config: AgentConfig) -> Iterator[Database]:
    """The configured cache, migrated to the newest schema."""
    try:
        db = create_database(config.agent.database_url.get_secret_value())
    except DatabaseError as error:
        error_console.print(f"[red]✗ cache[/]: {error}")
        raise typer.Exit(1) from None
    try:
        yield db
    finally:
        db.dispose()


def _host(config: AgentConfig) -> PluginHost:
    return create_plugin_manager(blocked=config.plugins.disabled)


def _print_problems(source: str, problems: list[ConfigProblem]) -> None:
    table = Table(title=f"{source}: {len(problems)} problem(s)", title_justify="left", show_lines=False)
    table.add_column("key", style="bold red")
    table.add_column("problem")
    for problem in problems:
        table.add_row(problem.key, problem.message)
    error_console.print(table)


def _not_yet(command: str, what: str) -> None:
    error_console.print(f"[yellow]kpi-agent {command}[/]: not available yet — {what}.")
    raise typer.Exit(2)


def _kpi_registry(host: PluginHost, config: AgentConfig | None) -> Any | None:
    try:
        from agent.kpi import collect_kpis
    except ImportError:
        return None
    return collect_kpis(host, config)


def _config_sections(host: PluginHost) -> tuple[dict[str, ConfigSection], list[ConfigProblem]]:
    """The config sections plugins declare, each plugin called on its own so one failure stays its own."""
    sections: dict[str, ConfigSection] = {}
    problems: list[ConfigProblem] = []
    for impl in host.impls("register_config"):
        try:
            impl(register=lambda section: sections.setdefault(section.name, section))
        except Exception as error:  # a plugin's bug must not hide the others' sections
            message = f"register_config failed: {type(error).__name__}: {error}"
            problems.append(ConfigProblem(f"plugin {impl.plugin_name}", message))
    return sections, problems


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="The TOML config file to check.")],
    online: Annotated[bool, typer.Option(help="Also log in to each CRM and check scopes and fields.")] = False,
) -> None:
    """Validate a config file: every problem is named by its key. Prints no secret."""
    # Plugin load errors are shown in the problem table below; no need for the log lines too.
    logging.getLogger("agent.plugins").setLevel(logging.ERROR)
    unset_env: list[str] = []
    try:
        config = load_config(file, unset_env=unset_env)
    except ConfigError as error:
        _print_problems(error.source, error.problems)
        raise typer.Exit(1) from None
    host = _host(config)
    sections, problems = _config_sections(host)
    problems += check_plugin_sections(config, sections)
    registry = _kpi_registry(host, config)
    if registry is not None:
        problems += check_kpi_keys(config, registry.definitions)
    problems += [ConfigProblem(f"plugin {e.name}", e.message) for e in host.load_errors]
    if problems:
        _print_problems(str(file), problems)
        raise typer.Exit(1)
    console.print(
        f"[green]✓[/] {file} is valid: {len(config.connections)} connection(s), {len(config.teams)} team(s), "
        f"timezone {config.agent.timezone}."
    )
    for variable in sorted(set(unset_env)):
        console.print(f"[yellow]![/] environment variable {variable} is not set here; the agent will need it.")
    if online:
        from agent.sync.cli import preflight

        configure_logging(config.agent.log_level, secrets_of(config))
        raise typer.Exit(preflight(console, config, host))


@app.command("plugins")
def plugins_command(
    config_file: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List plugins: name, version, origin, hooks, KPIs, and any that failed to load."""
    config = _load(config_file)
    host = _host(config)
    registry = _kpi_registry(host, config)
    connectors = _connector_owners(host)
    rows = [_plugin_row(info, registry, connectors) for info in host.plugin_infos()]
    errors = [{"name": e.name, "distribution": e.distribution, "error": e.message} for e in host.load_errors]
    if as_json:
        console.print_json(json.dumps({"api_version": PLUGIN_API_VERSION, "plugins": rows, "errors": errors}))
        return
    table = Table(title=f"Plugins (plugin API {PLUGIN_API_VERSION})", title_justify="left", show_lines=True)
    for column in ("name", "version", "origin", "enabled", "hooks"):
        table.add_column(column, no_wrap=True)
    table.add_column("provides", overflow="fold", ratio=1)
    for row in rows:
        enabled = "yes" if row["enabled"] else "[dim]disabled[/]"
        provides = ", ".join(row["kpis"] + [f"connector {kind}" for kind in row["connectors"]]) or "-"
        table.add_row(row["name"], row["version"] or "-", row["origin"], enabled, "\n".join(row["hooks"]) or "-",
                      provides)
    console.print(table)
    for error in errors:
        origin = error["distribution"] or "registered"
        error_console.print(f"[red]✗ plugin {error['name']}[/] ({origin}): {error['error']}")


def _plugin_row(info: Any, registry: Any | None, connectors: dict[str, str]) -> dict[str, Any]:
    kpis: list[str] = []
    if registry is not None:
        kpis = sorted(key for key, owner in registry.owners().items() if owner == info.name)
    return {
        "connectors": sorted(kind for kind, owner in connectors.items() if owner == info.name),
        "name": info.name,
        "version": info.version,
        "origin": info.origin,
        "enabled": info.enabled,
        "hooks": list(info.hooks),
        "kpis": kpis,
    }


def _connector_owners(host: PluginHost) -> dict[str, str]:
    """Connector kind → the plugin that registered it."""
    from agent.sync.registry import collect_connectors

    registry = collect_connectors(host)
    return {kind: registry.plugin_of(kind) or "?" for kind in registry}


@app.command("sandbox")
def sandbox_command(
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 1,
    size: Annotated[str, typer.Option(help="tiny, small, medium, large, or a number of opportunities.")] = "small",
    world: Annotated[Path | None, typer.Option(help="Serve a world from a directory of JSON Lines files.")] = None,
    faults: Annotated[str | None, typer.Option(help="Faults to inject (see docs/sandbox.md).")] = None,
    serve_as: Annotated[str, typer.Option("--as", help="salesforce, hubspot or split.")] = "split",
    data_dir: Annotated[Path, typer.Option(help="Where the world file and test CA are kept.")] = Path(
        ".kpi-agent/sandbox"
    ),
    port_salesforce: Annotated[int, typer.Option(help="Port of the Salesforce server (0: any free).")] = 0,
    port_hubspot: Annotated[int, typer.Option(help="Port of the HubSpot server (0: any free).")] = 0,
) -> None:
    """Serve a sandbox Salesforce and/or HubSpot on loopback, in the foreground (Ctrl-C stops it)."""
    if serve_as not in ("salesforce", "hubspot", "split"):
        error_console.print(f"--as {serve_as!r}: use salesforce, hubspot or split")
        raise typer.Exit(2)
    try:
        from connectors.sandbox.runner import run_sandbox_command
    except ImportError as error:
        _not_yet("sandbox", f"the sandbox runner is not installed ({error})")
    run_sandbox_command(
        seed=seed,
        size=size,
        world_dir=world,
        faults=faults,
        serve_as=serve_as,
        data_dir=data_dir,
        port_salesforce=port_salesforce,
        port_hubspot=port_hubspot,
    )


@app.command("demo")
def demo_command(
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 7,
    size: Annotated[str, typer.Option(help="Size of the generated world (tiny, small, medium, ...).")] = "small",
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(".kpi-agent/demo"),
) -> None:
    """Run the whole loop against the sandbox and show each step."""
    from agent.demo import run_demo

    code = run_demo(console, seed=seed, size=size, data_dir=data_dir)
    raise typer.Exit(code)


@app.command("kpis")
def kpis_command(
    config_file: ConfigOption = None,
    period: Annotated[str, typer.Option(help="day, week, month, quarter or year.")] = "month",
    at: Annotated[str | None, typer.Option(help="A date in the period to show (default: today).")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team (key or name).")] = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep (email).")] = None,
    kpi: Annotated[str | None, typer.Option(help="Only this KPI key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per value.")] = False,
    significance: Annotated[bool, typer.Option(help="Show which activity KPIs correlate with wins.")] = False,
    compute: Annotated[bool, typer.Option(help="Compute before showing.")] = True,
) -> None:
    """Compute and show KPI values for a period, as a table or JSON."""
    config = _load(config_file)
    try:
        from agent.kpi import cli as kpi_cli
    except ImportError:
        _not_yet("kpis", "the KPI engine is not installed")
    at_date = date.fromisoformat(at) if at else None
    kpi_cli.show(
        console,
        config,
        _host(config),
        period=period,
        at=at_date,
        team=team,
        rep=rep,
        kpi=kpi,
        as_json=as_json,
        significance=significance,
        compute=compute,
    )


@app.command("sync")
def sync_command(
    config_file: ConfigOption = None,
    connection: Annotated[str | None, typer.Option(help="Only this connection.")] = None,
    object_name: Annotated[str | None, typer.Option("--object", help="Only this object.")] = None,
    full: Annotated[bool, typer.Option(help="Reload from scratch instead of incrementally.")] = False,
) -> None:
    """Pull changed records from the CRMs into the cache (incrementally; --full reloads)."""
    from agent.sync.cli import run_sync

    config = _load(config_file)
    with _database(config) as db:
        code = run_sync(console, config, _host(config), db, connection=connection, object_name=object_name, full=full)
    raise typer.Exit(code)


@app.command("status")
def status_command(config_file: ConfigOption = None) -> None:
    """Show each object's sync cursor, last run, counts, quarantined records and last error."""
    from agent.sync.cli import show_status

    config = _load(config_file)
    with _database(config) as db:
        code = show_status(console, config, db)
    raise typer.Exit(code)


@app.command("run")
def run_command(config_file: ConfigOption = None) -> None:
    """Run the agent: sync and compute on the configured schedule (Slack delivery comes with its issue)."""
    from agent.scheduler import run_forever

    config = _load(config_file)
    with _database(config):
        pass  # migrate the cache once, before any job, so a bad database URL fails now and not at 3 am
    console.print(f"kpi-agent: {len(config.connections)} connection(s), timezone {config.agent.timezone}")
    run_forever(config, console)


@app.command("digest")
def digest_command(config_file: ConfigOption = None) -> None:
    """Build the goal-versus-actual digest and send it to Slack."""
    _load(config_file)
    _not_yet("digest", "Slack delivery is a later issue")


@app.command("nudges")
def nudges_command(config_file: ConfigOption = None) -> None:
    """Send coaching nudges to reps who are off pace."""
    _load(config_file)
    _not_yet("nudges", "coaching nudges are a later issue")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
