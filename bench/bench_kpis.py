"""Benchmark the KPI engine against hand-written SQL, on SQLite and PostgreSQL (not a test).

    .venv/bin/python bench/bench_kpis.py --opportunities 100000 --db sqlite --db postgresql

For each database: generate a cache of N opportunities, 5N activities, N/2 leads, N/20 contracts (rows
written straight into the cache with executemany), then, each in a fresh process so peak RSS is its own:

- ``engine-all``: every built-in KPI, for every rep, team and the org, 12 monthly periods (first run:
  snapshots and history included), values written to ``kpi_value``;
- ``engine-core`` and ``baseline-core``: the same twelve event KPIs (revenue, deals_won, avg_deal_size,
  win_rate, opportunity_win_ratio, calls, emails, meetings, demos, proposals, call_to_meeting, lead_flow)
  through the engine, and through five hand-written grouped queries with the roll-up done in Python;
- ``refresh``: after 1% of the opportunities changed, a normal run (the running period and the
  ``recompute_periods`` before it).

Prints wall time and peak RSS per step.  PostgreSQL: a scratch database ``kpi_bench`` is (re)created on
``--pg-admin`` (default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from agent.db import Database, create_database  # noqa: E402
from agent.models import Account, Activity, Contract, Lead, Opportunity, Pipeline, Rep, Stage, Team  # noqa: E402

AT = date(2024, 12, 15)
CORE = (
    "revenue",
    "deals_won",
    "avg_deal_size",
    "win_rate",
    "opportunity_win_ratio",
    "calls",
    "emails",
    "meetings",
    "demos",
    "proposals",
    "call_to_meeting",
    "lead_flow",
)
REPS, TEAMS, CHUNK = 200, 20, 20_000
STAGES = (("Prospecting", 0.1, False, False), ("Qualification", 0.2, False, False), ("Proposal", 0.5, False, False),
          ("Negotiation", 0.8, False, False), ("Closed Won", 1.0, True, True), ("Closed Lost", 0.0, True, False))


def _instant(rng: random.Random, start: datetime, days: float) -> datetime:
    return start + timedelta(seconds=rng.random() * days * 86400)


def generate(db: Database, opportunities: int, seed: int = 1) -> None:
    """Write the synthetic cache; instants are aware UTC (the cache's datetime type wants them)."""
    rng = random.Random(seed)
    begin = datetime(2023, 9, 1, tzinfo=UTC)
    span_days = (datetime(2024, 12, 15, tzinfo=UTC) - begin).days
    with db.write_connection() as connection:
        connection.execute(insert(Team.__table__), [{"connection": "config", "source_id": f"t{i}", "name": f"Team {i}"} for i in range(TEAMS)])
        connection.execute(insert(Rep.__table__), [
            {"email": f"rep{i}@example.com", "name": f"Rep {i}", "active": i % 25 != 0, "team_id": i % TEAMS + 1} for i in range(REPS)
        ])
        connection.execute(insert(Pipeline.__table__), [{"connection": "bench", "source_id": "p", "name": "Sales"}])
        connection.execute(insert(Stage.__table__), [
            {"connection": "bench", "source_id": f"s{i}", "pipeline_id": 1, "name": name, "sort_order": i, "probability": p, "is_closed": c, "is_won": w}
            for i, (name, p, c, w) in enumerate(STAGES, start=1)
        ])
        accounts = max(1, opportunities // 10)
        _bulk(connection, Account.__table__, ({"connection": "bench", "source_id": f"a{i}", "region": rng.choice(("EU", "APAC", "US")), "owner_rep_id": rng.randint(1, REPS)} for i in range(accounts)))
        _bulk(connection, Opportunity.__table__, (_opportunity(rng, i, begin, span_days, accounts) for i in range(opportunities)))
        _bulk(connection, Activity.__table__, (_activity(rng, i, begin, span_days, opportunities) for i in range(5 * opportunities)))
        _bulk(connection, Lead.__table__, (_lead(rng, i, begin, span_days) for i in range(opportunities // 2)))
        _bulk(connection, Contract.__table__, (_contract(rng, i, accounts) for i in range(opportunities // 20)))


def _bulk(connection: Any, table: Any, rows: Any) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            connection.execute(insert(table), batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)


def _opportunity(rng: random.Random, i: int, begin: datetime, span: int, accounts: int) -> dict[str, Any]:
    created = _instant(rng, begin, span)
    close = (created + timedelta(days=rng.randint(5, 120))).date()
    closed = close < AT and rng.random() < 0.85
    won = closed and rng.random() < 0.4
    stage = (5 if won else 6) if closed else rng.randint(1, 4)
    amount = round(rng.uniform(1_000, 50_000), 2)
    return {
        "connection": "bench", "source_id": f"o{i}", "owner_rep_id": rng.randint(1, REPS) if rng.random() > 0.02 else None,
        "account_id": rng.randint(1, accounts), "pipeline_id": 1, "stage_id": stage, "amount": amount, "amount_home": amount,
        "probability": STAGES[stage - 1][1], "deal_type": rng.choice(("new_business", "new_business", "upsell", "renewal")),
        "lead_source": rng.choice(("web", "event", "referral")), "created_at": created, "close_date": close,
        "closed_at": datetime(close.year, close.month, close.day, tzinfo=UTC) + timedelta(days=1) if closed else None,
        "is_closed": closed, "is_won": won, "is_deleted": False,
    }


def _activity(rng: random.Random, i: int, begin: datetime, span: int, opportunities: int) -> dict[str, Any]:
    at = _instant(rng, begin, span)
    kind = rng.choice(("call", "call", "email", "email", "meeting", "demo", "proposal", "task"))
    return {
        "connection": "bench", "source_id": f"x{i}", "kind": kind, "status": "completed" if rng.random() < 0.9 else "cancelled",
        "direction": "outbound" if rng.random() < 0.8 else "inbound", "owner_rep_id": rng.randint(1, REPS), "occurred_at": at,
        "created_at": at - timedelta(days=rng.randint(0, 7)), "opportunity_id": rng.randint(1, opportunities), "is_deleted": False,
    }


def _lead(rng: random.Random, i: int, begin: datetime, span: int) -> dict[str, Any]:
    created = _instant(rng, begin, span)
    return {"connection": "bench", "source_id": f"l{i}", "owner_rep_id": rng.randint(1, REPS), "created_at": created,
            "lead_source": rng.choice(("web", "event")), "is_deleted": False,
            "mql_at": created + timedelta(days=1) if rng.random() < 0.3 else None}


def _contract(rng: random.Random, i: int, accounts: int) -> dict[str, Any]:
    start = date(2023, 1, 1) + timedelta(days=rng.randint(0, 650))
    return {"connection": "bench", "source_id": f"c{i}", "account_id": rng.randint(1, accounts), "start_date": start,
            "end_date": start + timedelta(days=365), "monthly_value_home": rng.uniform(100, 2000), "is_deleted": False}


# --- steps (each in its own process) ---------------------------------------------------------------


def _config(history: int = 12) -> Any:
    from agent.testing.kpi import kpi_config

    return kpi_config("UTC", kpis={"history_periods": history})


def step_engine(url: str, keys: tuple[str, ...] | None, recompute_all: bool) -> dict[str, Any]:
    from agent.kpi import collect_kpis, compute_kpis
    from agent.testing.kpi import kpi_host

    db, host, config = Database(url), kpi_host(), _config()
    registry = collect_kpis(host, config)
    if keys:
        registry.definitions = {key: entry for key, entry in registry.definitions.items() if key in keys}
    started = time.perf_counter()
    result = compute_kpis(db, config, host, at=AT, recompute_all=recompute_all, registry=registry)
    return {"seconds": time.perf_counter() - started, "values": result.values_written, "failed": result.failed}


BASELINE = {
    "by_close": """
        SELECT p.start_date, o.owner_rep_id, SUM(CASE WHEN o.is_won THEN o.amount_home ELSE 0 END),
               SUM(CASE WHEN o.is_won THEN 1 ELSE 0 END), SUM(CASE WHEN o.is_closed THEN 1 ELSE 0 END)
        FROM opportunity o JOIN period p ON p.grain = 'month' AND o.close_date >= p.start_date AND o.close_date < p.end_date
        WHERE p.start_date >= :first AND p.start_date <= :last AND NOT o.is_deleted AND o.is_closed GROUP BY 1, 2""",
    "by_created": """
        SELECT p.start_date, o.owner_rep_id, COUNT(*), SUM(CASE WHEN o.is_won THEN 1 ELSE 0 END)
        FROM opportunity o JOIN period p ON p.grain = 'month' AND o.created_at >= p.start_utc AND o.created_at < p.end_utc
        WHERE p.start_date >= :first AND p.start_date <= :last AND NOT o.is_deleted GROUP BY 1, 2""",
    "activities": """
        SELECT p.start_date, a.owner_rep_id,
          SUM(CASE WHEN a.kind = 'call' AND a.status = 'completed' AND a.direction = 'outbound' THEN 1 ELSE 0 END),
          SUM(CASE WHEN a.kind = 'email' AND a.status = 'completed' AND a.direction = 'outbound' THEN 1 ELSE 0 END),
          SUM(CASE WHEN a.kind = 'meeting' AND a.status IN ('completed', 'scheduled') AND a.occurred_at <= :now THEN 1 ELSE 0 END),
          SUM(CASE WHEN a.kind = 'demo' AND a.status IN ('completed', 'scheduled') AND a.occurred_at <= :now THEN 1 ELSE 0 END),
          SUM(CASE WHEN a.kind = 'proposal' AND a.status = 'completed' THEN 1 ELSE 0 END)
        FROM activity a JOIN period p ON p.grain = 'month' AND a.occurred_at >= p.start_utc AND a.occurred_at < p.end_utc
        WHERE p.start_date >= :first AND p.start_date <= :last AND NOT a.is_deleted GROUP BY 1, 2""",
    "booked": """
        SELECT p.start_date, a.owner_rep_id, COUNT(*)
        FROM activity a JOIN period p ON p.grain = 'month' AND a.created_at >= p.start_utc AND a.created_at < p.end_utc
        WHERE p.start_date >= :first AND p.start_date <= :last AND NOT a.is_deleted AND a.kind IN ('meeting', 'demo') GROUP BY 1, 2""",
    "leads": """
        SELECT p.start_date, l.owner_rep_id, COUNT(*)
        FROM lead l JOIN period p ON p.grain = 'month' AND l.created_at >= p.start_utc AND l.created_at < p.end_utc
        WHERE p.start_date >= :first AND p.start_date <= :last AND NOT l.is_deleted GROUP BY 1, 2""",
}


def step_baseline(url: str) -> dict[str, Any]:
    """Five grouped queries (period × rep), then teams and org summed in Python: the same twelve KPIs."""
    db = Database(url)
    now = datetime(2024, 12, 16, tzinfo=UTC)
    started = time.perf_counter()
    with db.engine.connect() as connection:
        teams = dict(connection.execute(text("SELECT id, team_id FROM rep")).all())
        params = {"first": date(2024, 1, 1), "last": date(2024, 12, 1), "now": now}
        totals: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0] * 12)
        offsets = {"by_close": 0, "by_created": 3, "activities": 5, "booked": 10, "leads": 11}
        for name, sql in BASELINE.items():
            for row in connection.execute(text(sql), params):
                period, rep, values = row[0], row[1], row[2:]
                scopes = [("org", None), ("rep", rep), ("team", teams.get(rep))] if rep else [("org", None), ("unassigned", None)]
                for scope in scopes:
                    if scope[1] is None and scope[0] == "team":
                        continue
                    bucket = totals[(period, *scope)]
                    for index, value in enumerate(values):
                        bucket[offsets[name] + index] += float(value or 0)
    kpis = {key: _baseline_values(numbers) for key, numbers in totals.items()}
    return {"seconds": time.perf_counter() - started, "values": len(kpis) * len(CORE)}


def _baseline_values(n: list[float]) -> dict[str, float | None]:
    def div(a: float, b: float, scale: float = 1.0) -> float | None:
        return a / b * scale if b else None

    return {"revenue": n[0], "deals_won": n[1], "avg_deal_size": div(n[0], n[1]), "win_rate": div(n[1], n[2], 100),
            "opportunity_win_ratio": div(n[4], n[3], 100), "calls": n[5], "emails": n[6], "meetings": n[7], "demos": n[8],
            "proposals": n[9], "call_to_meeting": div(n[10], n[5], 100), "lead_flow": n[11]}


def step_refresh(url: str) -> dict[str, Any]:
    db = Database(url)
    with db.write_connection() as connection:
        connection.execute(text("UPDATE opportunity SET amount_home = amount_home * 1.1 WHERE id % 100 = 0"))
    return step_engine(url, None, False)


def run_step(url: str, step: str) -> dict[str, Any]:
    """One step in a fresh interpreter: its peak RSS is its own."""
    output = subprocess.run([sys.executable, __file__, "--step", step, "--url", url], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _urls(kind: str, admin: str) -> str:
    if kind == "sqlite":
        path = Path("/tmp/kpi_bench.sqlite")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS kpi_bench WITH (FORCE)"))
        connection.execute(text("CREATE DATABASE kpi_bench"))
    engine.dispose()
    return admin.rsplit("/", 1)[0] + "/kpi_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--pg-admin", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--step")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.step:
        steps = {
            "engine-all": lambda: step_engine(args.url, None, True),
            "engine-core": lambda: step_engine(args.url, CORE, True),
            "baseline-core": lambda: step_baseline(args.url),
            "refresh": lambda: step_refresh(args.url),
        }
        result = steps[args.step]()
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result, default=str))
        return
    for kind in args.db or ["sqlite"]:
        url = _urls(kind, args.pg_admin)
        started = time.perf_counter()
        generate(create_database(url), args.opportunities)
        print(f"{kind}: generated {args.opportunities:,} opportunities, {5 * args.opportunities:,} activities in {time.perf_counter() - started:.1f}s")
        for step in ("engine-all", "engine-core", "baseline-core", "refresh"):
            result = run_step(url, step)
            print(f"  {step:14} {result['seconds']:8.2f} s  peak RSS {result['peak_rss_mb']:7.1f} MB  values {result['values']:,}"
                  + (f"  FAILED {result['failed']}" if result.get("failed") else ""))


if __name__ == "__main__":
    main()
