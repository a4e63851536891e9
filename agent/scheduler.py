"""``kpi-agent run``: the long-running loop on an APScheduler timetable.

Jobs fire on the ``[schedule]`` cron strings in the org timezone.  Each job runs at most once at a time
(a slow sync is never overlapped by the next one: the sync's own leases would refuse it anyway), a run
missed while the agent was down is run once on start-up within a grace time, and missed runs coalesce.
A job that fails is logged and retried at its next time; it never stops the agent.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from rich.console import Console

from agent.config import AgentConfig
from agent.db import create_database
from agent.plugins import create_plugin_manager

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 15 * 60


def sync_job(config: AgentConfig) -> int:
    """One scheduled sync of every connection; returns the sync's exit code."""
    from agent.sync.cli import run_sync

    host = create_plugin_manager(blocked=config.plugins.disabled)
    db = create_database(config.agent.database_url.get_secret_value())
    try:
        # A scheduled run has no terminal to draw progress bars on: a quiet console, the summary in the log.
        code = run_sync(Console(quiet=True), config, host, db)
    finally:
        db.dispose()
    log.info("scheduled sync finished with status %s", "ok" if code == 0 else f"exit {code}")
    return code


def kpis_job(config: AgentConfig) -> int:
    """Recompute the running period (and the few before it) for every enabled KPI."""
    from agent.kpi import collect_kpis, compute_kpis, load_reference_data

    host = create_plugin_manager(blocked=config.plugins.disabled)
    db = create_database(config.agent.database_url.get_secret_value())
    try:
        load_reference_data(db, config)
        result = compute_kpis(db, config, host, grain=config.kpis.grain, registry=collect_kpis(host, config),
                              dimensions=config.kpis.dimensions)
    finally:
        db.dispose()
    for key, error in result.failed.items():
        log.error("KPI %s failed in run %s: %s", key, result.run_id, error)
    log.info("KPI run %s: %s values written, %s failed", result.run_id, result.values_written, len(result.failed))
    return 0 if not result.failed else 1


JOBS: dict[str, Callable[[AgentConfig], int]] = {"sync": sync_job, "kpis": kpis_job}


def build_scheduler(config: AgentConfig, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    """A scheduler with one job per ``[schedule]`` entry that has a job today (digest and nudges come with
    Slack delivery)."""
    timezone = ZoneInfo(config.agent.timezone)
    scheduler = scheduler or BlockingScheduler(timezone=timezone)
    scheduler.configure(
        timezone=timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )
    for name, job in JOBS.items():
        trigger = CronTrigger.from_crontab(getattr(config.schedule, name), timezone=timezone)
        scheduler.add_job(_guarded(name, job), trigger, args=[config], id=name, name=name, replace_existing=True)
    return scheduler


def next_runs(scheduler: BaseScheduler, now: datetime) -> dict[str, datetime]:
    """When each job fires next, at or after ``now`` (for ``kpi-agent run``'s banner and for tests)."""
    return {job.id: job.trigger.get_next_fire_time(None, now) for job in scheduler.get_jobs()}


def run_forever(config: AgentConfig, console: Console) -> None:
    """Serve the timetable until SIGINT or SIGTERM; a running job finishes before the agent exits."""
    scheduler = build_scheduler(config)
    now = datetime.now(ZoneInfo(config.agent.timezone))
    for job_id, when in next_runs(scheduler, now).items():
        console.print(f"  {job_id:<6} next at {when:%Y-%m-%d %H:%M %Z}  ({getattr(config.schedule, job_id)})")
    console.print("Running; Ctrl-C or SIGTERM stops after the job in progress.")
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=True))
    try:
        scheduler.start()
    except KeyboardInterrupt:
        scheduler.shutdown(wait=True)


def _guarded(name: str, job: Callable[[AgentConfig], int]) -> Callable[[AgentConfig], Any]:
    def run(config: AgentConfig) -> int | None:
        try:
            return job(config)
        except Exception:  # one failed run must not stop the agent; it is retried at the next time
            log.exception("scheduled %s failed; it runs again at its next time", name)
            return None

    run.__name__ = f"{name}_job"
    return run
