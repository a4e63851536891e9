"""The HubSpot connector's fetch against the sandbox: what each object becomes, mapping, quarantine,
preflight, and the conformance kit.  Expected values are worked out by hand from ``WORLD``."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from agent.hookspecs import PROJECT_NAME
from agent.plugins import create_plugin_manager
from agent.sync.connector import ConnectorSpec
from agent.sync.records import (
    AccountRecord,
    ActivityRecord,
    LeadRecord,
    LineItemRecord,
    OpportunityRecord,
    StageHistoryRecord,
    StageRecord,
    UserRecord,
)
from agent.testing.connectors import ConformanceKit
from connectors import hubspot
from tests.connectors.test_hubspot_helpers import (
    COMPANY,
    CONTACT,
    ENGAGEMENT,
    LINE_ITEM,
    OWNER,
    PRODUCT,
    TEAM,
    Warnings,
    build_world,
    by_id,
    connector_for,
    context_for,
    deal_id,
    fetch_all,
    hubspot_sandbox,
    next_run,
    records_of,
    utc,
)


def _spec() -> ConnectorSpec:
    specs: list[ConnectorSpec] = []
    hubspot.register_connectors(specs.append)
    return specs[0]


def test_the_hook_registers_the_hubspot_kind_with_a_table_for_every_object() -> None:
    spec = _spec()
    assert spec.kind == "hubspot"
    assert set(spec.objects) == set(spec.object_tables)
    assert spec.object_tables["deals"] == "opportunity"
    assert spec.object_tables["calls"] == spec.object_tables["notes"] == "activity"
    assert PROJECT_NAME == "kpi_agent"  # the entry point group `hubspot = "connectors.hubspot"` lives in


def test_the_entry_point_loads_the_connector_like_any_plugin() -> None:
    host = create_plugin_manager()
    registered: list[ConnectorSpec] = []
    for call in host.impls("register_connectors"):
        if call.plugin_name == "hubspot":
            call.function(registered.append)
    assert [spec.kind for spec in registered] == ["hubspot"]


def test_the_token_may_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        monkeypatch.setenv("KPI_AGENT_TEST_HUBSPOT_TOKEN", sandbox.hubspot_token())
        connector = connector_for(sandbox, access_token="env:KPI_AGENT_TEST_HUBSPOT_TOKEN")
        products = by_id(fetch_all(connector, "products", context_for()))
    assert [(product.name, product.sku) for product in products.values()] == [("Platform", "PLT-1")]
    assert str(PRODUCT + 1) in products


def test_deals_become_opportunities_with_mapped_types_and_home_amounts(tmp_path: Path) -> None:
    warnings = Warnings()
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        deals = by_id(fetch_all(connector_for(sandbox), "deals", context_for(warnings)))
    # deal 6 is archived: a first load never sees it
    assert sorted(deals) == [deal_id(n) for n in (1, 2, 3, 4, 5, 7)]
    won = deals[deal_id(1)]
    assert won == OpportunityRecord(
        source_id=deal_id(1), last_modified_at=utc(2026, 1, 15, 10), created_at=utc(2025, 11, 1, 9),
        name="Acme Expansion", account_source_id=str(COMPANY + 1), owner_source_id=str(OWNER + 1),
        pipeline_source_id="default", stage_source_id="closedwon", amount=1500.0, currency="USD",
        amount_home=1500.0, probability=1.0, deal_type="upsell", deal_type_raw="existingbusiness",
        close_date=date(2026, 1, 15), is_closed=True, is_won=True)
    euro = deals[deal_id(2)]
    assert (euro.amount, euro.currency, euro.amount_home) == (1000.0, "EUR", 1100.0)
    assert (euro.deal_type, euro.probability, euro.is_closed) == ("new_business", 0.4, False)
    # a date-only close date stays that date in New York (west of UTC)
    assert euro.close_date == date(2026, 3, 31)
    assert deals[deal_id(7)].deal_type == "renewal"


def test_an_unknown_deal_type_lands_as_other_with_one_warning_per_value(tmp_path: Path) -> None:
    warnings = Warnings()
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        connector = connector_for(sandbox)
        deals = by_id(fetch_all(connector, "deals", context_for(warnings)))
        again = by_id(fetch_all(connector, "deals", context_for(warnings)))
    for number, raw in ((3, "Partner Deal"), (4, "Partner Deal"), (5, "Reseller")):
        assert (deals[deal_id(number)].deal_type, deals[deal_id(number)].deal_type_raw) == ("other", raw)
    assert again[deal_id(3)].deal_type == "other"
    type_warnings = [message for message in warnings if "deal type" in message]
    assert len(type_warnings) == 2, type_warnings  # one for 'Partner Deal', one for 'Reseller', never repeated
    assert any("'Partner Deal'" in message for message in type_warnings)
    assert any("'Reseller'" in message for message in type_warnings)


def test_owners_teams_pipelines_and_stages(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        connector = connector_for(sandbox)
        context = context_for()
        teams = by_id(fetch_all(connector, "teams", context))
        owners = by_id(fetch_all(connector, "owners", context))
        stages = by_id(fetch_all(connector, "stages", context))
        pipelines = by_id(fetch_all(connector, "pipelines", context))
    assert {team_id: team.name for team_id, team in teams.items()} == {str(TEAM + 1): "East"}
    assert owners[str(OWNER + 1)] == UserRecord(
        source_id=str(OWNER + 1), last_modified_at=utc(2025, 1, 1), email="ann@example.com", name="Ann Lee",
        active=True, team_source_id=str(TEAM + 1))
    assert owners[str(OWNER + 2)].active is False  # a deactivated user's owner is archived: kept, inactive
    assert {pipeline.name for pipeline in pipelines.values()} == {"Sales Pipeline", "Renewals"}
    assert stages["closedwon"] == StageRecord(
        source_id="closedwon", name="Closed Won", pipeline_source_id="default", sort_order=2, probability=1.0,
        is_closed=True, is_won=True, last_modified_at=stages["closedwon"].last_modified_at)
    lost = stages["closedlost"]
    assert (lost.is_closed, lost.is_won, lost.probability) == (True, False, 0.0)
    assert (stages["qualifiedtobuy"].is_closed, stages["qualifiedtobuy"].probability) == (False, 0.4)


def test_configured_pipelines_keep_only_their_deals_and_stages(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        connector = connector_for(sandbox, pipelines=["Renewals"])  # a label; ids work too
        context = context_for()
        deals = by_id(fetch_all(connector, "deals", context))
        stages = by_id(fetch_all(connector, "stages", context))
    assert sorted(deals) == [deal_id(7)]
    assert {stage.pipeline_source_id for stage in stages.values()} == {"800000002"}


def test_companies_contacts_and_leads_from_contacts(tmp_path: Path) -> None:
    warnings = Warnings()
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        connector = connector_for(sandbox)
        context = context_for(warnings)
        companies = by_id(fetch_all(connector, "companies", context))
        contacts = by_id(fetch_all(connector, "contacts", context))
        leads = by_id(fetch_all(connector, "leads", context))
    assert companies[str(COMPANY + 1)] == AccountRecord(
        source_id=str(COMPANY + 1), last_modified_at=utc(2025, 6, 1), name="Acme", owner_source_id=str(OWNER + 1),
        region="EMEA", industry="COMPUTER_SOFTWARE", created_at=utc(2025, 6, 1))
    assert not any("has no property 'region'" in message for message in warnings)
    jane = contacts[str(CONTACT + 1)]
    assert (jane.account_source_id, jane.lifecycle_stage, jane.lead_source) == (str(COMPANY + 1), "customer",
                                                                               "ORGANIC_SEARCH")
    assert (jane.mql_at, jane.sql_at, jane.customer_at) == (utc(2025, 10, 1, 12), utc(2025, 10, 15, 12),
                                                          utc(2026, 1, 15, 10))
    # Jane is associated with deal 1 (her calls and emails are on it): converted when deal 1 was created
    assert leads[str(CONTACT + 1)] == LeadRecord(
        source_id=str(CONTACT + 1), last_modified_at=utc(2025, 9, 1), created_at=utc(2025, 9, 1),
        owner_source_id=str(OWNER + 1), name="Jane Roe", email="jane@acme.example", lead_source="ORGANIC_SEARCH",
        status="customer", mql_at=utc(2025, 10, 1, 12), sql_at=utc(2025, 10, 15, 12),
        converted_at=utc(2025, 11, 1, 9), converted_contact_source_id=str(CONTACT + 1),
        converted_opportunity_source_id=deal_id(1), converted_account_source_id=str(COMPANY + 1))
    john = leads[str(CONTACT + 2)]
    assert (john.status, john.converted_at, john.converted_opportunity_source_id) == ("lead", None, None)


def test_line_items_stage_history_and_activities(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        connector = connector_for(sandbox)
        context = context_for()
        items = by_id(fetch_all(connector, "line_items", context))
        history = by_id(fetch_all(connector, "stage_history", context))
        activities = {}
        for name in ("calls", "emails", "meetings", "tasks", "notes"):
            activities |= by_id(fetch_all(connector, name, context))
    # 2 x 1000 list, 1800 net; billed annually, so 1800 a year = 150 a month
    assert items[str(LINE_ITEM + 1)] == LineItemRecord(
        source_id=str(LINE_ITEM + 1), last_modified_at=utc(2025, 11, 2), opportunity_source_id=deal_id(1),
        product_source_id=str(PRODUCT + 1), product_name="Platform", quantity=2.0, list_price=1000.0,
        unit_price=900.0, net_total=1800.0, currency="USD", list_total_home=2000.0, net_total_home=1800.0,
        recurring_term_months=12, billing_frequency="annually", monthly_value_home=150.0)
    entered_won = history[f"{deal_id(1)}:closedwon:1768471200000"]  # 2026-01-15T10:00Z in epoch ms
    assert entered_won == StageHistoryRecord(
        source_id=f"{deal_id(1)}:closedwon:1768471200000", entered_at=utc(2026, 1, 15, 10),
        opportunity_source_id=deal_id(1), stage_source_id="closedwon", amount=1500.0, currency="USD",
        probability=entered_won.probability, close_date=entered_won.close_date)
    qualified = history[f"{deal_id(1)}:qualifiedtobuy:1764579600000"]  # 2025-12-01T09:00Z
    assert qualified.amount == 1200.0  # the amount the deal had when it entered that stage
    call = activities[str(ENGAGEMENT + 1)]
    assert call == ActivityRecord(
        source_id=str(ENGAGEMENT + 1), last_modified_at=utc(2026, 1, 10, 15, 5), kind="call", kind_raw="Discovery",
        subject="Intro call", status="completed", direction="outbound", owner_source_id=str(OWNER + 1),
        occurred_at=utc(2026, 1, 10, 15), created_at=utc(2026, 1, 10, 15, 5), lead_source_id=str(CONTACT + 1),
        contact_source_id=str(CONTACT + 1), opportunity_source_id=deal_id(1), account_source_id=str(COMPANY + 1),
        duration_seconds=300, outcome="Connected")
    email, demo = activities[str(ENGAGEMENT + 2)], activities[str(ENGAGEMENT + 3)]
    assert (email.kind, email.direction, email.status) == ("email", "inbound", "completed")
    # meeting type "Demo" maps to the demo kind; its start is when it counts; it lasted 30 minutes
    assert (demo.kind, demo.status, demo.occurred_at, demo.duration_seconds) == ("demo", "no_show",
                                                                                utc(2026, 1, 12, 14), 1800)
    task, note = activities[str(ENGAGEMENT + 4)], activities[str(ENGAGEMENT + 5)]
    assert (task.kind, task.status, task.opportunity_source_id) == ("task", "open", deal_id(2))
    assert (note.kind, note.subject) == ("note", "Budget approved")


def test_a_malformed_record_is_quarantined_while_the_rest_of_its_page_lands(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    # what imports and broken integrations leave behind: an amount that is no finite number, no create date
    world.execute("UPDATE opportunities SET amount = 9e999 WHERE id = 3")
    world.execute("UPDATE opportunities SET created_at = NULL WHERE id = 4")
    with hubspot_sandbox(world) as sandbox:
        pages = fetch_all(connector_for(sandbox), "deals", context_for())
    assert len(pages) == 1
    page = pages[0]
    assert sorted(record.source_id for record in page.records) == [deal_id(n) for n in (1, 2, 5, 7)]
    reasons = {item.source_id: item.reason for item in page.quarantined}
    assert reasons == {deal_id(3): "HubSpot deals: amount 'inf' is not a finite number",
                       deal_id(4): "HubSpot deals: the deal has no create date"}
    payload = next(item.payload for item in page.quarantined if item.source_id == deal_id(3))
    assert payload["properties"]["dealname"] == "Partner A"  # what HubSpot sent, kept for the report


def test_preflight_names_a_bad_configured_property(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        problems = connector_for(sandbox, mapping={"region_property": "industri"}).preflight()
    assert len(problems) == 1
    assert "companies has no property 'industri' (named by mapping.region_property); did you mean 'industry'?" \
        in problems[0].what
    assert "region_property" in problems[0].fix


def test_preflight_names_an_unknown_pipeline_and_a_refused_token(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path)) as sandbox:
        unknown = connector_for(sandbox, pipelines=["Enterprise"], mapping={"region_property": "industry"})
        problems = unknown.preflight()
        refused = connector_for(sandbox, access_token="pat-na1-not-the-token").preflight()
    assert [problem.what for problem in problems] == [
        "HubSpot connection 'hubspot': pipelines names 'Enterprise', which is no deal pipeline (known: "
        "default (Sales Pipeline), 800000002 (Renewals))"]
    assert len(refused) == 1 and "401" in refused[0].what and "access_token" in refused[0].fix
    assert "pat-na1-not-the-token" not in refused[0].what + refused[0].fix


def test_preflight_names_a_missing_scope(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path), faults="hubspot:status@/crm/v3/properties/deals:code=403") as sandbox:
        problems = connector_for(sandbox, mapping={"region_property": "industry"}).preflight()
    assert len(problems) == 1
    assert "deals properties" in problems[0].what and "403" in problems[0].what
    assert "crm.objects.deals.read" in problems[0].fix


def test_the_connector_passes_the_conformance_kit(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    with hubspot_sandbox(world) as sandbox:
        context = context_for(now=None, overlap=timedelta(minutes=5))
        connector = connector_for(sandbox, page_size=2)
        kit = ConformanceKit(_spec(), connector, context)
        kit.check_objects()
        first = kit.check_first_load("deals")
        assert len(first.pages) == 3  # six live deals, two a page
        kit.check_resumable("deals", stop_after=1)
        world.update("opportunities", 2, {"name": "Euro Deal (revised)"})
        world.delete("opportunities", 5)
        changed = kit.check_incremental("deals", expect_changed={deal_id(2)}, expect_deleted={deal_id(5)})
        assert changed.ids == {deal_id(2)}
        kit.check_all_ids("deals", expect={deal_id(n) for n in (1, 2, 3, 4, 7)})
        kit.check_preflight()


def test_an_incremental_run_reads_only_what_changed(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    with hubspot_sandbox(world) as sandbox:
        connector = connector_for(sandbox)
        context = context_for()
        done = fetch_all(connector, "calls", context)[-1].cursor
        assert done.initial_load_done
        world.update("activities", 1, {"subject": "Intro call (notes added)"})
        pages = fetch_all(connector, "calls", context, next_run(done, context))
        quiet = fetch_all(connector, "calls", context, next_run(pages[-1].cursor, context))
    assert [record.subject for record in by_id(pages).values()] == ["Intro call (notes added)"]
    assert pages[-1].cursor.stamp > done.stamp  # type: ignore[operator]
    # nothing changed since: the run re-reads the overlap (the call changed a moment ago) and its cursor
    # stays exactly where it was, neither moved back by the overlap nor on
    assert [record.source_id for record in records_of(quiet)] == [str(ENGAGEMENT + 1)]
    assert quiet[-1].cursor == pages[-1].cursor

