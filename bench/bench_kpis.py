"""Benchmark the KPI engine against hand-written SQL, on SQLite and PostgreSQL (not a test).

    .venv/bin/python bench/bench_kpis.py --opportunities 100000 --db sqlite --db postgresql

For each database: generate a cache of N opportunities, 5N activities, N/2 leads, N/20 contracts (rows
written straight into the cache with executemany, then ANALYZE as the sync does after a big load), then,
each in a fresh process so peak RSS is its own:

- ``engine-all``: every built-in KPI, for every rep, team and the org, 12 monthly periods (first run:
  snapshots and history included), values written to ``kpi_value``;
- ``engine-core`` and ``baseline-core``: the same twelve event KPIs (revenue, deals_won, avg_deal_size,
  win_rate, opportunity_win_ratio, calls, emails, meetings, demos, proposals, call_to_meeting, lead_flow)
  through the engine (which also keeps its pipeline snapshots up to date), and by hand: five grouped
  queries, one per table and time column, the month as a CASE over literal bounds, the roll-up to teams,
  unassigned and org in Python, and the values (value, numerator, denominator) written to ``kpi_value``
  in one bulk insert (it runs once untimed first, so that, like engine-core after engine-all, the timed
  run replaces stored values).  The baseline's values are then compared with the engine's:
  ``mismatches`` must be 0.  The engine keeps pipeline snapshots only when a KPI may read them, so
  engine-core does not;
- ``refresh``: after 1% of the opportunities changed, a normal run (the running period and the
  ``recompute_periods`` before it).

Prints wall time and peak RSS per step, and the engine's phases (plan, snapshots, compute, store).
PostgreSQL: a scratch database ``kpi_bench`` is (re)created on ``--pg-admin`` (default
postgres@127.0.0.1:5432).
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

from sqlalchemy import bindparam, create_engine, insert, text  # noqa: E402

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
        connection.execute(insert(Team.__table__), [
            {"connection": "config", "source_id": f"t{i}", "name": f"Team {i}"} for i in range(TEAMS)
        ])
        connection.execute(insert(Rep.__table__), [
            {"email": f"rep{i}@example.com", "name": f"Rep {i}", "active": i % 25 != 0, "team_id": i % TEAMS + 1}
            for i in range(REPS)
        ])
        connection.execute(insert(Pipeline.__table__), [{"connection": "bench", "source_id": "p", "name": "Sales"}])
        connection.execute(insert(Stage.__table__), [
            {"connection": "bench", "source_id": f"s{i}", "pipeline_id": 1, "name": name, "sort_order": i,
             "probability": p, "is_closed": c, "is_won": w}
            for i, (name, p, c, w) in enumerate(STAGES, start=1)
        ])
        accounts = max(1, opportunities // 10)
        _bulk(connection, Account.__table__, (
            {"connection": "bench", "source_id": f"a{i}", "region": rng.choice(("EU", "APAC", "US")),
             "owner_rep_id": rng.randint(1, REPS)}
            for i in range(accounts)
        ))
        _bulk(connection, Opportunity.__table__, (
            _opportunity(rng, i, begin, span_days, accounts) for i in range(opportunities)
        ))
        _bulk(connection, Activity.__table__, (
            _activity(rng, i, begin, span_days, opportunities) for i in range(5 * opportunities)
        ))
        _bulk(connection, Lead.__table__, (_lead(rng, i, begin, span_days) for i in range(opportunities // 2)))
        _bulk(connection, Contract.__table__, (_contract(rng, i, accounts) for i in range(opportunities // 20)))
    with db.write_connection() as connection:
        # As the sync does after a big load: without statistics PostgreSQL plans every join as if the
        # tables were empty (and SQLite has none to go on either).
        connection.exec_driver_sql("ANALYZE")


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
        "connection": "bench", "source_id": f"o{i}",
        "owner_rep_id": rng.randint(1, REPS) if rng.random() > 0.02 else None,
        "account_id": rng.randint(1, accounts), "pipeline_id": 1, "stage_id": stage,
        "amount": amount, "amount_home": amount,
        "probability": STAGES[stage - 1][1],
        "deal_type": rng.choice(("new_business", "new_business", "upsell", "renewal")),
        "lead_source": rng.choice(("web", "event", "referral")), "created_at": created, "close_date": close,
        "closed_at": datetime(close.year, close.month, close.day, tzinfo=UTC) + timedelta(days=1) if closed else None,
        "is_closed": closed, "is_won": won, "is_deleted": False,
    }


def _activity(rng: random.Random, i: int, begin: datetime, span: int, opportunities: int) -> dict[str, Any]:
    at = _instant(rng, begin, span)
    kind = rng.choice(("call", "call", "email", "email", "meeting", "demo", "proposal", "task"))
    return {
        "connection": "bench", "source_id": f"x{i}", "kind": kind,
        "status": "completed" if rng.random() < 0.9 else "cancelled",
        "direction": "outbound" if rng.random() < 0.8 else "inbound",
        "owner_rep_id": rng.randint(1, REPS), "occurred_at": at,
        "created_at": at - timedelta(days=rng.randint(0, 7)), "opportunity_id": rng.randint(1, opportunities),
        "is_deleted": False,
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
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "values": result.values_written, "failed": result.failed,
            "phases": dict(result.seconds)}


MONTHS = tuple(date(2024, month, 1) for month in range(1, 13)) + (date(2025, 1, 1),)
"""The twelve computed periods (the bench's org timezone is UTC: months start at UTC midnight)."""


def _bucket(column: str, kind: str) -> str:
    """The month of ``column`` as a CASE over literal bounds (rows are already within the year)."""
    return "CASE " + " ".join(f"WHEN {column} < :{kind}{i + 1} THEN :d{i}" for i in range(12)) + " END"


def _in_year(column: str, kind: str, seq: str) -> str:
    return f"{seq}{column} >= :{kind}0 AND {seq}{column} < :{kind}12"


def baseline_sql(dialect: str) -> dict[str, str]:
    """The fewest grouped queries that give the twelve KPIs: one per table and time column.  Written as
    one would by hand after reading EXPLAIN: the month as a CASE (a range join with a period table
    scans the table once per month on SQLite), and on SQLite the year's range as ``+column`` (a year is
    most of the table: one sequential pass beats a row lookup per row through the time index)."""
    seq = "+" if dialect == "sqlite" else ""
    return {
        "by_close": f"""
            SELECT {_bucket("o.close_date", "d")}, o.owner_rep_id,
                   SUM(CASE WHEN o.is_won THEN o.amount_home ELSE 0 END),
                   SUM(CASE WHEN o.is_won THEN 1 ELSE 0 END), COUNT(*)
            FROM opportunity o WHERE {_in_year("o.close_date", "d", seq)} AND o.is_closed AND NOT o.is_deleted
            GROUP BY 1, 2""",
        "by_created": f"""
            SELECT {_bucket("o.created_at", "t")}, o.owner_rep_id, COUNT(*), SUM(CASE WHEN o.is_won THEN 1 ELSE 0 END)
            FROM opportunity o WHERE {_in_year("o.created_at", "t", seq)} AND NOT o.is_deleted GROUP BY 1, 2""",
        "activities": f"""
            SELECT {_bucket("a.occurred_at", "t")}, a.owner_rep_id,
              SUM(CASE WHEN a.kind = 'call' AND a.status = 'completed' AND a.direction = 'outbound' THEN 1 ELSE 0 END),
              SUM(CASE WHEN a.kind = 'email' AND a.status = 'completed' AND a.direction = 'outbound' THEN 1 ELSE 0 END),
              SUM(CASE WHEN a.kind = 'meeting' AND a.status IN ('completed', 'scheduled') AND a.occurred_at <= :now
                       THEN 1 ELSE 0 END),
              SUM(CASE WHEN a.kind = 'demo' AND a.status IN ('completed', 'scheduled') AND a.occurred_at <= :now
                       THEN 1 ELSE 0 END),
              SUM(CASE WHEN a.kind = 'proposal' AND a.status = 'completed' THEN 1 ELSE 0 END)
            FROM activity a WHERE {_in_year("a.occurred_at", "t", seq)} AND NOT a.is_deleted GROUP BY 1, 2""",
        "booked": f"""
            SELECT {_bucket("a.created_at", "t")}, a.owner_rep_id, COUNT(*)
            FROM activity a WHERE {_in_year("a.created_at", "t", "")} AND NOT a.is_deleted
              AND a.kind IN ('meeting', 'demo')
            GROUP BY 1, 2""",
        "leads": f"""
            SELECT {_bucket("l.created_at", "t")}, l.owner_rep_id, COUNT(*)
            FROM lead l WHERE {_in_year("l.created_at", "t", seq)} AND NOT l.is_deleted GROUP BY 1, 2""",
    }


def _baseline_params(dialect: str) -> dict[str, Any]:
    """Bounds as the database stores them: SQLite keeps instants as UTC text with microseconds."""
    instants = [datetime(m.year, m.month, m.day, tzinfo=UTC) for m in MONTHS]
    now = datetime(2024, 12, 16, tzinfo=UTC)
    if dialect == "sqlite":
        stored = lambda moment: moment.replace(tzinfo=None).isoformat(" ", "microseconds")  # noqa: E731
        params: dict[str, Any] = {f"t{i}": stored(moment) for i, moment in enumerate(instants)}
        params |= {f"d{i}": month.isoformat() for i, month in enumerate(MONTHS)}
        return params | {"now": stored(now)}
    return (
        {f"t{i}": moment for i, moment in enumerate(instants)}
        | {f"d{i}": month for i, month in enumerate(MONTHS)}
        | {"now": now}
    )


OFFSETS = {"by_close": 0, "by_created": 3, "activities": 5, "booked": 10, "leads": 11}


def step_baseline(url: str) -> dict[str, Any]:
    """Five grouped queries (month × rep), teams, unassigned and org summed in Python, the twelve KPIs
    (value, numerator, denominator) written to ``kpi_value`` as ``baseline_<kpi>`` in one bulk insert:
    the same work the engine does for them, minus its snapshots, planning and generality."""
    from agent.kpi.bulk import insert_rows
    from agent.models import KpiRun, KpiValue

    db = Database(url)
    started = time.perf_counter()
    with db.engine.connect() as connection:
        teams = dict(connection.execute(text("SELECT id, team_id FROM rep")).all())
        params = _baseline_params(db.dialect)
        totals: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0] * 12)
        for name, sql in baseline_sql(db.dialect).items():
            for row in connection.execute(text(sql), params):
                period, rep, values = _as_date(row[0]), row[1], row[2:]
                scopes = [("org", ""), ("rep", str(rep))] if rep else [("org", ""), ("unassigned", "")]
                if rep and teams.get(rep) is not None:
                    scopes.append(("team", str(teams[rep])))
                for scope in scopes:
                    bucket = totals[(period, *scope)]
                    for index, value in enumerate(values):
                        bucket[OFFSETS[name] + index] += float(value or 0)
    computed_at = datetime.now(UTC)
    with db.write_connection() as connection:
        run_id = connection.execute(
            insert(KpiRun.__table__).values(started_at=computed_at, status="ok")
        ).inserted_primary_key[0]
        keys = ", ".join(f"'baseline_{kpi}'" for kpi in CORE)
        connection.execute(
            text(f"DELETE FROM kpi_value WHERE grain = 'month' AND kpi IN ({keys}) AND period_start IN :months")
            .bindparams(bindparam("months", expanding=True)),
            {"months": [month.isoformat() if db.dialect == "sqlite" else month for month in MONTHS[:12]]},
        )
        rows = [
            (f"baseline_{kpi}", "month", key[0], _next_month(key[0]), key[1], key[2], "", "",
             *numbers, "ok", None, run_id, computed_at)
            for key, sums in totals.items()
            for kpi, numbers in _baseline_values(sums).items()
        ]
        written = insert_rows(connection, KpiValue.__table__, VALUE_COLUMNS, rows)
    return {"seconds": time.perf_counter() - started, "values": written}


VALUE_COLUMNS = ("kpi", "grain", "period_start", "period_end", "scope_kind", "scope_id", "dimension", "dimension_value",
                 "value", "numerator", "denominator", "status", "error", "run_id", "computed_at")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _next_month(start: date) -> date:
    return MONTHS[MONTHS.index(start) + 1]


def _baseline_values(n: list[float]) -> dict[str, tuple[float | None, float | None, float | None]]:
    """(value, numerator, denominator) as the engine stores them: totals keep their value as numerator."""
    def total(value: float) -> tuple[float | None, float | None, float | None]:
        return value, value, None

    def ratio(
        numerator: float, denominator: float, scale: float = 1.0
    ) -> tuple[float | None, float | None, float | None]:
        return (numerator / denominator * scale if denominator else None), numerator, denominator

    return {"revenue": total(n[0]), "deals_won": total(n[1]), "avg_deal_size": ratio(n[0], n[1]),
            "win_rate": ratio(n[1], n[2], 100), "opportunity_win_ratio": ratio(n[4], n[3], 100), "calls": total(n[5]),
            "emails": total(n[6]), "meetings": total(n[7]), "demos": total(n[8]), "proposals": total(n[9]),
            "call_to_meeting": ratio(n[10], n[5], 100), "lead_flow": total(n[11])}


def _compare_with_engine(db: Database) -> int:
    """Baseline values that differ from the engine's (engine-core ran before): must be 0.  Scopes the
    baseline has no row for (a rep with no data) must be 0 or no value in the engine."""
    with db.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT kpi, period_start, scope_kind, scope_id, value, numerator, denominator FROM kpi_value "
            "WHERE grain = 'month' AND dimension = '' AND status = 'ok'"
        )).all()
    engine = {
        (r[0], _as_date(r[1]), r[2], r[3]): r[4:] for r in rows if not r[0].startswith("baseline_") and r[0] in CORE
    }
    baseline = {
        (r[0][len("baseline_"):], _as_date(r[1]), r[2], r[3]): r[4:] for r in rows if r[0].startswith("baseline_")
    }
    # A scope with no data for a KPI may have a row of zeros on one side and none on the other (the
    # baseline gives the unassigned bucket every KPI; the engine every active rep and team).
    keys = set(engine) | set(baseline)
    return sum(1 for key in keys if not _same(engine.get(key), baseline.get(key)))


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return not any((a or b) or ())
    return all((x is None and y is None) or (x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(y)))
               for x, y in zip(a, b, strict=True))


def step_refresh(url: str) -> dict[str, Any]:
    db = Database(url)
    with db.write_connection() as connection:
        connection.execute(text("UPDATE opportunity SET amount_home = amount_home * 1.1 WHERE id % 100 = 0"))
    return step_engine(url, None, False)


def peak_rss_mb() -> float:
    """This process's peak RSS.  Not ``ru_maxrss``: Linux carries it across ``execve``, so a step would
    report the generating parent's size at fork; ``VmHWM`` belongs to the process image that did the work."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_step(url: str, step: str) -> dict[str, Any]:
    """One step in a fresh interpreter: its peak RSS is its own."""
    output = subprocess.run(
        [sys.executable, __file__, "--step", step, "--url", url], capture_output=True, text=True, check=True
    )
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
            "check": lambda: {"mismatches": _compare_with_engine(Database(args.url))},
            "refresh": lambda: step_refresh(args.url),
        }
        result = steps[args.step]()
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result, default=str))
        return
    for kind in args.db or ["sqlite"]:
        url = _urls(kind, args.pg_admin)
        started = time.perf_counter()
        generate(create_database(url), args.opportunities)
        print(f"{kind}: generated {args.opportunities:,} opportunities, {5 * args.opportunities:,} activities "
              f"in {time.perf_counter() - started:.1f}s")
        for step in ("engine-all", "engine-core", "baseline-core", "refresh"):
            if step == "baseline-core":
                # Once untimed, so that the timed run replaces stored values as engine-core does (after
                # engine-all): writing where deleted rows of the same keys lie costs PostgreSQL more.
                run_step(url, step)
            result = run_step(url, step)
            if step == "baseline-core":  # in its own process: the comparison's memory is not the baseline's
                result["mismatches"] = run_step(url, "check")["mismatches"]
            phases = "  ".join(f"{name} {seconds:.2f}" for name, seconds in result.get("phases", {}).items())
            print(f"  {step:14} {result['seconds']:8.2f} s  peak RSS {result['peak_rss_mb']:7.1f} MB"
                  f"  values {result['values']:,}"
                  + (f"  ({phases})" if phases else "")
                  + (f"  mismatches {result['mismatches']}" if "mismatches" in result else "")
                  + (f"  FAILED {result['failed']}" if result.get("failed") else ""))


if __name__ == "__main__":
    main()
