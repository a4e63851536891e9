"""CRM v3 object reads through the real hubspot-api-client: paging, properties, history, archived, auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.deals.exceptions import NotFoundException, UnauthorizedException

from connectors.sandbox.hubspot import HubSpotService
from connectors.sandbox.testing import running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_hubspot_support import (
    COMPANY,
    CONTACT,
    DEAL,
    ENGAGEMENT,
    LINE_ITEM,
    OWNER,
    PRODUCT,
    USER,
    body_of,
    build_world,
    settled_log,
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


def _ids(results: list, base: int) -> list[int]:
    return [int(item.id) - base for item in results]


def test_list_pages_with_after_until_paging_is_gone(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        first = deals.get_page(limit=5)
        assert _ids(first.results, DEAL) == [1, 2, 4, 5, 6]  # 3 is archived
        assert first.paging.next.after == str(DEAL + 7)
        assert "after=3000000007" in first.paging.next.link
        second = deals.get_page(limit=5, after=first.paging.next.after)
        assert _ids(second.results, DEAL) == [7, 8, 9, 10, 11]
        last = deals.get_page(limit=5, after=second.paging.next.after)
        assert _ids(last.results, DEAL) == [12]
        assert last.paging is None
        # the client's own helper pages with limit=100 and stops where paging is omitted
        assert len(sandbox.hubspot_client().crm.deals.get_all()) == 11


def test_list_limit_is_capped_at_100(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        page = sandbox.hubspot_client().crm.deals.basic_api.get_page(limit=500)
        assert len(page.results) == 11
        assert settled_log(sandbox, 1)[-1].query.startswith("limit=500")


def test_default_and_requested_deal_properties_are_strings(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        default = deals.get_by_id(str(DEAL + 1))
        assert default.properties == {
            "amount": "1500", "closedate": "2026-01-15T00:00:00.000Z", "createdate": "2025-11-01T09:00:00.000Z",
            "dealname": "Acme Expansion", "dealstage": "closedwon", "hs_lastmodifieddate": "2026-01-15T10:00:00.000Z",
            "hs_object_id": str(DEAL + 1), "pipeline": "default"}
        assert default.archived is False
        names = ["dealtype", "hs_is_closed", "hs_is_closed_won", "hs_deal_stage_probability", "hubspot_owner_id",
                 "deal_currency_code", "amount_in_home_currency", "hs_forecast_category", "hs_analytics_source",
                 "hs_date_entered_closedwon", "hs_date_entered_qualifiedtobuy", "hs_date_entered_100000003",
                 "no_such_property"]
        won = deals.get_by_id(str(DEAL + 1), properties=names).properties
        assert won["dealtype"] == "existingbusiness"  # upsell
        assert (won["hs_is_closed"], won["hs_is_closed_won"]) == ("true", "true")
        assert won["hs_deal_stage_probability"] == "1"
        assert won["hubspot_owner_id"] == str(OWNER + 1)
        assert (won["deal_currency_code"], won["amount_in_home_currency"]) == ("USD", "1500")
        assert won["hs_forecast_category"] == "CLOSED"
        assert won["hs_analytics_source"] == "REFERRALS"
        assert won["hs_date_entered_closedwon"] == "2026-01-15T10:00:00.000Z"
        assert won["hs_date_entered_qualifiedtobuy"] == "2025-12-01T09:00:00.000Z"
        assert won["hs_date_entered_100000003"] is None  # never in Negotiation: present, no value
        assert "no_such_property" not in won  # unknown names are ignored
        euro = deals.get_by_id(str(DEAL + 2), properties=["amount_in_home_currency", "deal_currency_code",
                                                           "dealtype", "hs_analytics_source"]).properties
        assert euro["amount_in_home_currency"] == "1100"  # the world's amount_home
        assert euro["deal_currency_code"] == "EUR" and euro["dealtype"] == "newbusiness"
        assert euro["hs_analytics_source"] == "ORGANIC_SEARCH"  # "Web"
        # no amount_home: 900 EUR at 0.9 EUR per USD = 1000 USD
        assert deals.get_by_id(str(DEAL + 5), properties=["amount_in_home_currency", "dealtype",
                                                           "dealstage"]).properties == {
            "amount_in_home_currency": "1000", "createdate": "2025-10-01T08:00:00.000Z", "dealstage": "100000003",
            "dealtype": "existingbusiness", "hs_lastmodifieddate": "2026-01-04T10:00:00.000Z",
            "hs_object_id": str(DEAL + 5)}
        renewal = deals.get_by_id(str(DEAL + 4), properties=["pipeline", "dealtype", "dealstage"]).properties
        assert (renewal["pipeline"], renewal["dealtype"], renewal["dealstage"]) == ("800000002", "renewal",
                                                                                    "100000006")
        assert deals.get_by_id(str(DEAL + 6), properties=["dealtype"]).properties["dealtype"] == "Partner Deal"


def test_deal_stage_history_newest_first_and_page_limit_50(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        deal = deals.get_by_id(str(DEAL + 1), properties_with_history=["dealstage", "amount"])
        stages = deal.properties_with_history["dealstage"]
        assert [(item.value, item.timestamp.isoformat()) for item in stages] == [
            ("closedwon", "2026-01-15T10:00:00+00:00"), ("qualifiedtobuy", "2025-12-01T09:00:00+00:00"),
            ("appointmentscheduled", "2025-11-01T09:00:00+00:00")]
        assert stages[0].source_type == "CRM_UI" and stages[0].updated_by_user_id == USER + 1
        # amount 1200 twice, then 1500: one version per change
        assert [item.value for item in deal.properties_with_history["amount"]] == ["1500", "1200"]
        # a deal without stage history: its current stage at creation
        other = deals.get_by_id(str(DEAL + 7), properties_with_history=["dealstage"])
        assert [(item.value, item.timestamp.isoformat()) for item in other.properties_with_history["dealstage"]] \
            == [("appointmentscheduled", "2025-10-01T08:00:00+00:00")]
        page = deals.get_page(limit=100, properties_with_history=["dealstage"])
        assert len(page.results) == 11
        assert settled_log(sandbox, 3)[-1].query.endswith("propertiesWithHistory=dealstage")


def test_history_page_is_capped_at_50(tmp_path: Path) -> None:
    from connectors.sandbox.testing import make_world

    many = [{"id": index, "name": f"Deal {index}", "pipeline_id": 1, "stage_id": 1,
             "created_at": "2026-01-01T00:00:00.000Z"} for index in range(1, 61)]
    built = make_world(tmp_path, {"pipelines": [{"id": 1, "name": "Sales"}],
                                  "stages": [{"id": 1, "pipeline_id": 1, "name": "Open", "sort_order": 1}],
                                  "opportunities": many})
    with running_sandbox(built, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        assert len(deals.get_page(limit=100, properties_with_history=["dealstage"]).results) == 50
        assert len(deals.get_page(limit=100).results) == 60
    built.close()


def test_archived_lists_only_archived_records_with_archived_at(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        page = deals.get_page(archived=True)
        assert _ids(page.results, DEAL) == [3]
        assert page.results[0].archived is True
        assert page.results[0].archived_at.isoformat() == "2026-02-01T12:00:00+00:00"
        assert settled_log(sandbox, 1)[-1].query == "archived=True"  # the client sends Python's True
        with pytest.raises(NotFoundException) as missing:
            deals.get_by_id(str(DEAL + 3))
        assert missing.value.status == 404
        assert body_of(missing.value)["category"] == "OBJECT_NOT_FOUND"
        assert deals.get_by_id(str(DEAL + 3), archived=True).archived is True


def test_v3_associations_on_list_and_get(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        deal = deals.get_by_id(str(DEAL + 1), associations=["contacts", "companies", "line_items", "calls",
                                                              "meetings", "notes", "tickets"])
        found = {key: [(item.id, item.type) for item in value.results] for key, value in deal.associations.items()}
        assert found == {
            "contacts": [(str(CONTACT + 1), "deal_to_contact")],
            "companies": [(str(COMPANY + 1), "deal_to_company"), (str(COMPANY + 1), "deal_to_company_unlabeled")],
            "line items": [(str(LINE_ITEM + 1), "deal_to_line_item"), (str(LINE_ITEM + 2), "deal_to_line_item")],
            "calls": [(str(ENGAGEMENT + 1), "deal_to_call")],
            "meetings": [(str(ENGAGEMENT + 3), "deal_to_meeting")],
            "notes": [(str(ENGAGEMENT + 5), "deal_to_note")],
        }
        page = deals.get_page(limit=3, associations=["tasks"])
        assert [sorted((record.associations or {}).keys()) for record in page.results] == [[], ["tasks"], []]


def test_engagement_contact_line_item_and_product_properties(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        call = client.crm.objects.calls.basic_api.get_by_id(str(ENGAGEMENT + 1), properties=[
            "hs_call_direction", "hs_call_status", "hs_call_disposition", "hs_call_duration", "hs_timestamp",
            "hs_activity_type", "hs_call_title", "hubspot_owner_id"]).properties
        assert call == {
            "hs_activity_type": "Discovery", "hs_call_direction": "OUTBOUND", "hs_call_disposition":
                "f240bbac-87c9-4f6e-bf70-924b57d47db7", "hs_call_duration": "300000",
            "hs_call_status": "COMPLETED", "hs_call_title": "Intro call", "hs_createdate": "2026-01-10T15:05:00.000Z",
            "hs_lastmodifieddate": "2026-01-10T15:05:00.000Z", "hs_object_id": str(ENGAGEMENT + 1),
            "hs_timestamp": "2026-01-10T15:00:00.000Z", "hubspot_owner_id": str(OWNER + 1)}
        email = client.crm.objects.emails.basic_api.get_page(properties=["hs_email_direction", "hs_email_status"])
        assert [(item.id, item.properties["hs_email_direction"], item.properties["hs_email_status"])
                for item in email.results] == [(str(ENGAGEMENT + 2), "INCOMING_EMAIL", "SENT")]
        meeting = client.crm.objects.meetings.basic_api.get_page(properties=[
            "hs_meeting_outcome", "hs_meeting_start_time", "hs_meeting_end_time", "hs_activity_type"]).results[0]
        assert (meeting.properties["hs_meeting_outcome"], meeting.properties["hs_meeting_start_time"],
                meeting.properties["hs_meeting_end_time"], meeting.properties["hs_activity_type"]) == (
            "NO_SHOW", "2026-01-12T14:00:00.000Z", "2026-01-12T14:30:00.000Z", "Demo")
        task = client.crm.objects.tasks.basic_api.get_page(properties=["hs_task_status", "hs_task_type"]).results[0]
        assert (task.properties["hs_task_status"], task.properties["hs_task_type"]) == ("NOT_STARTED", "CALL")
        assert [item.id for item in client.crm.objects.notes.basic_api.get_page().results] == [str(ENGAGEMENT + 5)]
        contact = client.crm.contacts.basic_api.get_by_id(str(CONTACT + 1), properties=[
            "lifecyclestage", "hs_lifecyclestage_marketingqualifiedlead_date",
            "hs_lifecyclestage_salesqualifiedlead_date", "hs_lifecyclestage_customer_date", "hs_analytics_source",
            "associatedcompanyid"]).properties
        assert contact == {
            "associatedcompanyid": str(COMPANY + 1), "createdate": "2025-09-01T00:00:00.000Z",
            "hs_analytics_source": "ORGANIC_SEARCH", "hs_lifecyclestage_customer_date": "2026-01-15T10:00:00.000Z",
            "hs_lifecyclestage_marketingqualifiedlead_date": "2025-10-01T12:00:00.000Z",
            "hs_lifecyclestage_salesqualifiedlead_date": "2025-10-15T12:00:00.000Z", "hs_object_id": str(CONTACT + 1),
            "lastmodifieddate": "2025-09-01T00:00:00.000Z", "lifecyclestage": "customer"}
        items = client.crm.line_items.basic_api.get_page(properties=[
            "hs_product_id", "quantity", "price", "amount", "hs_discount_percentage", "discount",
            "hs_recurring_billing_period", "recurringbillingfrequency", "name"]).results
        assert [{key: value for key, value in item.properties.items() if key not in (
            "createdate", "hs_lastmodifieddate", "hs_object_id")} for item in items] == [
            {"amount": "1800", "discount": None, "hs_discount_percentage": "10", "hs_product_id": str(PRODUCT + 1),
             "hs_recurring_billing_period": "P12M", "name": "Platform", "price": "1000", "quantity": "2",
             "recurringbillingfrequency": "annually"},
            {"amount": "150", "discount": "50", "hs_discount_percentage": None, "hs_product_id": str(PRODUCT + 2),
             "hs_recurring_billing_period": None, "name": "Support", "price": "200", "quantity": "1",
             "recurringbillingfrequency": None}]
        products = client.crm.products.basic_api.get_page(properties=["name", "price", "hs_sku"]).results
        assert [(item.id, item.properties["hs_sku"], item.properties["price"]) for item in products] == [
            (str(PRODUCT + 1), "PLT-1", "1000"), (str(PRODUCT + 2), "SUP-1", "200")]
        company = client.crm.companies.basic_api.get_by_id(str(COMPANY + 1), properties=["name", "industry"])
        assert (company.properties["name"], company.properties["industry"]) == ("Acme", "COMPUTER_SOFTWARE")
        lead = client.crm.objects.basic_api.get_page("leads", properties=["hs_lead_name", "hs_pipeline_stage"])
        assert [(item.properties["hs_lead_name"], item.properties["hs_pipeline_stage"]) for item in lead.results] \
            == [("Jane Roe", "qualified-stage-id")]


def test_split_serving_keeps_to_hubspot_teams(world: World) -> None:
    # Served as split, the HubSpot side is this service; built here so the test needs only HubSpot.
    service = HubSpotService(world, only_crm="hubspot", limits_scale=0)
    with running_sandbox(world, serve_as="split", services={"hubspot": service}) as sandbox:
        client = sandbox.hubspot_client()
        assert 12 not in _ids(client.crm.deals.get_all(), DEAL)  # owned by Cara on the Salesforce team
        assert len(client.crm.deals.get_all()) == 10
        assert _ids(client.crm.companies.get_all(), COMPANY) == [1]
        # owners: Ann (Bob is inactive, so archived); Cara's team is served by Salesforce
        assert [owner.id for owner in client.crm.owners.get_all()] == [str(OWNER + 1)]
        # products and pipelines are served by both
        assert len(client.crm.products.get_all()) == 2


def test_a_wrong_token_gets_hubspots_401(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = HubSpot(access_token="pat-na1-wrong", host=sandbox.hubspot.base_url)
        with pytest.raises(UnauthorizedException) as failure:
            client.crm.deals.basic_api.get_page()
        body = body_of(failure.value)
        assert failure.value.status == 401
        assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found.")
        assert failure.value.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
        assert sandbox.hubspot.service.token.startswith("pat-na1-")
