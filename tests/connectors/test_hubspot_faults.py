"""The HubSpot connector under the sandbox's faults, as HubSpot really fails: 429 storms (ten-secondly,
the search endpoints' own limit, DAILY), 5xx storms, dropped and cut-off answers, a spent API budget.

Waits are milliseconds (a fast retry policy, ``Retry-After: 0``); the sandbox's request log shows every
attempt, so the assertions are on the order of attempts and on the waits the policy chose, never on time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.sync.connector import Cursor
from agent.sync.retry import SyncStopped
from connectors.hubspot.api import Wait
from connectors.hubspot.errors import ApiBudgetSpent, DailyLimitReached, HubSpotRequestRefused, HubSpotUnavailable
from connectors.sandbox.hubspot import HubSpotService
from connectors.sandbox.hubspot.limits import HubSpotLimits
from tests.connectors.test_hubspot_helpers import (
    build_world,
    by_id,
    connector_for,
    context_for,
    deal_id,
    fast_policy,
    fetch_all,
    hubspot_sandbox,
    statuses,
)

LIVE_DEALS = [deal_id(number) for number in (1, 2, 3, 4, 5, 7)]


def test_a_429_storm_on_search_is_waited_out_with_growing_backoff(tmp_path: Path) -> None:
    faults = "hubspot:rate_limit@/search:times=4,retry_after=0"
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        connector = connector_for(sandbox)
        deals = by_id(fetch_all(connector, "deals", context_for()))
        search = statuses(sandbox, "/deals/search")
    assert sorted(deals) == LIVE_DEALS
    assert search == [429, 429, 429, 429, 200]
    waits = [wait.seconds for wait in connector.api.waits]
    assert len(waits) == 4 and all(wait.reason == "429 TEN_SECONDLY_ROLLING" for wait in connector.api.waits)
    assert waits == sorted(waits)  # exponential backoff with equal jitter: each wait at least the last


def test_retry_after_is_honoured_alike_for_get_and_search(tmp_path: Path) -> None:
    slept: list[float] = []
    policy = fast_policy(max_retry_after=60.0, sleep=slept.append)  # record the waits instead of sleeping
    faults = ("hubspot:rate_limit@/crm/v3/owners:times=2,retry_after=3;"
              "hubspot:rate_limit@/search:times=2,retry_after=3")
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        connector = connector_for(sandbox, policy=policy)
        owners = by_id(fetch_all(connector, "owners", context_for()))
        deals = by_id(fetch_all(connector, "deals", context_for()))
        owner_statuses = statuses(sandbox, "/crm/v3/owners")
        search_statuses = statuses(sandbox, "/deals/search")
    assert owners and sorted(deals) == LIVE_DEALS
    # urllib3 would have retried the GET on its own, silently (a 429 with Retry-After); here every 429 of
    # the GET reached the connector's policy, exactly as the search POST's did
    assert owner_statuses[:3] == [429, 429, 200] and search_statuses == [429, 429, 200]
    assert len(slept) == 4 and min(slept) >= 3.0


def test_the_search_endpoints_own_rate_limit_is_waited_out(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path), faults="hubspot:search_rate_limit:times=3,retry_after=0") as sandbox:
        connector = connector_for(sandbox)
        deals = by_id(fetch_all(connector, "deals", context_for()))
    assert sorted(deals) == LIVE_DEALS
    assert [wait.reason for wait in connector.api.waits] == ["429 SECONDLY"] * 3


def test_a_5xx_storm_and_broken_answers_are_survived(tmp_path: Path) -> None:
    faults = ("hubspot:status@/search:code=503,times=3; hubspot:status@/search:code=500,times=2;"
              "hubspot:status@/search:code=502; hubspot:reset@/associations; hubspot:truncate@/associations;"
              "hubspot:malformed@/associations")
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        connector = connector_for(sandbox)
        deals = by_id(fetch_all(connector, "deals", context_for()))
        search = statuses(sandbox, "/deals/search")
        associations = statuses(sandbox, "/associations/")
        assert sandbox.faults.pending() == []
    assert sorted(deals) == LIVE_DEALS
    assert deals[deal_id(1)].account_source_id == "2000000001"  # the associations arrived in the end
    assert search == [503, 503, 503, 500, 500, 502, 200]
    # reset: no answer (logged as 0); truncate and malformed: a 200 whose body cannot be read
    assert associations == [0, 200, 200, 200]
    waits = [wait.seconds for wait in connector.api.waits]
    assert len(waits) == 9 and waits[:6] == sorted(waits[:6])


def test_a_storm_longer_than_the_policy_fails_the_object_after_its_pages(tmp_path: Path) -> None:
    faults = "hubspot:status@/search:code=503,after=1,times=all"
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        connector = connector_for(sandbox, page_size=2, policy=fast_policy(attempts=4))
        pages = connector.fetch("deals", context=context_for(), cursor=Cursor())
        first = next(pages)
        with pytest.raises(HubSpotUnavailable) as failure:
            next(pages)
        search = statuses(sandbox, "/deals/search")
    assert [record.source_id for record in first.records] == LIVE_DEALS[:2]
    assert first.cursor.initial_last_id == deal_id(2)  # what the engine keeps: the next run resumes here
    assert search == [200, 503, 503, 503, 503]
    assert str(failure.value) == ("HubSpot connection 'hubspot', deals search: still failing after 4 attempts "
                                  "(last: 503 Service Unavailable: the service is temporarily unable to handle "
                                  "the request.); the cursor is kept, sync again later")


def test_the_daily_limit_stops_the_object_cleanly_after_its_pages(tmp_path: Path) -> None:
    faults = "hubspot:rate_limit@/search:policy=DAILY,after=1,times=all,retry_after=0"
    with hubspot_sandbox(build_world(tmp_path), faults=faults) as sandbox:
        connector = connector_for(sandbox, page_size=2)
        pages = connector.fetch("deals", Cursor(), context_for())
        first = next(pages)
        with pytest.raises(DailyLimitReached) as stop:
            next(pages)
        search = statuses(sandbox, "/deals/search")
    assert isinstance(stop.value, SyncStopped)  # the engine keeps the cursor and reports "stopped"
    assert first.cursor.initial_last_id == deal_id(2)
    assert search == [200, 429]  # not retried: the day's budget is spent
    assert "deals search" in str(stop.value) and "DAILY" in str(stop.value) and "cursor kept" in str(stop.value)


def test_a_spent_api_budget_share_stops_the_object_cleanly(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    # a portal with a daily budget of 10 calls; the connection may use half of it
    service = HubSpotService(world, limits=HubSpotLimits(daily_max=10, search_per_second=1000))
    with hubspot_sandbox(world, services={"hubspot": service}) as sandbox:
        connector = connector_for(sandbox, page_size=1, api_budget_share=0.5)
        pages = connector.fetch("deals", Cursor(), context_for())
        delivered = []
        with pytest.raises(ApiBudgetSpent) as stop:
            for page in pages:
                delivered.append(page)
        served = sum(status == 200 for status in statuses(sandbox, "/crm/"))
    # each page costs a search and an associations read: after three pages 6 of 10 calls are used (60%)
    assert [page.records[0].source_id for page in delivered] == LIVE_DEALS[:3]
    assert served == 6
    assert isinstance(stop.value, SyncStopped)
    assert "60% of the portal's daily API budget (10 calls) is used, and api_budget_share is 50%" in str(stop.value)


def test_a_refused_token_is_named_but_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "pat-na1-0000-secret-never-shown"
    with hubspot_sandbox(build_world(tmp_path), faults="hubspot:rate_limit:times=1,retry_after=0") as sandbox:
        good_token = sandbox.hubspot_token()
        fetch_all(connector_for(sandbox), "deals", context_for())  # a retried 429 logs a warning
        with pytest.raises(HubSpotRequestRefused) as refused:
            fetch_all(connector_for(sandbox, access_token=token), "deals", context_for())
    assert refused.value.status == 401
    assert "401" in str(refused.value) and "access_token" in str(refused.value)
    assert "retry" in caplog.text
    for secret in (token, good_token):
        assert secret not in str(refused.value) and secret not in caplog.text


def test_waits_are_recorded_with_what_was_retried(tmp_path: Path) -> None:
    with hubspot_sandbox(build_world(tmp_path), faults="hubspot:status@/crm/v3/owners:code=503") as sandbox:
        connector = connector_for(sandbox)
        fetch_all(connector, "owners", context_for())
    [wait] = connector.api.waits
    assert isinstance(wait, Wait) and (wait.what, wait.attempt) == ("owners", 1)
    assert wait.reason.startswith("503")
