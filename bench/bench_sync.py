"""Benchmark (not a test): a first load from the Salesforce or HubSpot sandbox into SQLite and PostgreSQL,
beside a baseline that only fetches and parses the same pages (the ceiling), then an incremental run after
1 % of the records users edit changed.

    .venv/bin/python bench/bench_sync.py --crm salesforce --sizes 10000,100000,1000000
    .venv/bin/python bench/bench_sync.py --crm hubspot --sizes 10000,30000,100000

Per size N (opportunities; the generator adds ~5 activities per deal and the accounts, contacts, leads,
line items, stage history and contracts around them):

- the world is generated once (cached in ``--workdir``) and served by the sandbox in its own process,
  with its API limits off, so the sandbox's own work does not compete with the measured process;
- ``baseline``: the same requests as the connector's first load, the pages fetched and their JSON parsed,
  nothing more.  Salesforce: the same SOQL (Bulk API 2.0 past ``bulk_threshold``, REST below).  HubSpot:
  the same id-ordered searches, property-history batch reads and association reads, with the client-side
  search pacing off (the sandbox's rate limits are off too: the ceiling is the sandbox, not the limits);
- ``sync``: ``SyncEngine`` first load of every object into a fresh cache (one per database);
- ``incremental``: 1 % of the records of every table a CRM user edits (accounts, contacts, leads, deals,
  line items, activities, contracts) change, then a sync.  Stage history is a log the CRM appends to and
  never edits, so the changed share of all records is somewhat below 1 %; the exact count is printed.

Before each measured part, the machine settles what the part before it left to do: the kernel writes the
dirty pages out (``sync``; a 1M load leaves gigabytes), and PostgreSQL ends its checkpoint (``CHECKPOINT``).
A scheduled incremental run starts minutes after the load before it, when both are long done.  (It did not
explain why an incremental run right after a 1M load took 14.1 s and the same run later on a copy of that
cache 9.0 s: with settling, the 1M ratio stayed at 0.017.)

Each measured part runs in its own process and reports its peak RSS, so memory can be compared across
sizes.  "× ceiling" is the baseline's time over the sync's time for the same pages (a HubSpot deal becomes
several cache rows, so records per second alone would flatter it).  Results print as a table and are
written as JSON to ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

PG_ADMIN = os.environ.get("KPI_AGENT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BULK_THRESHOLD = 10_000


# -- the sandbox, served from its own process ------------------------------------------------------------------


def serve(world_path: str, crm: str) -> None:
    """``--serve WORLD``: print the connection config as one JSON line, serve until stdin closes."""
    from connectors.sandbox.testing import running_sandbox
    from connectors.sandbox.world.store import World

    with running_sandbox(World.open(Path(world_path)), serve_as=crm, limits_scale=0) as sandbox:
        print(json.dumps(tomllib.loads(sandbox.config_snippet())["connections"][crm]), flush=True)
        sys.stdin.read()


def start_sandbox(world_path: Path, crm: str) -> tuple[subprocess.Popen, dict[str, Any]]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(world_path), "--crm", crm],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        raise RuntimeError("the sandbox process did not start")
    return process, json.loads(line)


# -- the measured parts (each in its own process) ----------------------------------------------------------------


def worker(kind: str, crm: str, connection: dict[str, Any], database_url: str | None) -> dict[str, Any]:
    from agent.config import parse_config
    from agent.sync.cli import sync_context

    if crm == "salesforce":
        connection = {**connection, "bulk_threshold": BULK_THRESHOLD}
    config = parse_config({"agent": {"home_currency": "USD", "timezone": "UTC"}, "connections": {crm: connection}})
    context = sync_context(config, crm, warn=lambda message: None)
    _import_everything_a_sync_uses(crm, database_url)
    started = time.perf_counter()
    if kind == "baseline":
        records = baseline(config, context) if crm == "salesforce" else hubspot_baseline(config, context)
    else:
        records = sync(config, context, database_url or "", crm)
    seconds = time.perf_counter() - started
    return {"records": records, "seconds": seconds, "rss_mb": peak_rss_mb()}


def _import_everything_a_sync_uses(crm: str, database_url: str | None) -> None:
    """Imports before the clock starts: the agent is a long-running process that pays them once, not per
    scheduled run (about 2.5 s on the machine of the README's figures, which would otherwise be most of an
    incremental run at 10k deals).  With them the client libraries, which the connectors import on first
    use, and the parts of them imported on first call (simple-salesforce brings zeep and lxml; hubspot-api-
    client imports each API's package when it is first reached): about 0.3 s, a tenth of an incremental run
    at 100k deals, was spent importing inside the measured time.  Only the driver of the worker's own
    database: psycopg would add 20 MB to a SQLite worker's peak RSS."""
    if database_url and database_url.startswith("postgresql"):
        import psycopg  # noqa: F401
        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
    elif database_url:
        import sqlite3  # noqa: F401

        import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401

    import agent.db  # noqa: F401
    import agent.migrations  # noqa: F401
    import agent.sync.engine  # noqa: F401
    import agent.sync.writer  # noqa: F401

    if crm == "hubspot":
        import hubspot.crm.associations.v4  # noqa: F401
        import hubspot.crm.objects  # noqa: F401
        import hubspot.crm.owners  # noqa: F401
        import hubspot.crm.pipelines  # noqa: F401
        import hubspot.crm.properties  # noqa: F401

        import connectors.hubspot  # noqa: F401
        import connectors.hubspot.keyset  # noqa: F401
    else:
        import simple_salesforce  # noqa: F401
        import simple_salesforce.bulk2  # noqa: F401

        import connectors.salesforce.bulk  # noqa: F401
        import connectors.salesforce.connector  # noqa: F401


def peak_rss_mb() -> float:
    """This process's peak RSS.  Not ``ru_maxrss``: Linux carries it across ``execve``, so a child would
    report the parent's size at fork; ``VmHWM`` belongs to the process image that did the work."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def connector_for(config: Any, context: Any, crm: str) -> tuple[Any, Any]:
    """The built-in connector and its spec; HubSpot's client-side search pacing off (the limits are off)."""
    if crm == "hubspot":
        from connectors.hubspot import HubSpotConnector, register_connectors

        specs: list[Any] = []
        register_connectors(specs.append)
        return HubSpotConnector("hubspot", config.connections["hubspot"], search_interval=0), specs[0]
    from connectors.salesforce import SPEC
    from connectors.salesforce.connector import SalesforceConnector

    return SalesforceConnector("salesforce", config.connections["salesforce"], context), SPEC


def sync(config: Any, context: Any, database_url: str, crm: str) -> int:
    from agent.db import create_database
    from agent.sync.engine import SyncEngine
    from agent.sync.writer import WriterSettings

    db = create_database(database_url)
    connector, spec = connector_for(config, context, crm)
    try:
        outcomes = SyncEngine(db).sync_connection(connector, spec, context, WriterSettings(crm))
    finally:
        connector.close()
        db.dispose()
    failed = [outcome for outcome in outcomes if outcome.status != "ok"]
    if failed:
        raise RuntimeError(f"sync did not finish: {failed}")
    return sum(outcome.records for outcome in outcomes)


def baseline(config: Any, context: Any) -> int:
    """The same queries and pages as the connector's first load, fetched and parsed, nothing written."""
    from connectors.salesforce.bulk import BulkReader
    from connectors.salesforce.connector import SalesforceConnector
    from connectors.salesforce.objects import OBJECTS

    connector = SalesforceConnector("salesforce", config.connections["salesforce"], context)
    client = connector.client
    records = 0
    try:
        for sobject in OBJECTS:
            if sobject.name == "Pipeline":
                continue
            fields = connector.fields_for(sobject)
            if fields is None:
                continue
            conditions = connector._filters(sobject, first_load=not sobject.snapshot)
            soql = connector._soql(sobject, fields, conditions, order=None)
            total = client.count(connector._soql(sobject, ["COUNT()"], conditions, order=None), what="count")
            if not sobject.snapshot and total > BULK_THRESHOLD:
                reader = BulkReader(client, sobject.name, connector._types.get(sobject.name, {}),
                                    max_records=connector.bulk_page_size, poll_seconds=0.5)
                job = reader.start(soql)
                reader.wait(job)
                for page in reader.pages(job, None):
                    records += len(page.records)
            else:
                ordered = soql if sobject.snapshot else soql + " ORDER BY Id"
                for page in client.query_pages(ordered, include_deleted=False, what="baseline"):
                    records += len(page.get("records", []))
    finally:
        connector.close()
    return records


def hubspot_baseline(config: Any, context: Any) -> int:
    """The connector's first-load requests (id-ordered searches; for deals the property-history batch reads;
    the association reads and, for contacts, their first deals' dates), fetched and parsed, nothing built."""
    from connectors.hubspot import keyset
    from connectors.hubspot.objects import FULL_REFRESH, INCREMENTAL

    connector, _ = connector_for(config, context, "hubspot")
    records = 0
    try:
        for name in connector.objects():
            if name in FULL_REFRESH:
                records += sum(len(page.records) for page in connector.fetch(name, _fresh_cursor(), context))
                continue
            spec = INCREMENTAL[name]
            since = context.now - context.initial_lookback if spec.lookback else None
            for results, _last_id, _last in keyset.by_id(connector._searcher(spec), connector._query(spec), 0, since):
                if spec.history and results:
                    results = connector._with_history(spec, results)
                connector._related(spec, [str(raw["id"]) for raw in results if raw.get("id")])
                records += len(results)
    finally:
        connector.close()
    return records


def _fresh_cursor() -> Any:
    from agent.sync.connector import Cursor

    return Cursor()


def settle(database_url: str | None = None) -> None:
    """The write-back the part before left (see the module's docstring), done before the next one starts."""
    if database_url and database_url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("CHECKPOINT"))
        finally:
            engine.dispose()
    os.sync()


def run_worker(kind: str, crm: str, connection: dict[str, Any], database_url: str | None = None) -> dict[str, Any]:
    settle(database_url)
    arguments = [sys.executable, __file__, "--worker", kind, "--crm", crm, "--connection", json.dumps(connection)]
    if database_url:
        arguments += ["--database", database_url]
    done = subprocess.run(arguments, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- databases ----------------------------------------------------------------------------------------------------


def fresh_database(kind: str, workdir: Path, label: str) -> tuple[str, Any]:
    """A new empty database URL and a function that removes it."""
    if kind == "sqlite":
        path = workdir / f"cache-{label}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"kpi_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), drop


# -- the world ------------------------------------------------------------------------------------------------------


def world_for(size: int, workdir: Path, seed: int) -> Path:
    """The generated world, made once in a child process (the measuring parent stays small)."""
    path = workdir / f"world-{size}-{seed}.sqlite"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")  # renamed when complete: an interrupted run leaves no half world
        partial.unlink(missing_ok=True)
        code = ("from pathlib import Path; from connectors.sandbox.world.generate import generate_world; "
                f"generate_world(Path({str(partial)!r}), seed={seed}, size={size})")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        partial.rename(path)
        print(f"  generated a world of {size:,} deals in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def change_one_percent(world_path: Path, seed: int) -> int:
    """1 % of the records of each table users edit get a new value and a new stamp; done in a child
    process, like everything that handles a big world."""
    code = f"""
import random
from pathlib import Path
from connectors.sandbox.world.store import World
world = World.open(Path({str(world_path)!r}))
rng = random.Random({seed})
changed = 0
for table, column, value in (("accounts", "industry", "Changed"), ("contacts", "last_name", "Changed"),
                             ("leads", "company", "Changed Ltd"), ("opportunities", "amount", 1234.5),
                             ("line_items", "quantity", 7), ("activities", "subject", "changed"),
                             ("contracts", "term_months", 24)):
    ids = [row[0] for row in world.execute(f"SELECT id FROM {{table}} WHERE deleted = 0")]
    for record_id in rng.sample(ids, max(1, len(ids) // 100)):
        world.update(table, record_id, {{column: value}})
        changed += 1
print(changed)
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return int(done.stdout.strip())


# -- the run --------------------------------------------------------------------------------------------------------


def bench_size(size: int, crm: str, databases: list[str], workdir: Path, seed: int) -> dict[str, Any]:
    print(f"{crm} size {size:,}", flush=True)
    source = world_for(size, workdir, seed)
    results: dict[str, Any] = {"crm": crm, "size": size}
    results["baseline"] = served(source, workdir, crm, lambda connection: run_worker("baseline", crm, connection))
    print(f"  baseline: {_line(results['baseline'])}", flush=True)
    for kind in databases:
        results.update(served(source, workdir, crm, lambda connection, kind=kind: first_and_incremental(
            kind, crm, connection, workdir, seed, size)))
    return results


def served(source: Path, workdir: Path, crm: str, measure: Any) -> Any:
    """``measure(connection)`` against a fresh copy of the world: each database's first load meets the world
    as generated, not one that an earlier database's incremental part changed (whose changes would then
    fall in this load's overlap window and be read again by its incremental run)."""
    world_path = workdir / f"serving-{crm}.sqlite"
    shutil.copyfile(source, world_path)
    sandbox, connection = start_sandbox(world_path, crm)
    try:
        return measure(connection)
    finally:
        if sandbox.stdin:
            sandbox.stdin.close()
        sandbox.wait()
        world_path.unlink(missing_ok=True)


def first_and_incremental(kind: str, crm: str, connection: dict[str, Any], workdir: Path, seed: int,
                          size: int) -> dict[str, Any]:
    url, drop = fresh_database(kind, workdir, f"{crm}-{size}")
    try:
        first = run_worker("sync", crm, connection, url)
        print(f"  {kind} first load: {_line(first)}", flush=True)
        changed = change_one_percent(workdir / f"serving-{crm}.sqlite", seed + 1)
        incremental = run_worker("sync", crm, connection, url)
        print(f"  {kind} incremental after 1 % ({changed:,} records changed): {_line(incremental)}", flush=True)
        return {f"{kind}_first": first, f"{kind}_changed": changed, f"{kind}_incremental": incremental}
    finally:
        drop()


def _line(result: dict[str, Any]) -> str:
    rate = result["records"] / result["seconds"] if result["seconds"] else 0
    return (f"{result['records']:,} records in {result['seconds']:.1f} s = {rate:,.0f} rec/s, "
            f"peak RSS {result['rss_mb']:.0f} MB")


def report(all_results: list[dict[str, Any]], databases: list[str]) -> str:
    lines = ["| CRM | deals | baseline: records, s | " + " | ".join(
        f"{kind}: rec/s (× ceiling) | {kind} peak RSS | {kind} incremental (× first load)" for kind in databases)
        + " | baseline peak RSS |", "|" + "---|" * (3 + 3 * len(databases) + 1)]
    for result in all_results:
        base = result["baseline"]
        cells = [result.get("crm", "salesforce"), f"{result['size']:,}",
                 f"{base['records']:,} in {base['seconds']:.1f} s"]
        for kind in databases:
            first, incremental = result[f"{kind}_first"], result[f"{kind}_incremental"]
            rate = first["records"] / first["seconds"]
            cells += [f"{rate:,.0f} ({base['seconds'] / first['seconds']:.2f})", f"{first['rss_mb']:.0f} MB",
                      f"{incremental['seconds']:.1f} s ({incremental['seconds'] / first['seconds']:.3f}), "
                      f"{incremental['records']:,} rec"]
        cells.append(f"{base['rss_mb']:.0f} MB")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crm", choices=("salesforce", "hubspot"), default="salesforce")
    parser.add_argument("--sizes", default="10000,100000", help="opportunities per world, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workdir", default="/tmp/kpi-bench-sync")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.crm)
        return
    if options.worker:
        print(json.dumps(worker(options.worker, options.crm, json.loads(options.connection), options.database)))
        return
    workdir = Path(options.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    databases = [name.strip() for name in options.databases.split(",") if name.strip()]
    results = []
    for size in options.sizes.split(","):
        results.append(bench_size(int(size), options.crm, databases, workdir, options.seed))
        # written after each size: a long run interrupted later still leaves its figures
        (workdir / f"results-{options.crm}.json").write_text(json.dumps(results, indent=2))
    print()
    print(report(results, databases))


if __name__ == "__main__":
    main()
