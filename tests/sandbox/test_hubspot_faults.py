"""HubSpot faults and limits as the real client meets them: 429s (retried or raised), 5xx, world changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubspot.crm.deals.exceptions import ApiException, ServiceException

from connectors.sandbox.faults import Fault
from connectors.sandbox.hubspot import HubSpotLimits, HubSpotService
from connectors.sandbox.hubspot.limits import RateLimiter
from connectors.sandbox.testing import running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_hubspot_support import DEAL, body_of, build_world, settled_log


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


def _statuses(sandbox: object, count: int) -> list[int]:
    return [entry.status for entry in settled_log(sandbox, count)]


def test_a_429_with_retry_after_on_a_get_is_retried_silently_by_the_client(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        sandbox.faults.add(Fault("hubspot", "rate_limit", params={"retry_after": "0"}))
        page = sandbox.hubspot_client().crm.deals.basic_api.get_page(limit=2)
        assert len(page.results) == 2
        assert _statuses(sandbox, 2) == [429, 200]  # urllib3's default Retry(3) honoured Retry-After


def test_a_429_without_retry_after_is_not_retried_by_the_client(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        sandbox.faults.add(Fault("hubspot", "rate_limit", params={"retry_after": "none"}))
        with pytest.raises(ApiException) as failure:
            sandbox.hubspot_client().crm.deals.basic_api.get_page(limit=2)
        assert failure.value.status == 429 and "Retry-After" not in failure.value.headers
        assert _statuses(sandbox, 1) == [429]  # urllib3 retries a 429 only when Retry-After is sent


def test_a_lasting_ten_secondly_429_surfaces_after_the_clients_three_retries(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        sandbox.faults.add(Fault("hubspot", "rate_limit", times=None, params={"retry_after": "0"}))
        with pytest.raises(ApiException) as failure:
            sandbox.hubspot_client().crm.deals.basic_api.get_page()
        error = failure.value
        assert type(error) is ApiException and error.status == 429
        body = body_of(error)
        assert {key: body[key] for key in ("status", "errorType", "policyName", "message")} == {
            "status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING",
            "message": "You have reached your ten_secondly_rolling limit."}
        assert error.headers["Retry-After"] == "0"
        assert error.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert error.headers["X-HubSpot-RateLimit-Max"] == "190"
        assert error.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
        assert _statuses(sandbox, 4) == [429, 429, 429, 429]


def test_daily_and_search_429s(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        sandbox.faults.add(Fault("hubspot", "rate_limit", match="GET /crm/v3/owners", times=None,
                                 params={"policy": "DAILY", "retry_after": "0"}))
        from hubspot.crm.owners.exceptions import ApiException as OwnersApiException

        with pytest.raises(OwnersApiException) as daily:
            client.crm.owners.owners_api.get_page()
        assert (daily.value.status, body_of(daily.value)["policyName"]) == (429, "DAILY")
        assert body_of(daily.value)["message"] == "You have reached your daily limit."
        assert daily.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        sandbox.faults.add(Fault("hubspot", "search_rate_limit", match="/search"))
        with pytest.raises(ApiException) as secondly:
            client.crm.deals.search_api.do_search({"limit": 1})
        body = body_of(secondly.value)
        assert (secondly.value.status, body["policyName"], body["errorType"]) == (429, "SECONDLY", "RATE_LIMIT")
        assert secondly.value.headers["Retry-After"] == "1"
        assert _statuses(sandbox, 5) == [429] * 5  # the GET was tried four times, the POST once


def test_status_faults_give_hubspots_5xx_body(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        sandbox.faults.add(Fault("hubspot", "status", params={"code": "500"}))
        with pytest.raises(ServiceException) as failure:
            deals.get_page()
        body = body_of(failure.value)
        assert (failure.value.status, body["status"], body["category"]) == (500, "error", "INTERNAL_ERROR")
        # a 503 with Retry-After is retried by urllib3 like a 429; three of them, then it succeeds
        sandbox.faults.add(Fault("hubspot", "status", times=3, params={"code": "503", "retry_after": "0"}))
        assert len(deals.get_page(limit=1).results) == 1
        assert _statuses(sandbox, 5) == [500, 503, 503, 503, 200]


def test_the_sandboxs_own_ten_secondly_budget_and_headers(world: World) -> None:
    limits = HubSpotLimits(burst_max=3, daily_max=1000, send_retry_after=False)
    service = HubSpotService(world, limits=limits)
    with running_sandbox(world, serve_as="hubspot", services={"hubspot": service}) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        _data, status, headers = deals.get_page_with_http_info(limit=1)
        assert (status, headers["X-HubSpot-RateLimit-Max"], headers["X-HubSpot-RateLimit-Remaining"]) == (200, "3", "2")
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert (headers["X-HubSpot-RateLimit-Daily"], headers["X-HubSpot-RateLimit-Daily-Remaining"]) == ("1000", "999")
        deals.get_page(limit=1)
        deals.get_page(limit=1)
        with pytest.raises(ApiException) as failure:
            deals.get_page(limit=1)
        assert (failure.value.status, body_of(failure.value)["policyName"]) == (429, "TEN_SECONDLY_ROLLING")
        # search has its own budget, outside the ten-secondly one
        assert sandbox.hubspot_client().crm.deals.search_api.do_search({"limit": 1}).total == 11


def test_the_search_budget_per_second(world: World) -> None:
    service = HubSpotService(world, limits=HubSpotLimits(search_per_second=2))
    service.limiter = RateLimiter(service.limits, clock=lambda: 100.0)  # a frozen clock: all in one second
    with running_sandbox(world, serve_as="hubspot", services={"hubspot": service}) as sandbox:
        search = sandbox.hubspot_client().crm.deals.search_api
        search.do_search({"limit": 1})
        search.do_search({"limit": 1})
        with pytest.raises(ApiException) as failure:
            search.do_search({"limit": 1})
        assert (failure.value.status, body_of(failure.value)["policyName"]) == (429, "SECONDLY")
        assert "X-HubSpot-RateLimit-Max" not in failure.value.headers


def test_limits_scale_multiplies_budgets_but_not_page_caps(world: World) -> None:
    assert HubSpotService(world).limits.burst_max == 190
    scaled = HubSpotService(world, limits_scale=10).limits
    assert (scaled.burst_max, scaled.daily_max, scaled.search_per_second, scaled.list_page_max,
            scaled.search.page_max) == (1900, 6_250_000, 50, 100, 200)
    off = HubSpotService(world, limits_scale=0).limits
    assert (off.burst_max, off.daily_max, off.search_per_second) == (0, 0, 0)


def test_mutate_between_list_pages_deletes_records_later_pages_would_return(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        deals = sandbox.hubspot_client().crm.deals.basic_api
        sandbox.faults.add(Fault("hubspot", "mutate_between_pages", params={"action": "delete", "count": "2"}))
        first = deals.get_page(limit=5)
        second = deals.get_page(limit=5, after=first.paging.next.after)
        assert [int(item.id) - DEAL for item in first.results + second.results] == [1, 2, 4, 5, 6, 9, 10, 11, 12]
        assert [int(item.id) - DEAL for item in deals.get_page(archived=True).results] == [3, 7, 8]


def test_same_stamp_gives_records_one_modification_stamp(world: World) -> None:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        client = sandbox.hubspot_client()
        sandbox.faults.add(Fault("hubspot", "same_stamp", params={"count": "3"}))
        client.crm.deals.basic_api.get_page(limit=1)  # the fault acts on the queried object: deals
        same = client.crm.deals.search_api.do_search({"filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": "2026-01-06T10:00:00.000Z"}]}]})
        # the three oldest (4: Jan 3, 5: Jan 4, 6: Jan 6) now share the newest of their stamps
        assert [int(item.id) - DEAL for item in same.results] == [4, 5, 6]
