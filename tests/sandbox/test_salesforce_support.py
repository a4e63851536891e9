"""The hand-made world the Salesforce sandbox tests share, and the facts about it written out by hand.

Opportunities 1..450 follow simple rules, so each expected count below is worked out from the rules, not
read back from the sandbox:
- owner: rep 1 when id % 3 == 1, rep 2 when id % 3 == 2, rep 3 (team West, served by HubSpot when split)
  when id % 3 == 0; account 1 (Acme) for reps 1 and 2, account 2 (Globex) for rep 3
- stage: 1 + id % 4 (1 Prospecting, 2 Negotiation, 3 Closed Won, 4 Closed Lost)
- amount: 10 * id; currency EUR when id % 10 == 0 (amount_home = amount / 0.9, rounded to cents), else USD
- deal_type: new_business for odd ids, renewal for even ids, except id 7: "Partner Deal" (an odd value)
- close_date: 2026-02-(1 + id % 28); created 2026-01-01T00:00:00Z; updated 2026-02-01T00:00:00Z + id seconds
- deleted (recycle bin): 10, 20, 30
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.sandbox.testing import make_world
from connectors.sandbox.world import World

OPPORTUNITY_COUNT = 450
DELETED_OPPORTUNITIES = (10, 20, 30)
LIVE_OPPORTUNITIES = 447  # 450 - 3 deleted

# 18-character ids worked out by hand: prefix + pod "8d" + "0" + base-62 number (9 wide) + case suffix
OPP_1 = "0068d0000000001AAA"
OPP_3 = "0068d0000000003AAA"
OPP_450 = "0068d000000007GAAQ"  # 450 = 7 * 62 + 16 -> "7G"; G is upper case at place 5 of block 3 -> Q
REP_1 = "0058d0000000001AAA"
REP_2 = "0058d0000000002AAA"
CONTACT_1 = "0038d0000000001AAA"
LEAD_1 = "00Q8d0000000001EAA"  # Q is upper case at place 3 of block 1 -> bit 4 -> E
ACCOUNT_1 = "0018d0000000001AAA"


def _opportunity(number: int) -> dict[str, Any]:
    owner = {1: 1, 2: 2, 0: 3}[number % 3]
    euro = number % 10 == 0
    amount = 10.0 * number
    updated = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(seconds=number)
    return {
        "id": number, "name": f"Opp {number}", "account_id": 1 if owner in (1, 2) else 2, "owner_rep_id": owner,
        "pipeline_id": 1, "stage_id": 1 + number % 4, "amount": amount, "currency": "EUR" if euro else "USD",
        "amount_home": round(amount / 0.9, 2) if euro else amount,
        "deal_type": "Partner Deal" if number == 7 else ("new_business" if number % 2 else "renewal"),
        "lead_source": "Web", "close_date": f"2026-02-{1 + number % 28:02d}",
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "deleted": number in DELETED_OPPORTUNITIES,
    }


def world_tables() -> dict[str, list[dict[str, Any]]]:
    return {
        "teams": [{"id": 1, "name": "East", "region": "EMEA", "crm": "salesforce", "manager_rep_id": 1},
                  {"id": 2, "name": "West", "region": "AMER", "crm": "hubspot"}],
        "reps": [{"id": 1, "name": "Ann Lee", "email": "ann@example.com", "team_id": 1},
                 {"id": 2, "name": "Bob Stone", "email": "bob@example.com", "team_id": 1, "manager_id": 1},
                 {"id": 3, "name": "Cid Moss", "email": "cid@example.com", "team_id": 2, "active": False}],
        "accounts": [{"id": 1, "name": "Acme", "owner_rep_id": 1, "region": "EMEA", "industry": "Technology"},
                     {"id": 2, "name": "Globex", "owner_rep_id": 3, "region": "AMER"},
                     {"id": 3, "name": "Initech", "owner_rep_id": 2, "region": "EMEA", "deleted": True}],
        "contacts": [{"id": 1, "account_id": 1, "owner_rep_id": 1, "first_name": "Jane", "last_name": "Doe",
                      "email": "jane@acme.example", "lifecycle_stage": "customer"},
                     {"id": 2, "account_id": 1, "owner_rep_id": 2, "last_name": "Li"}],
        "leads": [{"id": 1, "owner_rep_id": 1, "first_name": "Lou", "last_name": "Open", "company": "Hooli",
                   "status": "Open - Not Contacted", "lead_source": "Web"},
                  {"id": 2, "owner_rep_id": 1, "last_name": "Won", "company": "Acme", "status": "Closed - Converted",
                   "converted_at": "2026-02-10T09:00:00.000Z", "converted_contact_id": 1,
                   "converted_account_id": 1, "converted_opportunity_id": 1},
                  {"id": 3, "owner_rep_id": 2, "last_name": "Odd", "company": "Pied Piper", "status": "Nurture"}],
        "pipelines": [{"id": 1, "name": "Sales"}],
        "stages": [
            {"id": 1, "pipeline_id": 1, "name": "Prospecting", "sort_order": 1, "probability": 0.1,
             "forecast_category": "Pipeline"},
            {"id": 2, "pipeline_id": 1, "name": "Negotiation", "sort_order": 2, "probability": 0.6,
             "forecast_category": "BestCase"},
            {"id": 3, "pipeline_id": 1, "name": "Closed Won", "sort_order": 3, "probability": 1.0,
             "is_closed": True, "is_won": True, "forecast_category": "Closed"},
            {"id": 4, "pipeline_id": 1, "name": "Closed Lost", "sort_order": 4, "probability": 0.0,
             "is_closed": True, "forecast_category": "Omitted"}],
        "products": [{"id": 1, "name": "Widget", "sku": "W-1", "family": "Hardware", "list_price": 100.0},
                     {"id": 2, "name": "Support", "sku": "S-1", "family": "Services", "list_price": 50.0}],
        "opportunities": [_opportunity(number) for number in range(1, OPPORTUNITY_COUNT + 1)],
        "line_items": [
            {"id": 1, "opportunity_id": 1, "product_id": 1, "quantity": 2, "list_price": 100.0, "unit_price": 90.0,
             "discount_pct": 10.0, "total_price": 180.0, "recurring_term_months": 12, "billing_frequency": "monthly"},
            {"id": 2, "opportunity_id": 1, "product_id": 2, "quantity": 1, "list_price": 50.0, "unit_price": 50.0,
             "total_price": 40.0},
            {"id": 3, "opportunity_id": 1, "product_id": 2, "quantity": 1, "list_price": 50.0, "unit_price": 50.0,
             "total_price": 50.0, "deleted": True}],
        "stage_history": [
            {"id": 1, "opportunity_id": 1, "stage_id": 1, "amount": 10.0, "probability": 0.1,
             "close_date": "2026-02-02", "entered_at": "2026-01-01T00:00:00.000Z"},
            {"id": 2, "opportunity_id": 1, "stage_id": 2, "amount": 10.0, "probability": 0.6,
             "close_date": "2026-02-02", "entered_at": "2026-01-15T10:00:00.000Z"}],
        "activities": [
            {"id": 1, "kind": "call", "subtype": "Call", "subject": "Intro call", "status": "completed",
             "direction": "outbound", "owner_rep_id": 1, "occurred_at": "2026-02-02T10:00:00.000Z",
             "contact_id": 1, "opportunity_id": 1, "account_id": 1, "duration_seconds": 300},
            {"id": 2, "kind": "email", "subject": "Hello", "status": "completed", "owner_rep_id": 2,
             "occurred_at": "2026-02-03T11:00:00.000Z", "lead_id": 1},
            {"id": 3, "kind": "meeting", "subtype": "Demo", "subject": "Demo", "status": "completed",
             "owner_rep_id": 1, "occurred_at": "2026-02-04T15:00:00.000Z", "contact_id": 1, "opportunity_id": 1,
             "duration_seconds": 3600},
            {"id": 4, "kind": "task", "subject": "Send quote", "status": "open", "owner_rep_id": 1,
             "occurred_at": "2026-03-05T09:00:00.000Z", "account_id": 1},
            {"id": 5, "kind": "note", "subject": "A note", "owner_rep_id": 1,
             "occurred_at": "2026-02-05T09:00:00.000Z"},
            {"id": 6, "kind": "call", "subject": "Deleted call", "status": "completed", "owner_rep_id": 2,
             "occurred_at": "2026-02-06T09:00:00.000Z", "deleted": True}],
        "contracts": [{"id": 1, "account_id": 1, "opportunity_id": 1, "start_date": "2026-02-01",
                       "end_date": "2027-01-31", "term_months": 12, "status": "Activated", "monthly_value": 100.0}],
        "currency_rates": [{"id": 1, "iso_code": "EUR", "rate": 0.9},
                           {"id": 2, "iso_code": "EUR", "rate": 0.8, "start_date": "2026-01-01"}],
    }


def build_world(directory: Path) -> World:
    return make_world(directory, world_tables(), home_currency="USD", timezone="UTC", now="2026-03-01T12:00:00Z")


def error_code(error: Exception) -> str:
    """The errorCode of a simple-salesforce exception's JSON-array content."""
    content = error.content
    return content[0]["errorCode"]


def error_message(error: Exception) -> str:
    return error.content[0]["message"]
