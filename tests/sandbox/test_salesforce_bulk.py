"""Bulk API 2.0 query jobs through simple-salesforce's `bulk2`: job states, CSV pages, locators, queryAll."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.sandbox.testing import RunningSandbox, running_sandbox
from tests.sandbox.test_salesforce_support import OPP_1, OPP_450, build_world, error_code


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, sandbox_tls_dir: Path) -> Iterator[RunningSandbox]:
    world = build_world(tmp_path_factory.mktemp("salesforce-bulk"))
    with running_sandbox(world, tls_dir=sandbox_tls_dir, limits_scale=0) as running:
        yield running
    world.close()


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Salesforce:
    return sandbox.salesforce_client()


def rows(page: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(page)))


def test_query_pages_with_locator_and_number_of_records(sandbox: RunningSandbox, sf: Salesforce) -> None:
    sandbox.log.clear()
    pages = list(sf.bulk2.Opportunity.query(
        "SELECT Id, Name, Amount, IsWon, Owner.Email, CloseDate FROM Opportunity WHERE Amount > 4400 ORDER BY Id",
        max_records=4, wait=0.05))
    assert len(pages) == 3  # 10 records: 4 + 4 + 2
    parsed = [rows(page) for page in pages]
    assert all(page[0] == ["Id", "Name", "Amount", "IsWon", "Owner.Email", "CloseDate"] for page in parsed)
    assert [len(page) - 1 for page in parsed] == [4, 4, 2]
    first = parsed[0][1]
    # Opp 441: stage 1 + 441 % 4 = 2 (Negotiation), owner rep 3, close date 1 + 441 % 28 = 22
    assert first[1:] == ["Opp 441", "4410.0", "false", "cid@example.com", "2026-02-22"]
    assert parsed[2][2][0] == OPP_450
    assert pages[0].startswith('"Id","Name","Amount","IsWon","Owner.Email","CloseDate"\n"')  # every value quoted
    results = [entry for entry in sandbox.log.entries() if entry.path.endswith("/results")]
    assert [entry.query for entry in results] == ["maxRecords=4", "maxRecords=4&locator=NA",
                                                  "maxRecords=4&locator=OA"]  # base64 of "4" and "8"


def test_job_states_and_info(sf: Salesforce) -> None:
    client = sf.bulk2.Opportunity._client
    created = client.create_job("query", "SELECT Id FROM Opportunity")
    assert created["state"] == "UploadComplete"
    assert (created["operation"], created["object"], created["contentType"]) == ("query", "Opportunity", "CSV")
    assert created["id"].startswith("750")
    assert client.wait_for_job(created["id"], True, 0.01) == "JobComplete"
    info = client.get_job(created["id"], True)
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 447)
    result = client.get_query_results(created["id"], max_records=50000)
    assert (result["number_of_records"], result["locator"]) == (447, "")
    # Salesforce answers DELETE with 204 and no body (simple-salesforce's delete_job then fails parsing JSON,
    # against the real org too), so the job is deleted with the client's own session and headers
    deleted = client.session.delete(client._construct_request_url(created["id"], True), headers=client._get_headers())
    assert deleted.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(created["id"], True)


def test_query_all_includes_deleted_records(sf: Salesforce) -> None:
    soql = "SELECT Name, IsDeleted FROM Opportunity WHERE Amount <= 300 ORDER BY Id"
    live = [row for page in sf.bulk2.Opportunity.query(soql, wait=0.05) for row in rows(page)[1:]]
    everything = [row for page in sf.bulk2.Opportunity.query_all(soql, wait=0.05) for row in rows(page)[1:]]
    assert len(live) == 27 and len(everything) == 30  # Opp 1..30, three in the recycle bin
    assert [row[0] for row in everything if row[1] == "true"] == ["Opp 10", "Opp 20", "Opp 30"]


def test_download_writes_csv_files(sf: Salesforce, tmp_path: Path) -> None:
    results = sf.bulk2.Account.download("SELECT Id, Name, Region__c FROM Account ORDER BY Id", str(tmp_path),
                                       max_records=1, wait=0.05)
    assert [result["number_of_records"] for result in results] == [1, 1]  # Initech is deleted
    contents = [rows(Path(result["file"]).read_text()) for result in results]
    assert contents[0] == [["Id", "Name", "Region__c"], ["0018d0000000001AAA", "Acme", "EMEA"]]
    assert contents[1][1][1:] == ["Globex", "AMER"]


def test_nulls_and_relationships_in_csv(sf: Salesforce) -> None:
    pages = list(sf.bulk2.Contact.query("SELECT LastName, FirstName, Account.Name FROM Contact ORDER BY Id", wait=0.05))
    assert rows(pages[0]) == [["LastName", "FirstName", "Account.Name"], ["Doe", "Jane", "Acme"], ["Li", "", "Acme"]]
    assert '"Li","","Acme"' in pages[0]


def test_bulk_errors(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        list(sf.bulk2.Opportunity.query("SELECT Foo FROM Opportunity", wait=0.05))
    assert error_code(raised.value) == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as raised:
        list(sf.bulk2.Opportunity.query("SELECT COUNT() FROM Opportunity", wait=0.05))
    assert error_code(raised.value) == "API_ERROR"


def test_bulk_and_rest_ids_agree(sf: Salesforce) -> None:
    page = next(iter(sf.bulk2.Opportunity.query(f"SELECT Id, Name FROM Opportunity WHERE Id = '{OPP_1}'", wait=0.05)))
    assert rows(page)[1] == [OPP_1, "Opp 1"]


def test_records_deleted_between_result_pages(tmp_path: Path, sandbox_tls_dir: Path) -> None:
    world = build_world(tmp_path)
    faults = "salesforce:mutate_between_pages@locator=:action=delete,count=1"
    with running_sandbox(world, tls_dir=sandbox_tls_dir, faults=faults) as running:
        sf = running.salesforce_client()
        pages = list(sf.bulk2.Opportunity.query("SELECT Name FROM Opportunity WHERE Amount > 4400 ORDER BY Id",
                                                max_records=4, wait=0.05))
        names = [row[0] for page in pages for row in rows(page)[1:]]
        # the job holds Opp 441..450; before the second page (after Opp 444) Opp 445 is deleted
        assert names == ["Opp 441", "Opp 442", "Opp 443", "Opp 444", "Opp 446", "Opp 447", "Opp 448", "Opp 449",
                         "Opp 450"]
        assert [len(rows(page)) - 1 for page in pages] == [4, 4, 1]
    world.close()


def test_results_of_old_jobs_expire(sf: Salesforce) -> None:
    client = sf.bulk2.Account._client
    job_ids = []
    for _ in range(21):  # the sandbox keeps the results of the 20 newest completed jobs
        job_ids.append(client.create_job("query", "SELECT Id FROM Account")["id"])
        client.wait_for_job(job_ids[-1], True, 0.01)
    assert client.get_query_results(job_ids[-1])["number_of_records"] == 2
    with pytest.raises(SalesforceMalformedRequest) as raised:
        client.get_query_results(job_ids[0])
    assert error_code(raised.value) == "INVALIDJOB"
