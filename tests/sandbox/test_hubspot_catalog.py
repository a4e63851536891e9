"""Associations v4, owners with teams, pipelines with stage metadata and property definitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubspot.crm.owners.exceptions import NotFoundException as OwnerNotFound

from connectors.sandbox.testing import running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_hubspot_support import COMPANY, CONTACT, DEAL, ENGAGEMENT, OWNER, TEAM, USER, build_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


def _types(item: object) -> list[tuple[str, int, str | None]]:
    return [(spec.category, spec.type_id, spec.label) for spec in item.association_types]


def test_v4_associations_of_one_object_with_real_type_ids(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        v4 = sandbox.hubspot_client().crm.associations.v4.basic_api
        companies = v4.get_page("deals", str(DEAL + 1), "companies")
        assert [(item.to_object_id, _types(item)) for item in companies.results] == [
            (str(COMPANY + 1), [("HUBSPOT_DEFINED", 5, "Primary"), ("HUBSPOT_DEFINED", 341, None)])]
        contacts = v4.get_page("deal", str(DEAL + 1), "contact")  # singular names work too
        assert [(item.to_object_id, _types(item)) for item in contacts.results] == [
            (str(CONTACT + 1), [("HUBSPOT_DEFINED", 3, None)])]
        back = v4.get_page("contacts", str(CONTACT + 1), "deals")
        assert [(item.to_object_id, _types(item)) for item in back.results] == [
            (str(DEAL + 1), [("HUBSPOT_DEFINED", 4, None)])]
        calls = v4.get_page("0-3", str(DEAL + 1), "calls")  # object type ids as in the OpenAPI paths
        assert [(item.to_object_id, _types(item)) for item in calls.results] == [
            (str(ENGAGEMENT + 1), [("HUBSPOT_DEFINED", 205, None)])]
        line_items = v4.get_page("deals", str(DEAL + 1), "line_items", limit=1)
        assert (len(line_items.results), line_items.paging.next.after) == (1, "1")
        rest = v4.get_page("deals", str(DEAL + 1), "line_items", limit=1, after=line_items.paging.next.after)
        assert (rest.results[0].to_object_id, rest.paging) == ("4000000002", None)
        assert v4.get_page("deals", str(DEAL + 7), "contacts").results == []


def test_v4_batch_read_answers_207_for_objects_without_associations(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        batch = sandbox.hubspot_client().crm.associations.v4.batch_api
        answer = batch.get_page("deals", "companies", {"inputs": [{"id": str(DEAL + 1)}, {"id": str(DEAL + 12)}]})
        assert answer.status == "COMPLETE"
        assert [(item._from.id, [to.to_object_id for to in item.to]) for item in answer.results] == [
            (str(DEAL + 1), [str(COMPANY + 1)]), (str(DEAL + 12), [str(COMPANY + 2)])]
        partial = batch.get_page("deals", "contacts", {"inputs": [{"id": str(DEAL + 1)}, {"id": str(DEAL + 7)}]})
        assert [item._from.id for item in partial.results] == [str(DEAL + 1)]
        assert partial.num_errors == 1
        assert partial.errors[0].context == {"fromObjectId": [str(DEAL + 7)]}


def test_owners_with_teams_user_ids_and_archived_owners(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        owners = sandbox.hubspot_client().crm.owners
        active = owners.owners_api.get_page()
        assert [(owner.id, owner.email, owner.first_name, owner.last_name, owner.user_id, owner.archived)
                for owner in active.results] == [
            (str(OWNER + 1), "ann@example.com", "Ann", "Lee", USER + 1, False),
            (str(OWNER + 3), "cara@example.com", "Cara", "Diaz", USER + 3, False)]
        assert [(team.id, team.name, team.primary) for team in active.results[0].teams] == [
            (str(TEAM + 1), "East", True)]
        assert active.paging is None
        archived = owners.owners_api.get_page(archived=True).results
        assert [(owner.id, owner.user_id, owner.user_id_including_inactive, owner.archived)
                for owner in archived] == [(str(OWNER + 2), None, USER + 2, True)]
        first = owners.owners_api.get_page(limit=1)
        assert first.paging.next.after == str(OWNER + 2)
        assert [owner.id for owner in owners.get_all()] == [str(OWNER + 1), str(OWNER + 3)]
        assert owners.owners_api.get_page(email="CARA@example.com").results[0].id == str(OWNER + 3)
        assert owners.owners_api.get_by_id(str(USER + 1), id_property="userId").id == str(OWNER + 1)
        with pytest.raises(OwnerNotFound):
            owners.owners_api.get_by_id(str(OWNER + 2))
        assert owners.owners_api.get_by_id(str(OWNER + 2), archived=True).archived is True


def test_pipelines_with_stage_metadata(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        pipelines = sandbox.hubspot_client().crm.pipelines
        found = pipelines.pipelines_api.get_all("deals").results
        assert [(pipeline.id, pipeline.label, pipeline.display_order) for pipeline in found] == [
            ("default", "Sales Pipeline", 0), ("800000002", "Renewals", 1)]
        assert [(stage.id, stage.label, stage.display_order, stage.metadata) for stage in found[0].stages] == [
            ("appointmentscheduled", "Appointment Scheduled", 0, {"isClosed": "false", "probability": "0.2"}),
            ("qualifiedtobuy", "Qualified To Buy", 1, {"isClosed": "false", "probability": "0.4"}),
            ("100000003", "Negotiation", 2, {"isClosed": "false", "probability": "0.8"}),
            ("closedwon", "Closed Won", 3, {"isClosed": "true", "probability": "1.0"}),
            ("closedlost", "Closed Lost", 4, {"isClosed": "true", "probability": "0.0"})]
        assert found[0].stages[0].write_permissions == "CRM_PERMISSIONS_ENFORCEMENT"
        one = pipelines.pipelines_api.get_by_id("deals", "800000002")
        assert [stage.id for stage in one.stages] == ["100000006", "100000007"]
        stages = pipelines.pipeline_stages_api.get_all("deals", "default").results
        assert len(stages) == 5
        assert pipelines.pipeline_stages_api.get_by_id("deals", "default", "closedwon").label == "Closed Won"


def test_property_definitions_name_every_served_property(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        core = sandbox.hubspot_client().crm.properties.core_api
        deal_props = {prop.name: prop for prop in core.get_all("deals").results}
        for name in ("dealname", "amount", "amount_in_home_currency", "deal_currency_code", "dealstage", "pipeline",
                     "closedate", "dealtype", "hs_is_closed", "hs_is_closed_won", "hs_deal_stage_probability",
                     "hs_forecast_category", "hs_analytics_source", "hubspot_owner_id", "hs_object_id",
                     "createdate", "hs_lastmodifieddate", "hs_date_entered_closedwon", "hs_date_entered_100000003"):
            assert name in deal_props, name
        stage = deal_props["dealstage"]
        assert (stage.type, stage.field_type, stage.group_name) == ("enumeration", "radio", "dealinformation")
        assert [option.value for option in stage.options][:3] == ["appointmentscheduled", "qualifiedtobuy",
                                                                  "100000003"]
        assert deal_props["amount"].type == "number" and deal_props["closedate"].type == "datetime"
        calls = {prop.name for prop in core.get_all("calls").results}
        assert {"hs_call_direction", "hs_call_status", "hs_call_disposition", "hs_call_duration",
                "hs_timestamp"} <= calls
        assert core.get_by_name("contacts", "lifecyclestage").type == "enumeration"
