"""The Salesforce connector end to end: sandbox (HTTPS) → simple-salesforce → connector → engine → cache,
on SQLite and PostgreSQL.  Expected values come from the hand-made world in ``conftest.sales_world``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from agent.db import Database
from tests.connectors.conftest import DEALS, agent_config, by_object, query, run_salesforce, sales_world


def test_first_load_brings_every_object_with_keys_resolved(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    warnings: list[str] = []
    outcomes = by_object(run_salesforce(db, agent_config(sandbox), warnings=warnings))

    assert {name: (o.status, o.records) for name, o in outcomes.items()} == {
        "UserRole": ("ok", 1), "User": ("ok", 2), "Pipeline": ("ok", 1), "OpportunityStage": ("ok", 3),
        "CurrencyType": ("ok", 2), "DatedConversionRate": ("ok", 0), "Account": ("ok", 3), "Contact": ("ok", 1),
        "Lead": ("ok", 2), "Opportunity": ("ok", DEALS), "OpportunityLineItem": ("ok", 1),
        "OpportunityHistory": ("ok", 2), "Task": ("ok", 3), "Event": ("ok", 1), "Contract": ("ok", 1)}
    # 450 deals at 200 a page: three pages
    assert outcomes["Opportunity"].pages == 3
    # reps by email, in their role's team; Bob's manager is Ann
    assert query(db, "SELECT r.email, r.name, t.name, m.email FROM rep r JOIN team t ON t.id = r.team_id "
                     "LEFT JOIN rep m ON m.id = r.manager_rep_id ORDER BY r.email") == [
        ("ann@example.com", "Ann Lee", "East", None), ("bob@example.com", "Bob Ray", "East", "ann@example.com")]
    # the world's totals: Σ 10·n over 1..450 = 10 · 450 · 451 / 2 = 1,014,750; deals owned by Bob = the 225 even ones
    assert query(db, "SELECT count(*), sum(amount), count(account_id), count(stage_id) FROM opportunity") == [
        (DEALS, 1_014_750.0, DEALS, DEALS)]
    assert query(db, "SELECT count(*) FROM opportunity o JOIN rep r ON r.id = o.owner_rep_id "
                     "WHERE r.email = 'bob@example.com'") == [(225,)]
    # every 10th deal is won (45), every 10th + 5 lost (45)
    assert query(db, "SELECT is_won, is_closed, count(*) FROM opportunity GROUP BY is_won, is_closed "
                     "ORDER BY is_won, is_closed") == [(False, False, 360), (False, True, 45), (True, True, 45)]


DEAL_OBJECTS = ["UserRole", "User", "Pipeline", "OpportunityStage", "CurrencyType", "Account", "Opportunity",
                "OpportunityLineItem", "OpportunityHistory"]
ACTIVITY_OBJECTS = ["User", "Account", "Contact", "Lead", "Opportunity", "Task", "Event", "Contract"]


def test_one_deal_field_by_field(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    run_salesforce(db, agent_config(sandbox), objects=DEAL_OBJECTS)
    [row] = query(db, "SELECT o.name, a.source_id, o.amount, o.currency, o.amount_home, o.probability, "
                      "o.deal_type, o.deal_type_raw, o.lead_source, o.close_date, o.is_closed, o.is_won, "
                      "s.name, p.source_id FROM opportunity o JOIN account a ON a.id = o.account_id "
                      "JOIN stage s ON s.id = o.stage_id JOIN pipeline p ON p.id = o.pipeline_id "
                      "WHERE o.name = 'Deal 14'")
    # deal 14: account 14 % 3 + 1 = 3; EUR 140 (a multiple of 7) = 175 USD at 0.8; Prospecting 10 %
    assert row[0] == "Deal 14" and row[1].startswith("001")
    assert row[2:9] == (140.0, "EUR", 175.0, 0.1, "new_business", "New Customer", "Web")
    assert str(row[9]) == "2026-06-30" and row[10:] == (False, False, "Prospecting", "default")


def test_won_deal_closes_when_it_entered_the_won_stage(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    run_salesforce(db, agent_config(sandbox), objects=DEAL_OBJECTS)
    with db.session() as session:
        from sqlalchemy import select

        from agent.models import Opportunity

        closed = {o.name: o.closed_at for o in session.exec(select(Opportunity).where(
            Opportunity.name.in_(["Deal 10", "Deal 20", "Deal 5"]))).scalars()}
    # deal 10 has stage history: Closed Won entered 2026-03-01 12:00 UTC; the others close at the end of
    # their close date (2026-06-30, org timezone UTC) = 2026-07-01 00:00
    assert closed == {"Deal 10": datetime(2026, 3, 1, 12, tzinfo=UTC), "Deal 20": datetime(2026, 7, 1, tzinfo=UTC),
                      "Deal 5": datetime(2026, 7, 1, tzinfo=UTC)}
    assert query(db, "SELECT stage_source_id, amount_home FROM stage_history ORDER BY entered_at") == [
        ("Prospecting", None), ("Closed Won", 100.0)]
    assert query(db, "SELECT quantity, list_price, unit_price, net_total, net_total_home, list_total_home "
                     "FROM line_item") == [(2.0, 30.0, 25.0, 50.0, 50.0, 60.0)]


def test_activities_kinds_links_and_the_lead_they_moved_from(db: Database, tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path))
    run_salesforce(db, agent_config(sandbox), objects=ACTIVITY_OBJECTS)
    rows = query(db, "SELECT a.kind, a.status, a.direction, a.duration_seconds, l.last_modified_at IS NOT NULL, "
                     "a.lead_source_id IS NOT NULL, c.source_id IS NOT NULL, o.name, r.email FROM activity a "
                     "LEFT JOIN lead l ON l.id = a.lead_id LEFT JOIN contact c ON c.id = a.contact_id "
                     "LEFT JOIN opportunity o ON o.id = a.opportunity_id LEFT JOIN rep r ON r.id = a.owner_rep_id "
                     "ORDER BY a.created_at")
    assert rows == [
        # the meeting with Type Demo (mapping.activity_types): a demo on deal 10, 30 minutes
        ("demo", "completed", "none", 1800, False, False, False, "Deal 10", "ann@example.com"),
        # the open task on lead 2
        ("task", "open", "none", None, True, True, False, None, "ann@example.com"),
        # the call on the contact, made before its lead converted (2026-03-10): counted for the lead too
        ("call", "completed", "outbound", 120, True, True, True, None, "bob@example.com"),
        # the email after the conversion: the contact's only
        ("email", "completed", "none", None, False, False, True, None, "bob@example.com"),
    ]
    assert query(db, "SELECT status, converted_at IS NOT NULL, converted_contact_id IS NOT NULL FROM lead "
                     "ORDER BY created_at") == [("Closed - Converted", True, True),
                                                ("Working - Contacted", False, False)]
    [(start, end, status, term)] = query(db, "SELECT start_date, end_date, status, term_months FROM contract")
    assert (str(start), str(end), status, term) == ("2026-07-01", "2027-06-30", "Activated", 12)
    assert date.fromisoformat(str(start)) < date.fromisoformat(str(end))


def test_recurring_line_items_named_in_the_config_start_a_contract(db: Database, tmp_path: Path,
                                                                   sandbox_factory) -> None:
    lines = [{"id": 1, "opportunity_id": 10, "quantity": 2, "list_price": 30.0, "unit_price": 25.0,
              "total_price": 50.0, "created_at": "2026-01-05T00:00:00.000Z"},
             # deal 20 (won, closes 2026-06-30): 1,200 over 12 months
             {"id": 2, "opportunity_id": 20, "quantity": 1, "list_price": 1200.0, "unit_price": 1200.0,
              "total_price": 1200.0, "recurring_term_months": 12, "billing_frequency": "monthly",
              "created_at": "2026-01-05T00:00:00.000Z"}]
    sandbox = sandbox_factory(sales_world(tmp_path, line_items=lines))
    config = agent_config(sandbox, mapping={"recurring_term_field": "Recurring_Term_Months__c",
                                            "recurring_frequency_field": "Billing_Frequency__c"})
    run_salesforce(db, config, objects=DEAL_OBJECTS)
    assert query(db, "SELECT recurring_term_months, billing_frequency, monthly_value_home FROM line_item "
                     "ORDER BY net_total") == [(None, None, None), (12, "monthly", 100.0)]
    contracts = query(db, "SELECT c.derived_from, c.start_date, c.end_date, c.term_months, c.monthly_value_home, "
                          "o.name FROM contract c JOIN opportunity o ON o.id = c.opportunity_id")
    assert [tuple(str(v) if isinstance(v, date) else v for v in row) for row in contracts] == [
        ("deal", "2026-06-30", "2027-06-29", 12, 100.0, "Deal 20")]
