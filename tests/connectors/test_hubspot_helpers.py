"""A hand-made world for the HubSpot connector tests, helpers to run the connector against the sandbox,
and unit tests of the value parsers.

Every expected value in the HubSpot connector tests is worked out by hand from ``WORLD`` below.  HubSpot
ids are the world id plus the sandbox's fixed base per object (docs in ``connectors/sandbox/hubspot``):
deals 3,000,000,000, contacts 1,000,000,000, companies 2,000,000,000, line items 4,000,000,000, products
5,000,000,000, engagements 6,000,000,000; owners 40,000,000, teams 30,000,000.  The connector is driven
through the real ``hubspot.HubSpot`` client over HTTP to the sandbox; nothing is mocked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.config import HubSpotConnection
from agent.sync.connector import Cursor, Page, SyncContext
from agent.sync.engine import SyncEngine
from agent.sync.retry import RetryPolicy, policy_for
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.values import BadRecord, duration_months, local_date, parse_instant, parse_number
from connectors.sandbox.server import LoggedRequest
from connectors.sandbox.testing import RunningSandbox, make_world, running_sandbox
from connectors.sandbox.world import World

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

DEAL, CONTACT, COMPANY = 3_000_000_000, 1_000_000_000, 2_000_000_000
LINE_ITEM, PRODUCT, ENGAGEMENT = 4_000_000_000, 5_000_000_000, 6_000_000_000
OWNER, TEAM = 40_000_000, 30_000_000
TIMEZONE = "America/New_York"  # west of UTC: a date-only close date must not move back a day


def deal_id(world_id: int) -> str:
    return str(DEAL + world_id)


def _deal(world_id: int, name: str, updated_at: str, **extra: Any) -> dict[str, Any]:
    record = {"id": world_id, "name": name, "account_id": 1, "owner_rep_id": 1, "pipeline_id": 1, "stage_id": 1,
              "amount": 100.0, "close_date": "2026-03-31", "created_at": "2025-10-01T08:00:00.000Z",
              "updated_at": updated_at}
    return record | extra


WORLD: dict[str, list[dict[str, Any]]] = {
    "teams": [{"id": 1, "name": "East", "region": "EMEA", "crm": "hubspot"}],
    "reps": [
        {"id": 1, "name": "Ann Lee", "email": "ann@example.com", "team_id": 1,
         "created_at": "2025-01-01T00:00:00.000Z"},
        {"id": 2, "name": "Bob Stone", "email": "bob@example.com", "team_id": 1, "active": False,
         "created_at": "2025-01-02T00:00:00.000Z"},
    ],
    "accounts": [
        {"id": 1, "name": "Acme", "owner_rep_id": 1, "industry": "COMPUTER_SOFTWARE", "region": "EMEA",
         "created_at": "2025-06-01T00:00:00.000Z"},
        {"id": 2, "name": "Globex", "owner_rep_id": 2, "created_at": "2025-06-02T00:00:00.000Z"},
    ],
    "contacts": [
        {"id": 1, "account_id": 1, "owner_rep_id": 1, "first_name": "Jane", "last_name": "Roe",
         "email": "jane@acme.example", "lead_source": "Web", "lifecycle_stage": "customer",
         "mql_at": "2025-10-01T12:00:00.000Z", "sql_at": "2025-10-15T12:00:00.000Z",
         "customer_at": "2026-01-15T10:00:00.000Z", "created_at": "2025-09-01T00:00:00.000Z"},
        {"id": 2, "account_id": 1, "owner_rep_id": 1, "first_name": "John", "last_name": "Poe",
         "lifecycle_stage": "lead", "created_at": "2025-09-02T00:00:00.000Z"},
    ],
    "pipelines": [{"id": 1, "name": "Sales Pipeline", "display_order": 0},
                  {"id": 2, "name": "Renewals", "display_order": 1}],
    "stages": [
        {"id": 1, "pipeline_id": 1, "name": "Appointment Scheduled", "sort_order": 1, "probability": 0.2},
        {"id": 2, "pipeline_id": 1, "name": "Qualified To Buy", "sort_order": 2, "probability": 0.4},
        {"id": 3, "pipeline_id": 1, "name": "Closed Won", "sort_order": 3, "probability": 1.0, "is_closed": True,
         "is_won": True},
        {"id": 4, "pipeline_id": 1, "name": "Closed Lost", "sort_order": 4, "probability": 0.0, "is_closed": True},
        {"id": 5, "pipeline_id": 2, "name": "Renewal Due", "sort_order": 1, "probability": 0.5},
    ],
    "products": [{"id": 1, "name": "Platform", "sku": "PLT-1", "list_price": 1000.0}],
    "opportunities": [
        _deal(1, "Acme Expansion", "2026-01-15T10:00:00.000Z", stage_id=3, amount=1500.0, deal_type="upsell",
              close_date="2026-01-15", is_closed=True, is_won=True, created_at="2025-11-01T09:00:00.000Z"),
        _deal(2, "Euro Deal", "2026-01-20T10:00:00.000Z", stage_id=2, amount=1000.0, currency="EUR",
              amount_home=1100.0, deal_type="new_business"),
        _deal(3, "Partner A", "2026-01-06T10:00:00.000Z", deal_type="Partner Deal"),
        _deal(4, "Partner B", "2026-01-07T10:00:00.000Z", deal_type="Partner Deal"),
        _deal(5, "Reseller", "2026-01-08T10:00:00.000Z", deal_type="Reseller"),
        _deal(6, "Archived", "2026-01-05T10:00:00.000Z", deleted=True, deleted_at="2026-02-01T12:00:00.000Z"),
        _deal(7, "Renewal", "2026-01-09T10:00:00.000Z", pipeline_id=2, stage_id=5, deal_type="renewal"),
    ],
    "line_items": [
        {"id": 1, "opportunity_id": 1, "product_id": 1, "quantity": 2.0, "list_price": 1000.0, "unit_price": 900.0,
         "discount_pct": 10.0, "total_price": 1800.0, "recurring_term_months": 12, "billing_frequency": "annually",
         "created_at": "2025-11-02T00:00:00.000Z"},
    ],
    "stage_history": [
        {"id": 1, "opportunity_id": 1, "stage_id": 1, "amount": 1200.0, "entered_at": "2025-11-01T09:00:00.000Z"},
        {"id": 2, "opportunity_id": 1, "stage_id": 2, "amount": 1200.0, "entered_at": "2025-12-01T09:00:00.000Z"},
        {"id": 3, "opportunity_id": 1, "stage_id": 3, "amount": 1500.0, "entered_at": "2026-01-15T10:00:00.000Z"},
    ],
    "activities": [
        {"id": 1, "kind": "call", "subject": "Intro call", "status": "completed", "direction": "outbound",
         "owner_rep_id": 1, "occurred_at": "2026-01-10T15:00:00.000Z", "contact_id": 1, "opportunity_id": 1,
         "account_id": 1, "duration_seconds": 300, "outcome": "Connected", "subtype": "Discovery",
         "created_at": "2026-01-10T15:05:00.000Z"},
        {"id": 2, "kind": "email", "subject": "Re: pricing", "status": "completed", "direction": "inbound",
         "owner_rep_id": 1, "occurred_at": "2026-01-11T09:00:00.000Z", "contact_id": 1, "opportunity_id": 1,
         "created_at": "2026-01-11T09:00:00.000Z"},
        {"id": 3, "kind": "meeting", "subject": "Product demo", "subtype": "Demo", "status": "no_show",
         "owner_rep_id": 1, "occurred_at": "2026-01-12T14:00:00.000Z", "duration_seconds": 1800,
         "opportunity_id": 1, "created_at": "2026-01-05T09:00:00.000Z"},
        {"id": 4, "kind": "task", "subject": "Call back", "subtype": "Call", "status": "open", "owner_rep_id": 1,
         "occurred_at": "2026-01-20T09:00:00.000Z", "opportunity_id": 2, "created_at": "2026-01-13T09:00:00.000Z"},
        {"id": 5, "kind": "note", "subject": "Budget approved", "owner_rep_id": 1,
         "occurred_at": "2026-01-14T09:00:00.000Z", "opportunity_id": 1, "created_at": "2026-01-14T09:00:00.000Z"},
    ],
    "currency_rates": [{"id": 1, "iso_code": "USD", "rate": 1.0}, {"id": 2, "iso_code": "EUR", "rate": 0.9}],
}


def build_world(tmp_path: Path, tables: Mapping[str, list[dict[str, Any]]] | None = None) -> World:
    return make_world(tmp_path, tables if tables is not None else WORLD, home_currency="USD",
                      now="2026-03-01T00:00:00.000Z")


@contextmanager
def hubspot_sandbox(world: World, faults: str | None = None, **options: Any) -> Iterator[RunningSandbox]:
    """The world served as HubSpot over http, request budgets off unless ``limits_scale`` is given."""
    options.setdefault("limits_scale", 0)
    with running_sandbox(world, serve_as="hubspot", faults=faults, tls=False, **options) as sandbox:
        yield sandbox


def settled_log(sandbox: RunningSandbox) -> list[LoggedRequest]:
    """The request log once the last answer is in it: the sandbox records a request just after sending its
    answer, so the client may hold the answer a moment before the log shows it."""
    entries = sandbox.log.entries()
    for _ in range(40):
        time.sleep(0.025)
        latest = sandbox.log.entries()
        if len(latest) == len(entries):
            return latest
        entries = latest
    return entries


def statuses(sandbox: RunningSandbox, path_contains: str) -> list[int]:
    return [entry.status for entry in settled_log(sandbox) if path_contains in entry.path]


def fast_policy(**overrides: Any) -> RetryPolicy:
    """The connector's HubSpot policy with waits of milliseconds (the order of attempts is unchanged)."""
    settings: dict[str, Any] = {"base_delay": 0.001, "max_delay": 1.0, "max_retry_after": 0.05}
    return policy_for("hubspot", **(settings | overrides))


def config_for(sandbox: RunningSandbox, **overrides: Any) -> HubSpotConnection:
    assert sandbox.hubspot is not None
    fields: dict[str, Any] = {"kind": "hubspot", "base_url": sandbox.hubspot.base_url,
                              "access_token": sandbox.hubspot_token()}
    return HubSpotConnection.model_validate(fields | overrides)


def connector_for(sandbox: RunningSandbox, *, policy: RetryPolicy | None = None, page_size: int = 200,
                  **overrides: Any) -> HubSpotConnector:
    return HubSpotConnector("hubspot", config_for(sandbox, **overrides), policy=policy or fast_policy(),
                            search_interval=0.0, page_size=page_size)


class Warnings(list[str]):
    """Collects ``context.warn`` messages."""

    def __call__(self, message: str) -> None:
        self.append(message)


def context_for(warnings: Warnings | None = None, **overrides: Any) -> SyncContext:
    fields: dict[str, Any] = {"connection": "hubspot", "home_currency": "USD", "timezone": TIMEZONE,
                              "overlap": timedelta(minutes=5), "initial_lookback": timedelta(days=3650),
                              "warn": warnings if warnings is not None else Warnings()}
    return SyncContext(**(fields | overrides))


def fetch_all(connector: HubSpotConnector, object_name: str, context: SyncContext,
              cursor: Cursor | None = None) -> list[Page]:
    return list(connector.fetch(object_name, cursor or Cursor(), context))


def next_run(cursor: Cursor, context: SyncContext) -> Cursor:
    """The cursor the engine hands to the next run (steady state: stamp minus the overlap)."""
    return SyncEngine.starting_cursor(cursor, context)


def records_of(pages: list[Page]) -> list[Any]:
    return [record for page in pages for record in page.records]


def by_id(pages: list[Page]) -> dict[str, Any]:
    return {record.source_id: record for record in records_of(pages)}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# -- unit tests of the value parsers ---------------------------------------------------------------------


def test_instants_come_as_iso_or_epoch_milliseconds() -> None:
    assert parse_instant("2026-01-15T10:00:00.000Z", "x") == utc(2026, 1, 15, 10)
    assert parse_instant("1768471200000", "x") == utc(2026, 1, 15, 10)
    assert parse_instant("", "x") is None
    with pytest.raises(BadRecord, match="closedate 'soon' is not a date"):
        parse_instant("soon", "closedate")


def test_close_dates_are_local_dates_in_the_org_timezone() -> None:
    new_york = ZoneInfo(TIMEZONE)
    # a date-only value (midnight UTC) is its own date, even west of UTC
    assert local_date("2026-03-31T00:00:00.000Z", new_york, "closedate") == date(2026, 3, 31)
    # a real instant is read in the org timezone: 03:30 UTC is still the evening before in New York
    assert local_date("2026-03-31T03:30:00.000Z", new_york, "closedate") == date(2026, 3, 30)
    assert local_date("2026-03-31T03:30:00.000Z", ZoneInfo("Asia/Jakarta"), "closedate") == date(2026, 3, 31)


def test_amounts_that_are_not_finite_numbers_are_refused() -> None:
    assert parse_number("1500.50", "amount") == 1500.5
    assert parse_number(None, "amount") is None
    for bad in ("12,5OO", "inf", "nan"):
        with pytest.raises(BadRecord, match="amount"):
            parse_number(bad, "amount")


def test_billing_periods_are_months() -> None:
    assert duration_months("P12M") == 12
    assert duration_months("P1Y") == 12
    assert duration_months("P2Y6M") == 30
    assert duration_months("monthly") is None


def replace_cursor(cursor: Cursor, **changes: Any) -> Cursor:
    return replace(cursor, **changes)
