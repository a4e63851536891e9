"""Fixtures for the connector tests: the sandbox on loopback, a hand-made sales world, and sync helpers.

Every connector test talks to the sandbox over real HTTPS with the real client library.  Retry waits are
milliseconds (``FAST_RETRIES``; ``KPI_AGENT_RETRY_SCALE`` in sync subprocesses) so a storm of 503s passes
quickly; the sequence of requests, which the sandbox logs, is what the tests check.  The environment of this
machine sets
``REQUESTS_CA_BUNDLE``: every test therefore also proves that the configured ``ca_bundle`` wins over it.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

# Loopback only, never through a proxy (inherited by the sync subprocesses too).
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

from agent.config import AgentConfig, parse_config  # noqa: E402
from agent.db import Database  # noqa: E402
from agent.sync.cli import sync_context  # noqa: E402
from agent.sync.engine import ObjectOutcome, SyncEngine  # noqa: E402
from agent.sync.retry import policy_for  # noqa: E402
from agent.sync.writer import WriterSettings, cache_table  # noqa: E402
from connectors.sandbox.testing import RunningSandbox, make_world  # noqa: E402
from connectors.sandbox.tls import ensure_test_ca  # noqa: E402
from connectors.sandbox.world.store import World  # noqa: E402

FAST_RETRIES = {"base_delay": 0.001, "max_delay": 0.01, "max_retry_after": 0.01}
DEALS = 450  # three REST pages of 200 (Salesforce's smallest batch size), the last one short
PAGE_SIZE = 200
EUR_RATE = 0.8  # EUR per USD


@pytest.fixture(scope="session")
def sandbox_tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("connector-tls")
    ensure_test_ca(directory)
    return directory


# -- the world ------------------------------------------------------------------------------------------------


def deal(number: int) -> dict[str, Any]:
    """Deal ``number`` of the sales world; every value follows from the number, so tests can say it by hand.

    Stage: every 10th is Closed Won, every 10th + 5 Closed Lost, the rest Prospecting.  Amount 10 × number,
    in EUR for multiples of 7 (amount_home = amount / 0.8).  Owner Ann (odd) or Bob (even).  Each deal has
    its own modification stamp, one second apart.
    """
    stage = 2 if number % 10 == 0 else 3 if number % 10 == 5 else 1
    euro = number % 7 == 0
    amount = 10.0 * number
    return {
        "id": number, "name": f"Deal {number}", "account_id": number % 3 + 1, "owner_rep_id": 1 if number % 2 else 2,
        "pipeline_id": 1, "stage_id": stage, "amount": amount, "currency": "EUR" if euro else "USD",
        "amount_home": round(amount / EUR_RATE, 2) if euro else amount, "deal_type": "new_business",
        "lead_source": "Web", "close_date": "2026-06-30", "is_closed": stage != 1, "is_won": stage == 2,
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": f"2026-02-01T{number // 3600:02d}:{number // 60 % 60:02d}:{number % 60:02d}.000Z",
    }


def sales_world(tmp_path: Path, *, deals: int = DEALS, extra_deals: Sequence[dict[str, Any]] = (),
                **tables: list[dict[str, Any]]) -> World:
    """A small world with every kind of record (see ``deal`` for the deals)."""
    world: dict[str, list[dict[str, Any]]] = {
        "teams": [{"id": 1, "name": "East", "region": "EMEA"}],
        "reps": [{"id": 1, "name": "Ann Lee", "email": "ann@example.com", "team_id": 1, "region": "EMEA"},
                 {"id": 2, "name": "Bob Ray", "email": "bob@example.com", "team_id": 1, "manager_id": 1}],
        "accounts": [{"id": n, "name": f"Account {n}", "owner_rep_id": 1, "industry": "Retail",
                      "created_at": "2025-12-01T00:00:00.000Z"} for n in (1, 2, 3)],
        "contacts": [{"id": 1, "account_id": 1, "owner_rep_id": 2, "first_name": "Cy", "last_name": "Doe",
                      "email": "cy@acme.example", "created_at": "2026-03-10T10:00:00.000Z"}],
        "leads": [{"id": 1, "owner_rep_id": 2, "last_name": "Doe", "company": "Acme", "status": "Closed - Converted",
                   "converted_at": "2026-03-10T10:00:00.000Z", "converted_contact_id": 1, "converted_account_id": 1,
                   "created_at": "2026-03-01T09:00:00.000Z", "updated_at": "2026-03-10T10:00:00.000Z"},
                  {"id": 2, "owner_rep_id": 1, "last_name": "Poe", "company": "Zeta", "status": "Working - Contacted",
                   "created_at": "2026-03-02T09:00:00.000Z"}],
        "pipelines": [{"id": 1, "name": "Sales"}],
        "stages": [{"id": 1, "pipeline_id": 1, "name": "Prospecting", "sort_order": 1, "probability": 0.1},
                   {"id": 2, "pipeline_id": 1, "name": "Closed Won", "sort_order": 2, "probability": 1.0,
                    "is_closed": True, "is_won": True, "forecast_category": "Closed"},
                   {"id": 3, "pipeline_id": 1, "name": "Closed Lost", "sort_order": 3, "probability": 0.0,
                    "is_closed": True, "forecast_category": "Omitted"}],
        "currency_rates": [{"id": 1, "iso_code": "EUR", "rate": EUR_RATE}],
        "opportunities": [deal(number) for number in range(1, deals + 1)] + list(extra_deals),
        "line_items": [{"id": 1, "opportunity_id": 10, "quantity": 2, "list_price": 30.0, "unit_price": 25.0,
                        "total_price": 50.0, "created_at": "2026-01-05T00:00:00.000Z"}],
        "stage_history": [{"id": 1, "opportunity_id": 10, "stage_id": 1, "entered_at": "2026-01-01T00:00:00.000Z"},
                          {"id": 2, "opportunity_id": 10, "stage_id": 2, "amount": 100.0,
                           "entered_at": "2026-03-01T12:00:00.000Z"}],
        "activities": [
            # on lead 1 before it converted; Salesforce shows it on the contact (the world's contact_id)
            {"id": 1, "kind": "call", "status": "completed", "direction": "outbound", "owner_rep_id": 2,
             "contact_id": 1, "occurred_at": "2026-03-05T10:00:00.000Z", "created_at": "2026-03-05T10:00:00.000Z",
             "duration_seconds": 120},
            # on the contact after the conversion: the contact's own
            {"id": 2, "kind": "email", "status": "completed", "owner_rep_id": 2, "contact_id": 1,
             "occurred_at": "2026-03-20T10:00:00.000Z", "created_at": "2026-03-20T10:00:00.000Z"},
            # a demo on deal 10
            {"id": 3, "kind": "meeting", "subtype": "Demo", "status": "completed", "owner_rep_id": 1,
             "opportunity_id": 10, "occurred_at": "2026-02-10T15:00:00.000Z", "duration_seconds": 1800,
             "created_at": "2026-02-01T15:00:00.000Z"},
            # an open task on lead 2
            {"id": 4, "kind": "task", "status": "open", "owner_rep_id": 1, "lead_id": 2,
             "occurred_at": "2026-03-25T00:00:00.000Z", "created_at": "2026-03-03T09:00:00.000Z"},
        ],
        "contracts": [{"id": 1, "account_id": 1, "opportunity_id": 10, "start_date": "2026-07-01",
                       "end_date": "2027-06-30", "term_months": 12, "status": "Activated", "monthly_value": 50.0,
                       "created_at": "2026-06-30T00:00:00.000Z"}],
    }
    world.update(tables)
    return make_world(tmp_path, world, now="2026-06-01T00:00:00.000Z", home_currency="USD", timezone="UTC")


# -- config and sync --------------------------------------------------------------------------------------------


def agent_config(sandbox: RunningSandbox, **overrides: Any) -> AgentConfig:
    """The agent's config for the sandbox's Salesforce, with ``overrides`` on the connection (``mapping``
    merged key by key)."""
    raw = tomllib.loads(sandbox.config_snippet())
    section = raw["connections"]["salesforce"]
    mapping = overrides.pop("mapping", None)
    section.update(overrides)
    if mapping:
        section["mapping"] = {**section.get("mapping", {}), **mapping}
    return parse_config({"agent": {"home_currency": "USD", "timezone": "UTC"}, "connections": raw["connections"]})


def config_toml(sandbox: RunningSandbox, database_url: str, **overrides: str) -> str:
    url = '"' + database_url.replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = ["[agent]", 'home_currency = "USD"', 'timezone = "UTC"', f"database_url = {url}", "",
             sandbox.config_snippet()]
    text_ = "\n".join(lines)
    for key, value in overrides.items():
        text_ = text_.replace("[connections.salesforce]\n", f"[connections.salesforce]\n{key} = {value}\n", 1)
    return text_


def run_salesforce(db: Database, config: AgentConfig, *, objects: Sequence[str] | None = None, full: bool = False,
                   warnings: list[str] | None = None, page_size: int = PAGE_SIZE, bulk_page_size: int = 200,
                   policy: Any = None, engine: SyncEngine | None = None,
                   reconcile_every: timedelta = timedelta(hours=24)) -> list[ObjectOutcome]:
    """One sync of the ``salesforce`` connection, in this process, as ``kpi-agent sync`` runs it."""
    from connectors.salesforce import SPEC
    from connectors.salesforce.connector import SalesforceConnector

    collected = warnings if warnings is not None else []
    context = sync_context(config, "salesforce", full=full, warn=collected.append)
    connector = SalesforceConnector("salesforce", config.connections["salesforce"], context,
                                    policy=policy or policy_for("salesforce", **FAST_RETRIES),
                                    page_size=page_size, bulk_page_size=bulk_page_size)
    settings = WriterSettings("salesforce", config.agent.home_currency, config.agent.timezone, config.teams)
    try:
        return (engine or SyncEngine(db)).sync_connection(connector, SPEC, context, settings, objects=objects,
                                                          reconcile_every=reconcile_every)
    finally:
        connector.close()


def by_object(outcomes: Sequence[ObjectOutcome]) -> dict[str, ObjectOutcome]:
    return {outcome.object: outcome for outcome in outcomes}


# -- reading the cache -------------------------------------------------------------------------------------------


def query(db: Database, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def snapshot(db: Database, table_name: str) -> list[dict[str, Any]]:
    """Every row of ``table_name`` with its integer keys replaced by what they point at (the parent's
    source_id, a rep's email), so two caches can be compared field by field."""
    table = cache_table(table_name)
    with db.session() as session:
        rows = [dict(row._mapping) for row in session.execute(table.select())]
        keys: dict[str, dict[int, str]] = {}
        for column in table.columns:
            for foreign_key in column.foreign_keys:
                parent = foreign_key.column.table
                label = parent.c.email if parent.name == "rep" else parent.c.source_id
                keys[column.name] = dict(session.execute(parent.select().with_only_columns(parent.c.id, label)).all())
    for row in rows:
        row.pop("id")
        for column, labels in keys.items():
            row[column] = labels.get(row[column]) if row[column] is not None else None
    return sorted(rows, key=lambda row: str(row.get("source_id")))


CRM_TABLES = ("team", "crm_user", "rep", "pipeline", "stage", "currency_rate", "account", "contact", "lead",
              "opportunity", "line_item", "stage_history", "activity", "contract")


def whole_cache(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {name: snapshot(db, name) for name in CRM_TABLES}


# -- a sync in a subprocess (for kills) ---------------------------------------------------------------------------


def child_sync(config_path: str) -> None:
    """``python -c 'from tests.connectors.conftest import child_sync; child_sync(PATH)'``: what
    ``kpi-agent sync`` does, in a process a test can SIGKILL."""
    from rich.console import Console

    from agent.config import load_config
    from agent.db import create_database
    from agent.plugins import create_plugin_manager
    from agent.sync.cli import run_sync

    config = load_config(Path(config_path))
    db = create_database(config.agent.database_url.get_secret_value())
    code = run_sync(Console(width=200), config, create_plugin_manager(), db)
    db.dispose()
    sys.exit(code)


def wait_for(condition: Callable[[], bool], what: str, limit_seconds: float = 60.0) -> None:
    """Poll until ``condition`` holds; the limit only keeps a broken test from hanging (not a timing check)."""
    import time

    deadline = time.monotonic() + limit_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def sandbox_factory(sandbox_tls_dir: Path) -> Iterator[Callable[..., Any]]:
    """``start(world, faults=...)`` → a running sandbox serving Salesforce over TLS, stopped after the test."""
    from contextlib import ExitStack

    from connectors.sandbox.testing import running_sandbox

    with ExitStack() as stack:
        def start(world: World, **options: Any) -> RunningSandbox:
            options.setdefault("tls_dir", sandbox_tls_dir)
            return stack.enter_context(running_sandbox(world, serve_as="salesforce", **options))

        yield start
