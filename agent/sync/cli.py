"""What ``kpi-agent sync``, ``kpi-agent status`` and ``kpi-agent config check --online`` do.

The core CLI (``agent/cli.py``) parses options and calls these; each prints with the given rich console
and returns the process exit code: 0 when everything synced (or stopped cleanly: a spent API budget, an
object another process is syncing), 1 when an object failed or a preflight found problems, 2 when the
command line or config names something that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from agent.config import AgentConfig
from agent.db import Database
from agent.plugins import PluginHost
from agent.sync.connector import Connector, ConnectorSpec, SyncContext
from agent.sync.engine import ObjectOutcome, SyncEngine
from agent.sync.registry import ConnectorRegistry, collect_connectors
from agent.sync.writer import WriterSettings, cache_table

log = logging.getLogger(__name__)

STATUS_STYLES = {"ok": "green", "stopped": "yellow", "busy": "yellow", "failed": "red"}


class RichSyncProgress:
    """One progress bar per object: records so far, rate, and an ETA when the CRM says how many to expect."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def object_started(self, connection: str, object_name: str) -> None:
        self.tasks[(connection, object_name)] = self.progress.add_task(f"{connection} {object_name}", total=None)

    def page_written(self, connection: str, object_name: str, records: int, expected_total: int | None) -> None:
        task = self.tasks.get((connection, object_name))
        if task is None:
            return
        if expected_total is not None and self.progress.tasks[task].total is None:
            self.progress.update(task, total=expected_total)
        self.progress.advance(task, records)

    def object_finished(self, outcome: ObjectOutcome) -> None:
        task = self.tasks.get((outcome.connection, outcome.object))
        if task is not None:
            done = self.progress.tasks[task].completed
            self.progress.update(task, total=max(done, 1) if done else 1, completed=max(done, 1) if done else 1,
                                 description=f"{outcome.connection} {outcome.object} [{_style(outcome.status)}]"
                                             f"{outcome.status}[/]")


class RateColumn(ProgressColumn):
    """Records per second (rich's speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
                    disable=not console.is_terminal)


def _style(status: str) -> str:
    return STATUS_STYLES.get(status, "white")


# -- sync ---------------------------------------------------------------------------------------------------


def run_sync(console: Console, config: AgentConfig, host: PluginHost, db: Database, *, connection: str | None = None,
             object_name: str | None = None, full: bool = False) -> int:
    """Sync every configured connection (or ``connection``; only ``object_name`` if given); ``full`` starts
    each object's first load again (rows are kept and updated).  Prints a summary table; returns the exit code."""
    registry = _registry(console, host)
    names = _chosen_connections(console, config, connection)
    if names is None:
        return 2
    warnings: list[str] = []
    outcomes: list[ObjectOutcome] = []
    code = 0
    with _progress(console) as progress:
        engine = SyncEngine(db, progress=RichSyncProgress(progress))
        for name in names:
            result = _sync_one(console, config, registry, engine, name, object_name, full, warnings.append)
            if isinstance(result, int):
                code = max(code, result)
                continue
            outcomes += result
    _print_warnings(console, warnings)
    _print_summary(console, outcomes)
    if any(outcome.status == "failed" for outcome in outcomes):
        code = max(code, 1)
    return code


def _sync_one(console: Console, config: AgentConfig, registry: ConnectorRegistry, engine: SyncEngine, name: str,
              object_name: str | None, full: bool, warn: Callable[[str], None]) -> list[ObjectOutcome] | int:
    section = config.connections[name]
    spec = registry.get(section.kind)
    if spec is None:
        console.print(f"[red]connections.{name}[/]: no plugin provides connector kind {section.kind!r} "
                      f"(installed: {', '.join(sorted(registry)) or 'none'})")
        return 2
    context = sync_context(config, name, full=full, warn=warn)
    try:
        connector = spec.factory(name, section, context)
    except Exception as error:  # a plugin's factory: report it against the connection
        console.print(f"[red]connections.{name}[/]: the {spec.title} connector could not start: {error}")
        return 1
    try:
        objects = _chosen_objects(console, connector, name, object_name)
        if objects is None:
            return 2
        settings = WriterSettings(name, config.agent.home_currency, config.agent.timezone, config.teams)
        return engine.sync_connection(connector, spec, context, settings, objects=objects,
                                      reconcile_every=timedelta(hours=section.reconcile_every_hours))
    finally:
        connector.close()


def sync_context(config: AgentConfig, name: str, *, full: bool = False,
                 warn: Callable[[str], None] | None = None) -> SyncContext:
    section = config.connections[name]
    return SyncContext(connection=name, home_currency=config.agent.home_currency, timezone=config.agent.timezone,
                       overlap=timedelta(seconds=section.overlap_seconds),
                       initial_lookback=timedelta(days=section.initial_lookback_days), full=full,
                       now=datetime.now(UTC), warn=warn or (lambda message: log.warning("%s", message)))


def _registry(console: Console, host: PluginHost) -> ConnectorRegistry:
    registry = collect_connectors(host)
    for error in registry.errors:
        console.print(f"[yellow]plugin {escape(error.plugin)}[/]: {escape(error.message)}")
    return registry


def _chosen_connections(console: Console, config: AgentConfig, connection: str | None) -> list[str] | None:
    if not config.connections:
        console.print("[yellow]No [connections.*] in the config: nothing to sync.[/] Add one (see "
                      "config.example.toml), or run `kpi-agent sandbox` for a config to try.")
        return []
    if connection is None:
        return list(config.connections)
    if connection not in config.connections:
        console.print(f"[red]--connection {connection}[/]: no such connection; configured: "
                      f"{', '.join(config.connections)}")
        return None
    return [connection]


def _chosen_objects(console: Console, connector: Connector, name: str, object_name: str | None) -> list[str] | None:
    objects = list(connector.objects())
    if object_name is None:
        return objects
    matches = [candidate for candidate in objects if candidate.lower() == object_name.lower()]
    if not matches:
        console.print(f"[red]--object {object_name}[/]: connection {name} has no such object; it syncs "
                      f"{', '.join(objects)}")
        return None
    return matches


def _print_warnings(console: Console, warnings: list[str]) -> None:
    for message in dict.fromkeys(warnings):
        # escaped: a message that names a config section ("[connections.crm.mapping.x]") is not markup
        console.print(f"[yellow]![/] {escape(message)}")


def _print_summary(console: Console, outcomes: list[ObjectOutcome]) -> None:
    if not outcomes:
        return
    table = Table(title="Sync summary")
    for column in ("Connection", "Object", "Status", "Records", "Deleted", "Quarantined", "Seconds", "Note"):
        table.add_column(column, justify="right" if column in ("Records", "Deleted", "Quarantined", "Seconds")
                         else "left")
    for outcome in outcomes:
        table.add_row(outcome.connection, outcome.object, f"[{_style(outcome.status)}]{outcome.status}[/]",
                      str(outcome.records), str(outcome.deleted), str(outcome.quarantined), f"{outcome.seconds:.1f}",
                      outcome.message or "")
    console.print(table)


# -- status -------------------------------------------------------------------------------------------------


def show_status(console: Console, config: AgentConfig, db: Database) -> int:
    """Each object's cursor, last run, records synced, quarantined records and last error."""
    cursors, runs, quarantine = (cache_table(name) for name in ("sync_cursor", "sync_run", "quarantined_record"))
    with db.session() as session:
        rows = session.execute(select(cursors).order_by(cursors.c.connection, cursors.c.id)).all()
        latest = {(row.connection, row.object): row for row in session.execute(
            select(runs).where(runs.c.id.in_(select(func.max(runs.c.id)).group_by(runs.c.connection, runs.c.object)))
        ).all()}
        held = dict(((row[0], row[1]), row[2]) for row in session.execute(
            select(quarantine.c.connection, quarantine.c.object, func.count()).group_by(
                quarantine.c.connection, quarantine.c.object)).all())
    if not rows:
        console.print("Nothing synced yet: run `kpi-agent sync`.")
        return 0
    table = Table(title="Sync status")
    for column in ("Connection", "Object", "Cursor", "Last run", "Status", "Last records", "Synced", "Quarantined",
                   "Last error"):
        table.add_column(column)
    unknown = sorted({row.connection for row in rows} - set(config.connections))
    for row in rows:
        run = latest.get((row.connection, row.object))
        table.add_row(row.connection, row.object, _cursor_text(row), _when(run.started_at if run else None),
                      f"[{_style(run.status)}]{run.status}[/]" if run else "", str(run.records) if run else "",
                      str(row.records_synced), str(held.get((row.connection, row.object), 0)),
                      (row.last_error or "")[:200])
    console.print(table)
    if unknown:
        console.print(f"[yellow]![/] the cache holds connections no longer configured: {', '.join(unknown)}")
    return 0


def _cursor_text(row: Any) -> str:
    if not row.initial_load_done:
        if row.bulk_job_id:
            return f"first load: bulk job {row.bulk_job_id}" + (f" at {row.bulk_locator}" if row.bulk_locator else "")
        if row.initial_last_id:
            return f"first load: after {row.initial_last_id}"
        return "first load: not started"
    stamp = _when(row.stamp)
    return f"{stamp}" + (f" after {row.last_id}" if row.last_id else "")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


# -- config check --online ----------------------------------------------------------------------------------


def preflight(console: Console, config: AgentConfig, host: PluginHost) -> int:
    """Log in to each connection, check objects, fields and budget; print what is missing and how to fix it."""
    registry = _registry(console, host)
    if not config.connections:
        console.print("No [connections.*] to check.")
        return 0
    problems_found = False
    table = Table(title="Online check")
    for column in ("Connection", "Result", "Fix"):
        table.add_column(column)
    for name, section in config.connections.items():
        spec = registry.get(section.kind)
        if spec is None:
            table.add_row(name, f"[red]no plugin provides connector kind {section.kind!r}[/]",
                          "install or enable the plugin that provides it")
            problems_found = True
            continue
        problems = _preflight_one(spec, name, section, config)
        problems_found = problems_found or bool(problems)
        if not problems:
            table.add_row(name, "[green]logged in; objects and fields readable[/]", "")
        for what, fix in problems:
            table.add_row(name, f"[red]{what}[/]", fix)
    console.print(table)
    return 1 if problems_found else 0


def _preflight_one(spec: ConnectorSpec, name: str, section: Any, config: AgentConfig) -> list[tuple[str, str]]:
    try:
        connector = spec.factory(name, section, sync_context(config, name))
    except Exception as error:  # a factory that cannot start is the finding
        return [(f"the {spec.title} connector could not start: {error}", "check the connection's keys")]
    try:
        return [(problem.what, problem.fix) for problem in connector.preflight()]
    except Exception as error:  # preflight must report, never crash the check
        return [(f"preflight failed: {type(error).__name__}: {error}", "run with log_level = 'DEBUG' for details")]
    finally:
        connector.close()
