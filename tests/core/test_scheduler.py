"""The scheduled loop: a real APScheduler firing the real jobs against the sandbox."""

from __future__ import annotations

import sqlite3
import threading
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from agent.config import parse_config
from agent.scheduler import build_scheduler, next_runs
from connectors.sandbox.runner import serve

JAKARTA = ZoneInfo("Asia/Jakarta")


def test_jobs_fire_on_the_cron_strings_in_the_org_timezone() -> None:
    config = parse_config({"agent": {"timezone": "Asia/Jakarta"},
                           "schedule": {"sync": "*/15 * * * *", "kpis": "30 7 * * MON-FRI"}})
    scheduler = build_scheduler(config, BackgroundScheduler())
    # Friday 6 March 2026, 08:01 in Jakarta: the sync fires at 08:15; the KPIs skip the weekend and fire on
    # Monday 9 March at 07:30 Jakarta time, which is 00:30 UTC.
    runs = next_runs(scheduler, datetime(2026, 3, 6, 8, 1, tzinfo=JAKARTA))
    assert runs["sync"] == datetime(2026, 3, 6, 8, 15, tzinfo=JAKARTA)
    assert runs["kpis"] == datetime(2026, 3, 9, 7, 30, tzinfo=JAKARTA)
    assert runs["kpis"].astimezone(ZoneInfo("UTC")).hour == 0
    scheduler.start(paused=True)  # job defaults apply once the scheduler holds the jobs
    try:
        job = scheduler.get_job("sync")
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 900)
    finally:
        scheduler.shutdown(wait=False)


def test_the_scheduler_runs_sync_then_kpis_against_the_sandbox(tmp_path: Path) -> None:
    with serve(seed=3, size="tiny", serve_as="split", data_dir=tmp_path / "sandbox") as sandbox:
        text = (f'[agent]\ntimezone = "{sandbox.world.timezone}"\n'
                f'database_url = "sqlite:///{tmp_path / "cache.sqlite"}"\n\n{sandbox.config_snippet()}')
        config = parse_config(tomllib.loads(text))
        finished: list[JobExecutionEvent] = []
        job_done = threading.Event()

        def record(event: JobExecutionEvent) -> None:
            finished.append(event)
            job_done.set()

        scheduler = build_scheduler(config, BackgroundScheduler())
        scheduler.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        for job_id in ("sync", "kpis"):  # fire each now instead of at its cron time, the sync first
            job_done.clear()
            scheduler.modify_job(job_id, next_run_time=datetime.now(JAKARTA))
            assert job_done.wait(300), f"the {job_id} job did not finish"
        scheduler.shutdown(wait=True)
        served = sandbox.world.execute("SELECT COUNT(*) AS n FROM opportunities WHERE NOT deleted")[0]["n"]
    assert [(event.job_id, event.exception, event.retval) for event in finished] == [
        ("sync", None, 0), ("kpis", None, 0)]
    with sqlite3.connect(tmp_path / "cache.sqlite") as cache:
        assert cache.execute("SELECT COUNT(*) FROM opportunity WHERE NOT is_deleted").fetchone()[0] == served
        assert cache.execute("SELECT COUNT(*) FROM kpi_run WHERE status = 'ok'").fetchone()[0] == 1
