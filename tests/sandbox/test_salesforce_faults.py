"""Salesforce's faults as simple-salesforce presents them: exception classes, status and error bodies,
the daily request budget, and records that change while a client pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.sandbox.faults import Fault
from connectors.sandbox.salesforce import SalesforceService
from connectors.sandbox.testing import running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_salesforce_support import LIVE_OPPORTUNITIES, build_world, error_code, error_message

QUERY = "SELECT Name FROM Account WHERE Name = 'Acme'"
SMALL_BATCH = {"Sforce-Query-Options": "batchSize=200"}
PAGED = "SELECT Id, Name, Amount, SystemModstamp FROM Opportunity ORDER BY Id"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


def test_request_limit_fault(world: World, sandbox_tls_dir: Path) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults="salesforce:request_limit@/query") as sandbox:
        sf = sandbox.salesforce_client()
        with pytest.raises(SalesforceRefusedRequest) as raised:
            sf.query(QUERY)
        assert raised.value.status == 403
        assert raised.value.content == [{"message": "TotalRequests Limit exceeded.",
                                         "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        assert sf.query(QUERY)["totalSize"] == 1  # times=1: the next request goes through


def test_daily_budget_is_spent_then_refused(world: World, sandbox_tls_dir: Path) -> None:
    # 15,000 * 0.0002 = 3 requests a day
    service = SalesforceService(world, limits_scale=0.0002)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as sandbox:
        sf = sandbox.salesforce_client()
        for _ in range(3):
            sf.query(QUERY)
        assert (sf.api_usage["api-usage"].used, sf.api_usage["api-usage"].total) == (3, 3)
        with pytest.raises(SalesforceRefusedRequest) as raised:
            sf.limits()
        assert error_code(raised.value) == "REQUEST_LIMIT_EXCEEDED"
        assert sandbox.log.count(path_contains="/limits", status=403) == 1


def test_budget_off_with_scale_zero(world: World, sandbox_tls_dir: Path) -> None:
    service = SalesforceService(world, limits_scale=0)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as sandbox:
        sf = sandbox.salesforce_client()
        for _ in range(5):
            sf.query(QUERY)
        assert sf.limits()["DailyApiRequests"]["Remaining"] == 15000 - 6


def test_unavailable_fault(world: World, sandbox_tls_dir: Path) -> None:
    faults = "salesforce:unavailable@/query:retry_after=0"
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults=faults) as sandbox:
        sf = sandbox.salesforce_client()
        with pytest.raises(SalesforceGeneralError) as raised:
            sf.query(QUERY)
        assert raised.value.status == 503
        assert error_code(raised.value) == "SERVER_UNAVAILABLE"
        assert sandbox.log.count(status=503) == 1


@pytest.mark.parametrize(("code", "exception", "expected_code"), [
    (500, SalesforceGeneralError, "UNKNOWN_EXCEPTION"),
    (404, SalesforceResourceNotFound, "NOT_FOUND"),
    (400, SalesforceMalformedRequest, "BAD_REQUEST"),
    (502, SalesforceGeneralError, "SERVER_UNAVAILABLE"),
])
def test_status_faults_carry_salesforce_error_bodies(world: World, sandbox_tls_dir: Path, code: int,
                                                     exception: type[Exception], expected_code: str) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults=f"salesforce:status@/query:code={code}") as sandbox:
        sf = sandbox.salesforce_client()
        with pytest.raises(exception) as raised:
            sf.query(QUERY)
        assert raised.value.status == code  # type: ignore[attr-defined]
        assert error_code(raised.value) == expected_code


def test_token_endpoint_status_fault_is_an_oauth_error(world: World, sandbox_tls_dir: Path) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir,
                         faults="salesforce:status@oauth2/token:code=503") as sandbox:
        with pytest.raises(SalesforceAuthenticationFailed) as raised:
            sandbox.salesforce_client(auth="client_credentials")
        assert (raised.value.code, raised.value.auth_message) == ("unknown_error", "retry your request")
        assert sandbox.salesforce_client(auth="client_credentials").query(QUERY)["totalSize"] == 1


def test_soap_login_status_fault_is_a_soap_fault(world: World, sandbox_tls_dir: Path) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults="salesforce:status@Soap:code=500") as sandbox:
        with pytest.raises(SalesforceAuthenticationFailed) as raised:
            sandbox.salesforce_client()
        assert raised.value.code == "UNKNOWN_EXCEPTION"


def test_records_updated_between_pages(world: World, sandbox_tls_dir: Path) -> None:
    # ordered by id, the first page of 200 ends at Opp 203 (10, 20, 30 are deleted); the fault updates one
    # record the next page returns (Opp 204) and the last one the first page returned (Opp 203), amount +10 %
    faults = "salesforce:mutate_between_pages:action=update,count=2"
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults=faults) as sandbox:
        sf = sandbox.salesforce_client()
        records = sf.query_all(PAGED, headers=SMALL_BATCH)["records"]
        assert len(records) == LIVE_OPPORTUNITIES and len({r["Id"] for r in records}) == LIVE_OPPORTUNITIES
        by_name = {r["Name"]: r for r in records}
        assert by_name["Opp 203"]["Amount"] == 2030.0  # returned before the change
        assert by_name["Opp 204"]["Amount"] == 2244.0  # fetched after it: current values
        assert by_name["Opp 204"]["SystemModstamp"] > by_name["Opp 450"]["SystemModstamp"]
        again = {r["Name"]: r["Amount"] for r in sf.query_all(PAGED)["records"]}
        assert (again["Opp 203"], again["Opp 204"]) == (2233.0, 2244.0)


def test_records_deleted_between_pages(world: World, sandbox_tls_dir: Path) -> None:
    faults = "salesforce:mutate_between_pages@query/01g:action=delete,count=1"
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults=faults) as sandbox:
        sf = sandbox.salesforce_client()
        first = sf.query(PAGED, headers=SMALL_BATCH)
        assert first["totalSize"] == LIVE_OPPORTUNITIES
        rest = list(sf.query_all_iter(PAGED, headers=SMALL_BATCH))  # a second query: its next page is hit
        names = [r["Name"] for r in rest]
        assert "Opp 204" not in names and len(names) == LIVE_OPPORTUNITIES - 1
        deleted = sf.query_all("SELECT Name FROM Opportunity WHERE IsDeleted = true", include_deleted=True)
        assert sorted(r["Name"] for r in deleted["records"]) == ["Opp 10", "Opp 20", "Opp 204", "Opp 30"]


def test_query_all_sees_records_deleted_between_pages_as_deleted(world: World, sandbox_tls_dir: Path) -> None:
    faults = "salesforce:mutate_between_pages:action=delete,count=1"
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults=faults) as sandbox:
        sf = sandbox.salesforce_client()
        records = sf.query_all("SELECT Name, IsDeleted FROM Opportunity ORDER BY Id", include_deleted=True,
                               headers=SMALL_BATCH)["records"]
        assert len(records) == 450
        # the first page of 200 ends at Opp 200; Opp 201 is deleted before the second page is read
        assert sorted(r["Name"] for r in records if r["IsDeleted"]) == ["Opp 10", "Opp 20", "Opp 201", "Opp 30"]


def test_same_stamp_gives_many_records_one_modification_stamp(world: World, sandbox_tls_dir: Path) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults="salesforce:same_stamp@/query:count=250") as sandbox:
        sf = sandbox.salesforce_client()
        records = sf.query_all("SELECT Name, SystemModstamp FROM Opportunity ORDER BY SystemModstamp, Id",
                               headers=SMALL_BATCH)["records"]
        stamps = [r["SystemModstamp"] for r in records]
        # the 250 live records with the lowest ids (1..253 without 10, 20, 30) now share the newest stamp,
        # straddling the page boundary at 200
        assert len(set(stamps[-250:])) == 1
        assert stamps[-251] < stamps[-1]
        assert records[-250]["Name"] == "Opp 1" and records[-1]["Name"] == "Opp 253"
        assert records[0]["Name"] == "Opp 254"


def test_unknown_locator_is_invalid_query_locator(world: World, sandbox_tls_dir: Path) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir) as sandbox:
        sf = sandbox.salesforce_client()
        with pytest.raises(SalesforceMalformedRequest) as raised:
            sf.query_more("01g8d0000000999AAA-2000")
        assert (error_code(raised.value), error_message(raised.value)) == ("INVALID_QUERY_LOCATOR",
                                                                          "invalid query locator")


def test_open_cursor_limit_releases_the_oldest(world: World, sandbox_tls_dir: Path) -> None:
    service = SalesforceService(world, limits_scale=0.1)  # 1 open cursor (10 * 0.1)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as sandbox:
        sf = sandbox.salesforce_client()
        first = sf.query("SELECT Id FROM Opportunity", headers=SMALL_BATCH)
        second = sf.query("SELECT Id FROM Opportunity", headers=SMALL_BATCH)
        assert len(sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)["records"]) == 247
        with pytest.raises(SalesforceMalformedRequest) as raised:
            sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
        assert error_code(raised.value) == "INVALID_QUERY_LOCATOR"


def test_fault_objects_added_to_a_running_server(world: World, sandbox_tls_dir: Path) -> None:
    with running_sandbox(world, tls_dir=sandbox_tls_dir) as sandbox:
        sf = sandbox.salesforce_client()
        sandbox.faults.add(Fault("salesforce", "request_limit", match="/limits", times=2))
        for _ in range(2):
            with pytest.raises(SalesforceRefusedRequest):
                sf.limits()
        assert sf.limits()["DailyApiRequests"]["Max"] == 15000
