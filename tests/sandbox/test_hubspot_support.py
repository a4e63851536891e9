"""A small hand-made world for the HubSpot sandbox tests, its fixtures, and unit tests of the codecs.

The expected values in the HubSpot tests are worked out by hand from `WORLD` below: ids are the world id
plus the object's fixed base (deals 3,000,000,000, contacts 1,000,000,000, companies 2,000,000,000,
line items 4,000,000,000, products 5,000,000,000, engagements 6,000,000,000; owners 40,000,000, users
9,000,000, teams 30,000,000).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.hubspot.codecs import (
    BoolCodec,
    EnumCodec,
    IdCodec,
    InstantCodec,
    NumberCodec,
    format_instant,
    format_number,
)
from connectors.sandbox.testing import make_world
from connectors.sandbox.world import World

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

SPECS = Path("/work/shared/api-specs/hubspot")
DEAL = 3_000_000_000
CONTACT = 1_000_000_000
COMPANY = 2_000_000_000
LINE_ITEM = 4_000_000_000
PRODUCT = 5_000_000_000
ENGAGEMENT = 6_000_000_000
OWNER = 40_000_000
USER = 9_000_000
TEAM = 30_000_000


def _deal(deal_id: int, name: str, stage_id: int, updated_at: str, **extra: Any) -> dict[str, Any]:
    record = {"id": deal_id, "name": name, "account_id": 1, "owner_rep_id": 1, "pipeline_id": 1,
              "stage_id": stage_id, "amount": 100.0 * deal_id, "close_date": "2026-03-31",
              "created_at": "2025-10-01T08:00:00.000Z", "updated_at": updated_at}
    return record | extra


# Twelve deals: ids 1-12; deal 3 archived; deal 12 belongs to a Salesforce team's rep (split serving).
DEALS = [
    _deal(1, "Acme Expansion", 4, "2026-01-15T10:00:00.000Z", amount=1500.0, deal_type="upsell",
          close_date="2026-01-15", is_closed=True, is_won=True, lead_source="Referral",
          created_at="2025-11-01T09:00:00.000Z", forecast_category="Closed"),
    _deal(2, "Acme Euro Deal", 2, "2026-01-20T10:00:00.000Z", amount=1000.0, currency="EUR", amount_home=1100.0,
          deal_type="new_business", lead_source="Web"),
    _deal(3, "Archived Deal", 1, "2026-01-05T10:00:00.000Z", deleted=True, deleted_at="2026-02-01T12:00:00.000Z"),
    _deal(4, "Beta Renewal", 6, "2026-01-03T10:00:00.000Z", pipeline_id=2, deal_type="renewal", amount=800.0),
    _deal(5, "Euro Without Home", 3, "2026-01-04T10:00:00.000Z", amount=900.0, currency="EUR",
          deal_type="cross_sell"),
    _deal(6, "Gamma Lost", 5, "2026-01-06T10:00:00.000Z", is_closed=True, is_won=False, deal_type="Partner Deal"),
    _deal(7, "Delta One", 1, "2026-01-07T10:00:00.000Z"),
    _deal(8, "Delta Two", 1, "2026-01-08T10:00:00.000Z"),
    _deal(9, "Delta Three", 2, "2026-01-09T10:00:00.000Z"),
    _deal(10, "Delta Four", 2, "2026-01-10T10:00:00.000Z", amount=None),
    _deal(11, "Delta Five", 3, "2026-01-11T10:00:00.000Z"),
    _deal(12, "West Coast Deal", 2, "2026-01-12T10:00:00.000Z", owner_rep_id=3, account_id=2),
]

WORLD: dict[str, list[dict[str, Any]]] = {
    "teams": [{"id": 1, "name": "East", "region": "EMEA", "crm": "hubspot"},
              {"id": 2, "name": "West", "region": "AMER", "crm": "salesforce"}],
    "reps": [
        {"id": 1, "name": "Ann Lee", "email": "ann@example.com", "team_id": 1,
         "created_at": "2025-01-01T00:00:00.000Z"},
        {"id": 2, "name": "Bob Stone", "email": "bob@example.com", "team_id": 1, "active": False,
         "created_at": "2025-01-02T00:00:00.000Z"},
        {"id": 3, "name": "Cara Diaz", "email": "cara@example.com", "team_id": 2,
         "created_at": "2025-01-03T00:00:00.000Z"},
    ],
    "accounts": [
        {"id": 1, "name": "Acme", "owner_rep_id": 1, "industry": "COMPUTER_SOFTWARE",
         "created_at": "2025-06-01T00:00:00.000Z"},
        {"id": 2, "name": "Globex", "owner_rep_id": 3, "created_at": "2025-06-02T00:00:00.000Z"},
    ],
    "contacts": [
        {"id": 1, "account_id": 1, "owner_rep_id": 1, "first_name": "Jane", "last_name": "Roe",
         "email": "jane@acme.example", "lead_source": "Web", "lifecycle_stage": "customer",
         "mql_at": "2025-10-01T12:00:00.000Z", "sql_at": "2025-10-15T12:00:00.000Z",
         "customer_at": "2026-01-15T10:00:00.000Z", "created_at": "2025-09-01T00:00:00.000Z"},
        {"id": 2, "account_id": 1, "owner_rep_id": 1, "first_name": "John", "last_name": "Poe",
         "lifecycle_stage": "lead", "created_at": "2025-09-02T00:00:00.000Z"},
    ],
    "leads": [{"id": 1, "owner_rep_id": 1, "last_name": "Roe", "first_name": "Jane", "status": "Closed - Converted",
               "converted_contact_id": 1, "converted_opportunity_id": 1, "converted_account_id": 1,
               "created_at": "2025-08-01T00:00:00.000Z"}],
    "pipelines": [{"id": 1, "name": "Sales Pipeline", "display_order": 0},
                  {"id": 2, "name": "Renewals", "display_order": 1}],
    "stages": [
        {"id": 1, "pipeline_id": 1, "name": "Appointment Scheduled", "sort_order": 1, "probability": 0.2,
         "forecast_category": "Pipeline"},
        {"id": 2, "pipeline_id": 1, "name": "Qualified To Buy", "sort_order": 2, "probability": 0.4,
         "forecast_category": "Pipeline"},
        {"id": 3, "pipeline_id": 1, "name": "Negotiation", "sort_order": 3, "probability": 0.8,
         "forecast_category": "Commit"},
        {"id": 4, "pipeline_id": 1, "name": "Closed Won", "sort_order": 4, "probability": 1.0, "is_closed": True,
         "is_won": True, "forecast_category": "Closed"},
        {"id": 5, "pipeline_id": 1, "name": "Closed Lost", "sort_order": 5, "probability": 0.0, "is_closed": True,
         "forecast_category": "Omitted"},
        {"id": 6, "pipeline_id": 2, "name": "Renewal Due", "sort_order": 1, "probability": 0.5},
        {"id": 7, "pipeline_id": 2, "name": "Renewed", "sort_order": 2, "probability": 1.0, "is_closed": True,
         "is_won": True},
    ],
    "products": [{"id": 1, "name": "Platform", "sku": "PLT-1", "list_price": 1000.0, "unit_cost": 300.0},
                 {"id": 2, "name": "Support", "sku": "SUP-1", "list_price": 200.0}],
    "opportunities": DEALS,
    "line_items": [
        {"id": 1, "opportunity_id": 1, "product_id": 1, "quantity": 2.0, "list_price": 1000.0, "unit_price": 900.0,
         "discount_pct": 10.0, "total_price": 1800.0, "recurring_term_months": 12, "billing_frequency": "annually",
         "created_at": "2025-11-02T00:00:00.000Z"},
        {"id": 2, "opportunity_id": 1, "product_id": 2, "quantity": 1.0, "list_price": 200.0, "unit_price": 150.0,
         "total_price": 150.0, "created_at": "2025-11-02T00:00:00.000Z"},
    ],
    "stage_history": [
        {"id": 1, "opportunity_id": 1, "stage_id": 1, "amount": 1200.0, "entered_at": "2025-11-01T09:00:00.000Z"},
        {"id": 2, "opportunity_id": 1, "stage_id": 2, "amount": 1200.0, "entered_at": "2025-12-01T09:00:00.000Z"},
        {"id": 3, "opportunity_id": 1, "stage_id": 4, "amount": 1500.0, "entered_at": "2026-01-15T10:00:00.000Z"},
    ],
    "activities": [
        {"id": 1, "kind": "call", "subject": "Intro call", "status": "completed", "direction": "outbound",
         "owner_rep_id": 1, "occurred_at": "2026-01-10T15:00:00.000Z", "contact_id": 1, "opportunity_id": 1,
         "account_id": 1, "duration_seconds": 300, "outcome": "Connected", "subtype": "Discovery",
         "created_at": "2026-01-10T15:05:00.000Z"},
        {"id": 2, "kind": "email", "subject": "Re: pricing", "status": "completed", "direction": "inbound",
         "owner_rep_id": 1, "occurred_at": "2026-01-11T09:00:00.000Z", "contact_id": 1, "opportunity_id": 1,
         "created_at": "2026-01-11T09:00:00.000Z"},
        {"id": 3, "kind": "meeting", "subject": "Demo", "subtype": "Demo", "status": "no_show",
         "owner_rep_id": 1, "occurred_at": "2026-01-12T14:00:00.000Z", "duration_seconds": 1800,
         "opportunity_id": 1, "created_at": "2026-01-05T09:00:00.000Z"},
        {"id": 4, "kind": "task", "subject": "Call back", "subtype": "Call", "status": "open", "owner_rep_id": 1,
         "occurred_at": "2026-01-20T09:00:00.000Z", "opportunity_id": 2, "created_at": "2026-01-13T09:00:00.000Z"},
        {"id": 5, "kind": "note", "subject": "Budget approved", "owner_rep_id": 1,
         "occurred_at": "2026-01-14T09:00:00.000Z", "opportunity_id": 1, "created_at": "2026-01-14T09:00:00.000Z"},
    ],
    "currency_rates": [{"id": 1, "iso_code": "USD", "rate": 1.0}, {"id": 2, "iso_code": "EUR", "rate": 0.9}],
}


def build_world(tmp_path: Path) -> World:
    return make_world(tmp_path, WORLD, home_currency="USD", now="2026-03-01T00:00:00.000Z")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


def settled_log(sandbox: Any, count: int) -> list[Any]:
    """The request log once it holds `count` entries: the server records a request just after answering
    it, so the client may see the answer a moment before the entry exists (waits at most 2 s)."""
    deadline = time.monotonic() + 2.0
    while len(sandbox.log.entries()) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return sandbox.log.entries()


def body_of(error: Any) -> dict[str, Any]:
    """The JSON body of a client ApiException."""
    return json.loads(error.body)


# -- codecs: the strings HubSpot sends -----------------------------------------------------------------


def test_numbers_are_written_as_hubspot_writes_them() -> None:
    assert format_number(1500.0) == "1500"
    assert format_number(1500.5) == "1500.5"
    assert format_number(0.2) == "0.2"
    assert format_number(None) is None
    assert NumberCodec(scale=1000.0).to_hubspot(300) == "300000"
    assert NumberCodec(scale=1000.0).stored_scalar("300000") == 300.0


def test_instants_are_millisecond_utc_iso() -> None:
    assert format_instant("2026-01-15") == "2026-01-15T00:00:00.000Z"
    assert format_instant("2026-01-15T10:00:00+02:00") == "2026-01-15T08:00:00.000Z"
    # epoch milliseconds, as search filters send them: 1768471200000 = 2026-01-15T10:00:00Z
    assert InstantCodec().stored_scalar("1768471200000") == "2026-01-15T10:00:00.000Z"


def test_enum_codec_maps_many_to_one_and_passes_unknown_values_through() -> None:
    codec = EnumCodec(mapping={"upsell": "existingbusiness", "cross_sell": "existingbusiness",
                               "new_business": "newbusiness"})
    assert codec.to_hubspot("Upsell") == "existingbusiness"
    assert codec.to_hubspot("Partner Deal") == "Partner Deal"
    # a stored "existingbusiness" passes through as itself, so it matches too
    assert sorted(codec.stored_values("existingbusiness")) == ["cross_sell", "existingbusiness", "upsell"]
    assert codec.stored_values("Partner Deal") == ["partner deal"]


def test_id_and_bool_codecs() -> None:
    assert IdCodec(base=OWNER).to_hubspot(3) == "40000003"
    assert IdCodec(base=OWNER).stored_scalar("40000003") == 3
    assert BoolCodec().to_hubspot(1) == "true"
    assert BoolCodec().stored_scalar("FALSE") == 0
