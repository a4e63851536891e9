"""POST /crm/v3/objects/{type}/search through the real client: operators, sort, limits and offset paging."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.deals.exceptions import ApiException

from connectors.sandbox.faults import Fault
from connectors.sandbox.testing import make_world, running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_hubspot_support import DEAL, body_of, build_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


def _filter(name: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"propertyName": name, "operator": operator}
    if value is not None:
        item["value"] = value
    return item | extra


def _search(client: Any, *groups: list[dict[str, Any]], **body: Any) -> Any:
    request = {"filterGroups": [{"filters": group} for group in groups], "limit": 100} | body
    return client.crm.deals.search_api.do_search(request)


def _ids(page: Any) -> list[int]:
    return [int(item.id) - DEAL for item in page.results]


def _epoch_ms(text: str) -> str:
    return str(int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000))


# (filters, expected deal ids) worked out by hand from the world's twelve deals (3 archived: never found).
CASES = [
    ([_filter("dealstage", "EQ", "qualifiedtobuy")], [2, 9, 10, 12]),
    ([_filter("dealname", "EQ", "delta one")], [7]),  # string equality ignores case
    ([_filter("dealtype", "NEQ", "newbusiness")], [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ([_filter("amount", "GT", "1000")], [1, 11, 12]),
    ([_filter("amount", "GTE", "1100")], [1, 11, 12]),
    ([_filter("amount", "LT", "800")], [6, 7]),
    ([_filter("amount", "LTE", "800")], [4, 6, 7, 8]),
    ([_filter("amount", "BETWEEN", "800", highValue="900")], [4, 5, 8, 9]),
    ([_filter("dealtype", "IN", values=["existingbusiness"])], [1, 5]),
    ([_filter("dealtype", "NOT_IN", values=["existingbusiness", "newbusiness"])], [4, 6, 7, 8, 9, 10, 11, 12]),
    ([_filter("amount", "HAS_PROPERTY")], [1, 2, 4, 5, 6, 7, 8, 9, 11, 12]),
    ([_filter("amount", "NOT_HAS_PROPERTY")], [10]),
    ([_filter("dealname", "CONTAINS_TOKEN", "delta")], [7, 8, 9, 10, 11]),
    ([_filter("dealname", "CONTAINS_TOKEN", "eur*")], [2, 5]),
    ([_filter("dealname", "NOT_CONTAINS_TOKEN", "delta")], [1, 2, 4, 5, 6, 12]),
    ([_filter("hs_lastmodifieddate", "GTE", _epoch_ms("2026-01-10T10:00:00"))], [1, 2, 10, 11, 12]),
    ([_filter("hs_lastmodifieddate", "LT", "2026-01-05T00:00:00Z")], [4, 5]),  # ISO works too
    ([_filter("hs_is_closed", "EQ", "true")], [1, 6]),
    ([_filter("hubspot_owner_id", "EQ", "40000003")], [12]),
    ([_filter("pipeline", "EQ", "800000002")], [4]),
    ([_filter("hs_date_entered_closedwon", "HAS_PROPERTY")], [1]),
    ([_filter("amount_in_home_currency", "BETWEEN", "999.99", highValue="1000.01")], [5]),
    ([_filter("dealstage", "EQ", "qualifiedtobuy"), _filter("amount", "GTE", "1000")], [2, 12]),  # AND
]


def test_each_operator_family_finds_the_hand_worked_deals(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        for filters, expected in CASES:
            page = _search(client, filters)
            assert (_ids(page), page.total) == (expected, len(expected)), filters


def test_groups_are_ored_and_search_returns_default_or_named_properties(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        page = _search(client, [_filter("dealstage", "EQ", "closedwon")], [_filter("dealstage", "EQ", "closedlost")])
        assert _ids(page) == [1, 6]
        assert sorted(page.results[0].properties) == ["amount", "closedate", "createdate", "dealname", "dealstage",
                                                      "hs_lastmodifieddate", "hs_object_id", "pipeline"]
        named = _search(client, [_filter("dealstage", "EQ", "closedwon")], properties=["dealtype"])
        assert named.results[0].properties == {"createdate": "2025-11-01T09:00:00.000Z", "dealtype":
                                               "existingbusiness", "hs_lastmodifieddate": "2026-01-15T10:00:00.000Z",
                                               "hs_object_id": str(DEAL + 1)}
        by_words = client.crm.deals.search_api.do_search({"query": "delta", "limit": 2})
        assert (_ids(by_words), by_words.total) == ([7, 8], 5)
        assert len(client.crm.deals.search_api.do_search({}).results) == 10  # the default limit


def test_one_sort_orders_results_and_ties_keep_id_order(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        top = _search(client, sorts=[{"propertyName": "amount", "direction": "DESCENDING"}], limit=3)
        assert _ids(top) == [1, 12, 11]
        oldest = _search(client, sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], limit=3)
        assert _ids(oldest) == [4, 5, 6]
        with pytest.raises(ApiException) as failure:
            _search(client, sorts=[{"propertyName": "amount", "direction": "ASCENDING"},
                                   {"propertyName": "dealname", "direction": "ASCENDING"}])
        assert failure.value.status == 400


def test_offset_paging_with_total_and_no_paging_on_the_last_page(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        first = _search(client, limit=4)
        assert (_ids(first), first.total, first.paging.next.after) == ([1, 2, 4, 5], 11, "4")
        second = _search(client, limit=4, after=first.paging.next.after)
        third = _search(client, limit=4, after=second.paging.next.after)
        assert (_ids(second), _ids(third), third.paging) == ([6, 7, 8, 9], [10, 11, 12], None)


def test_limits_and_caps_answer_hubspots_400(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        assert len(_search(client, limit=200).results) == 11
        one = [_filter("amount", "GT", "0")]
        accepted = _search(client, *[one * 3] * 5)  # 5 groups of 3: 15 filters
        assert accepted.total == 10
        refused = [
            ({"limit": 201}, "limit"),
            ({"filterGroups": [{"filters": one}] * 6}, "filter groups"),
            ({"filterGroups": [{"filters": one * 7}]}, "in a filter group"),
            ({"filterGroups": [{"filters": one * 5}] * 4}, "20 were sent"),
            ({"filterGroups": [{"filters": [_filter("amount", "BETWEEN", "1")]}]}, "requires a highValue"),
            ({"filterGroups": [{"filters": [_filter("amount", "LIKE", "1")]}]}, "FilterOperator"),
            ({"filterGroups": [{"filters": [_filter("no_such_property", "EQ", "1")]}]}, "no_such_property"),
            ({"filterGroups": [{"filters": [_filter("amount", "GT", "lots")]}]}, "not a number"),
        ]
        for body, words in refused:
            with pytest.raises(ApiException) as failure:
                client.crm.deals.search_api.do_search(body)
            error = body_of(failure.value)
            assert (failure.value.status, error["category"], error["status"]) == (400, "VALIDATION_ERROR", "error")
            assert words in error["message"], body


def test_paging_stops_at_10000_results_with_a_400(tmp_path: Path) -> None:
    deals = [{"id": index, "name": f"Deal {index}", "pipeline_id": 1, "stage_id": 1,
              "created_at": "2026-01-01T00:00:00.000Z"} for index in range(1, 10_051)]
    built = make_world(tmp_path, {"pipelines": [{"id": 1, "name": "Sales"}],
                                  "stages": [{"id": 1, "pipeline_id": 1, "name": "Open", "sort_order": 1}],
                                  "opportunities": deals})
    with running_sandbox(built, serve_as="hubspot", limits_scale=0) as sandbox:
        search = sandbox.hubspot_client().crm.deals.search_api
        near_end = search.do_search({"limit": 200, "after": "9800"})
        assert (near_end.total, len(near_end.results), near_end.paging.next.after) == (10_050, 200, "10000")
        assert int(near_end.results[-1].id) - DEAL == 10_000
        straddling = search.do_search({"limit": 200, "after": "9900"})
        assert len(straddling.results) == 100  # the window ends at the 10,000th result
        with pytest.raises(ApiException) as failure:
            search.do_search({"limit": 200, "after": "10000"})
        assert failure.value.status == 400
        assert "10000 results" in body_of(failure.value)["message"]
    built.close()


def test_after_is_an_offset_so_records_changed_between_pages_shift_later_pages(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        sandbox.faults.add(Fault("hubspot", "mutate_between_pages", match="/search",
                                 params={"action": "update", "count": "2"}))
        by_stamp = {"sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 4}
        first = client.crm.deals.search_api.do_search(by_stamp)
        assert _ids(first) == [4, 5, 6, 7]
        # Before page two the sandbox edits deals 4 and 5: they move to the end, everything shifts by two,
        # and deals 8 and 9 are never returned on this walk; 4 and 5 come back at the end.
        second = client.crm.deals.search_api.do_search(by_stamp | {"after": first.paging.next.after})
        third = client.crm.deals.search_api.do_search(by_stamp | {"after": second.paging.next.after})
        assert (_ids(second), _ids(third)) == ([10, 11, 12, 1], [2, 4, 5])
