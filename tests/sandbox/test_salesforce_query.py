"""SOQL through the real simple-salesforce over HTTPS: paging, queryAll, filters, relationships, objects, ids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.sandbox.salesforce import SalesforceService
from connectors.sandbox.testing import RunningSandbox, running_sandbox
from tests.sandbox.test_salesforce_support import (
    ACCOUNT_1,
    CONTACT_1,
    LEAD_1,
    LIVE_OPPORTUNITIES,
    OPP_1,
    OPP_3,
    OPP_450,
    REP_1,
    REP_2,
    build_world,
    error_code,
    error_message,
)

SMALL_BATCH = {"Sforce-Query-Options": "batchSize=200"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, sandbox_tls_dir: Path) -> Iterator[RunningSandbox]:
    world = build_world(tmp_path_factory.mktemp("salesforce-query"))
    with running_sandbox(world, tls_dir=sandbox_tls_dir, limits_scale=0) as running:
        yield running
    world.close()


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Salesforce:
    return sandbox.salesforce_client()


def count(sf: Salesforce, soql: str, include_deleted: bool = False) -> int:
    return int(sf.query(soql, include_deleted=include_deleted)["totalSize"])


def test_one_record_with_relationship_fields_and_mapped_picklists(sf: Salesforce) -> None:
    result = sf.query("SELECT Id, Name, Amount, CurrencyIsoCode, Owner.Email, Account.Region__c, StageName, "
                      f"Probability, Type, IsClosed, IsWon, ForecastCategoryName, CloseDate, CreatedDate, "
                      f"LastModifiedDate FROM Opportunity WHERE Id = '{OPP_3}'")
    assert result["totalSize"] == 1 and result["done"] is True
    record = result["records"][0]
    assert record["attributes"] == {"type": "Opportunity",
                                    "url": f"/services/data/v59.0/sobjects/Opportunity/{OPP_3}"}
    assert list(record)[1:] == ["Id", "Name", "Amount", "CurrencyIsoCode", "Owner", "Account", "StageName",
                                "Probability", "Type", "IsClosed", "IsWon", "ForecastCategoryName", "CloseDate",
                                "CreatedDate", "LastModifiedDate"]
    assert record["Id"] == OPP_3
    assert record["Name"] == "Opp 3"
    assert record["Amount"] == 30.0
    assert record["CurrencyIsoCode"] == "USD"
    assert record["Owner"]["Email"] == "cid@example.com"
    assert record["Owner"]["attributes"]["type"] == "User"
    assert record["Account"]["Region__c"] == "AMER"
    assert record["StageName"] == "Closed Lost"  # 1 + 3 % 4 = stage 4
    assert record["Probability"] == 0.0
    assert record["Type"] == "New Customer"  # odd id: new_business
    assert (record["IsClosed"], record["IsWon"]) == (True, False)
    assert record["ForecastCategoryName"] == "Omitted"
    assert record["CloseDate"] == "2026-02-04"  # 1 + 3 % 28
    assert record["CreatedDate"] == "2026-01-01T00:00:00.000+0000"
    assert record["LastModifiedDate"] == "2026-02-01T00:00:03.000+0000"


def test_odd_and_renewal_types_pass_through_or_map(sf: Salesforce) -> None:
    records = sf.query("SELECT Type, Probability, ForecastCategoryName FROM Opportunity "
                       "WHERE Name IN ('Opp 7', 'Opp 6') ORDER BY Name")["records"]
    # Opp 6: stage 1 + 6 % 4 = 3 (Closed Won); Opp 7: stage 4 (Closed Lost), deal type "Partner Deal"
    assert [(r["Type"], r["Probability"], r["ForecastCategoryName"]) for r in records] == [
        ("Renewal", 100.0, "Closed"), ("Partner Deal", 0.0, "Omitted")]


def test_query_pages_with_next_records_url_and_batch_size(sandbox: RunningSandbox, sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Opportunity", headers=SMALL_BATCH)
    assert first["totalSize"] == LIVE_OPPORTUNITIES
    assert first["done"] is False
    assert len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-200")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_BATCH)
    assert (second["totalSize"], second["done"], len(second["records"])) == (LIVE_OPPORTUNITIES, False, 200)
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_BATCH)
    assert (third["done"], len(third["records"])) == (True, 47)
    assert "nextRecordsUrl" not in third
    ids = [r["Id"] for page in (first, second, third) for r in page["records"]]
    assert len(set(ids)) == LIVE_OPPORTUNITIES


def test_default_batch_is_2000_and_batch_size_is_clamped(sf: Salesforce) -> None:
    assert sf.query("SELECT Id FROM Opportunity")["done"] is True
    tiny = sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(tiny["records"]) == 200  # Salesforce's minimum


def test_query_all_and_iter_walk_every_page(sandbox: RunningSandbox, sf: Salesforce) -> None:
    sandbox.log.clear()
    everything = sf.query_all("SELECT Id, Name FROM Opportunity", headers=SMALL_BATCH)
    assert everything["totalSize"] == LIVE_OPPORTUNITIES
    assert sandbox.log.count(path_contains="/query") == 3  # 200 + 200 + 47
    ordered = list(sf.query_all_iter("SELECT Name, Amount FROM Opportunity ORDER BY Amount DESC LIMIT 250",
                                     headers=SMALL_BATCH))
    assert len(ordered) == 250
    assert ordered[0]["Name"] == "Opp 450" and ordered[0]["Amount"] == 4500.0
    assert ordered[-1]["Amount"] == 2010.0  # 450..201 by amount: the 250th is Opp 201
    amounts = [r["Amount"] for r in ordered]
    assert amounts == sorted(amounts, reverse=True)


def test_query_all_returns_soft_deleted_rows_marked(sf: Salesforce) -> None:
    everything = sf.query_all("SELECT Id, Name, IsDeleted FROM Opportunity", include_deleted=True)
    assert everything["totalSize"] == 450
    deleted = sorted(r["Name"] for r in everything["records"] if r["IsDeleted"])
    assert deleted == ["Opp 10", "Opp 20", "Opp 30"]
    assert count(sf, "SELECT Id FROM Opportunity WHERE IsDeleted = true") == 0
    assert count(sf, "SELECT Id FROM Opportunity WHERE IsDeleted = true", include_deleted=True) == 3


@pytest.mark.parametrize(("where", "expected"), [
    (f"OwnerId = '{REP_1}'", 149),  # 150 ids with id % 3 == 1, minus deleted 10
    (f"OwnerId IN ('{REP_1}', '{REP_2}')", 298),
    (f"OwnerId NOT IN ('{REP_1}', '{REP_2}')", 149),  # rep 3: 150 minus deleted 30
    ("Amount > 4400", 10),  # 441..450
    ("Amount >= 4400 AND Amount < 4420", 2),  # 440, 441
    ("LastModifiedDate > 2026-02-01T00:07:00Z", 30),  # updated = Feb 1 + id s: ids 421..450
    ("SystemModstamp > 2026-02-01T01:07:00+01:00", 30),  # the same instant written with an offset
    ("LastModifiedDate >= 2026-02-01T00:07:00.000Z", 31),
    ("CloseDate = 2026-02-01", 16),  # id % 28 == 0: 28, 56, ..., 448
    ("Name LIKE 'Opp 1_'", 9),  # Opp 10..19, minus deleted 10
    ("Name LIKE 'opp 45%'", 2),  # case-insensitive: Opp 45, Opp 450
    ("StageName IN ('Closed Won', 'Closed Lost')", 223),  # id % 4 in (2, 3): 113 + 112, minus 10 and 30
    ("StageName = 'closed won'", 111),  # id % 4 == 2: 113 ids, minus 10 and 30; SOQL compares case-insensitively
    (f"(OwnerId = '{REP_1}' OR OwnerId = '{REP_2}') AND Amount < 100", 6),  # 1, 2, 4, 5, 7, 8
    ("NOT (Amount > 100)", 9),  # 1..10, minus deleted 10
    ("Type != 'New Customer'", 223),  # even ids (225 - 3 deleted) + Opp 7
    ("Type = 'Renewal' AND IsWon = true", 111),  # even with id % 4 == 2
    ("IsClosed = false", 224),  # id % 4 in (0, 1): 112 + 113, minus deleted 20
    ("CurrencyIsoCode = 'EUR'", 42),  # 45 multiples of 10, minus 3 deleted
    ("AccountId = null", 0),
    ("AccountId != null", LIVE_OPPORTUNITIES),
    (f"AccountId = '{ACCOUNT_1}'", 298),
    ("Account.Region__c = 'AMER'", 149),
    ("Owner.Email = 'ann@example.com'", 149),
    ("Probability >= 60", 224),  # Negotiation (id % 4 == 1: 113) + Closed Won (113 minus deleted 10 and 30)
    ("CloseDate < TODAY", LIVE_OPPORTUNITIES),
    ("CloseDate > NEXT_N_DAYS:3", 0),
])
def test_where_clauses(sf: Salesforce, where: str, expected: int) -> None:
    assert count(sf, f"SELECT Id FROM Opportunity WHERE {where}") == expected


def test_count_and_aggregates(sf: Salesforce) -> None:
    assert sf.query(f"SELECT COUNT() FROM Opportunity WHERE OwnerId = '{REP_1}'") == {
        "totalSize": 149, "done": True, "records": []}
    result = sf.query("SELECT COUNT(Id), SUM(Amount) total, MAX(CloseDate) FROM Opportunity WHERE Amount > 4400")
    assert result["totalSize"] == 1
    record = result["records"][0]
    assert record["attributes"] == {"type": "AggregateResult"}
    assert record["expr0"] == 10
    # SUM of 4410..4500 is 44550; Opp 450 is 4500 EUR = 5000 USD, and aggregates are in the corporate currency
    assert record["total"] == 45050.0
    assert record["expr1"] == "2026-02-28"  # 1 + id % 28 is 28 for id 447


def test_convert_currency_gives_the_corporate_amount(sf: Salesforce) -> None:
    records = sf.query("SELECT Name, convertCurrency(Amount), CurrencyIsoCode FROM Opportunity "
                       "WHERE Name IN ('Opp 440', 'Opp 449') ORDER BY Name")["records"]
    assert [(r["Name"], r["Amount"], r["CurrencyIsoCode"]) for r in records] == [
        ("Opp 440", 4888.89, "EUR"), ("Opp 449", 4490.0, "USD")]


def test_order_by_several_fields_and_nulls(sf: Salesforce) -> None:
    records = sf.query("SELECT Name FROM Opportunity WHERE Amount < 60 ORDER BY StageName DESC, Amount ASC")["records"]
    # ids 1..5: stages 2,3,4,1,2 -> Prospecting(4) Negotiation(1,5) Closed Won(2) Closed Lost(3); DESC by name
    assert [r["Name"] for r in records] == ["Opp 4", "Opp 1", "Opp 5", "Opp 2", "Opp 3"]
    contacts = sf.query("SELECT LastName FROM Contact ORDER BY FirstName NULLS LAST")["records"]
    assert [r["LastName"] for r in contacts] == ["Doe", "Li"]
    contacts = sf.query("SELECT LastName FROM Contact ORDER BY FirstName")["records"]
    assert [r["LastName"] for r in contacts] == ["Li", "Doe"]  # ascending: nulls first


def test_fields_function(sf: Salesforce) -> None:
    account = sf.query("SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme'")["records"][0]
    assert account["Name"] == "Acme" and account["Id"] == ACCOUNT_1
    assert "Region__c" not in account and "SystemModstamp" in account
    custom = sf.query("SELECT FIELDS(CUSTOM) FROM Account WHERE Name = 'Acme' LIMIT 1")["records"][0]
    assert [key for key in custom if key != "attributes"] == ["Region__c"]
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT FIELDS(ALL) FROM Account")
    assert "must have a LIMIT of at most 200" in error_message(raised.value)


def test_limit_and_offset(sf: Salesforce) -> None:
    records = sf.query("SELECT Name FROM Opportunity ORDER BY Amount LIMIT 3 OFFSET 2")["records"]
    assert [r["Name"] for r in records] == ["Opp 3", "Opp 4", "Opp 5"]
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id FROM Opportunity LIMIT 5 OFFSET 2001")
    assert error_code(raised.value) == "NUMBER_OUTSIDE_VALID_RANGE"


def test_ids_round_trip(sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Opportunity WHERE Name = 'Opp 450'")["records"][0]["Id"]
    assert first == OPP_450
    both = sf.query(f"SELECT Name FROM Opportunity WHERE Id IN ('{OPP_1}', '{OPP_450}') ORDER BY Id")["records"]
    assert [r["Name"] for r in both] == ["Opp 1", "Opp 450"]
    fifteen = sf.query(f"SELECT Name FROM Opportunity WHERE Id = '{OPP_450[:15]}'")["records"]
    assert [r["Name"] for r in fifteen] == ["Opp 450"]
    after = count(sf, f"SELECT Id FROM Opportunity WHERE Id > '{OPP_1}'")
    assert after == LIVE_OPPORTUNITIES - 1
    assert count(sf, f"SELECT Id FROM Opportunity WHERE Id = '{ACCOUNT_1}'") == 0  # another object's id
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id FROM Opportunity WHERE Id = '12345'")
    assert error_code(raised.value) == "INVALID_QUERY_FILTER_OPERATOR"
    assert error_message(raised.value).endswith("invalid ID field: 12345")
    record = sf.Opportunity.get(OPP_3)
    assert (record["Name"], record["Amount"], record["StageName"]) == ("Opp 3", 30.0, "Closed Lost")


def test_users_roles_and_managers(sf: Salesforce) -> None:
    users = sf.query("SELECT Name, FirstName, LastName, Email, IsActive, UserRole.Name, Manager.Email, Region__c "
                     "FROM User ORDER BY Name")["records"]
    assert [(u["Name"], u["FirstName"], u["LastName"], u["IsActive"]) for u in users] == [
        ("Ann Lee", "Ann", "Lee", True), ("Bob Stone", "Bob", "Stone", True), ("Cid Moss", "Cid", "Moss", False)]
    assert [u["UserRole"]["Name"] for u in users] == ["East", "East", "West"]
    assert users[0]["Manager"] is None and users[1]["Manager"]["Email"] == "ann@example.com"
    assert [u["Region__c"] for u in users] == ["EMEA", "EMEA", "AMER"]
    roles = sf.query("SELECT Name, ForecastUserId FROM UserRole ORDER BY Name")["records"]
    assert [(r["Name"], r["ForecastUserId"]) for r in roles] == [("East", REP_1), ("West", None)]


def test_tasks_and_events(sf: Salesforce) -> None:
    tasks = sf.query("SELECT Subject, TaskSubtype, Type, Status, IsClosed, WhoId, WhatId, CallType, "
                     "CallDurationInSeconds, ActivityDate, OwnerId FROM Task ORDER BY Id")["records"]
    assert [t["Subject"] for t in tasks] == ["Intro call", "Hello", "Send quote"]  # not the meeting, note, deleted
    call, email, todo = tasks
    assert (call["TaskSubtype"], call["Type"], call["Status"], call["CallType"], call["CallDurationInSeconds"]) == (
        "Call", "Call", "Completed", "Outbound", 300)
    assert (call["WhoId"], call["WhatId"], call["ActivityDate"], call["OwnerId"]) == (
        CONTACT_1, OPP_1, "2026-02-02", REP_1)
    assert (email["TaskSubtype"], email["WhoId"], email["WhatId"], email["CallType"]) == ("Email", LEAD_1, None, None)
    assert (todo["Status"], todo["IsClosed"], todo["WhatId"]) == ("Not Started", False, ACCOUNT_1)
    by_lead = sf.query(f"SELECT Subject FROM Task WHERE WhoId = '{LEAD_1}'")["records"]
    assert [t["Subject"] for t in by_lead] == ["Hello"]
    events = sf.query("SELECT Subject, Type, ActivityDateTime, EndDateTime, DurationInMinutes, WhatId "
                      "FROM Event")["records"]
    assert [(e["Subject"], e["Type"], e["ActivityDateTime"], e["EndDateTime"], e["DurationInMinutes"], e["WhatId"])
            for e in events] == [("Demo", "Demo", "2026-02-04T15:00:00.000+0000", "2026-02-04T16:00:00.000+0000",
                                  60, OPP_1)]


def test_leads_contacts_and_conversion(sf: Salesforce) -> None:
    leads = sf.query("SELECT LastName, Status, IsConverted, ConvertedDate, ConvertedContactId, "
                     "ConvertedOpportunityId FROM Lead ORDER BY Id")["records"]
    assert [(r["LastName"], r["Status"], r["IsConverted"]) for r in leads] == [
        ("Open", "Open - Not Contacted", False), ("Won", "Closed - Converted", True), ("Odd", "Nurture", False)]
    assert (leads[1]["ConvertedDate"], leads[1]["ConvertedContactId"], leads[1]["ConvertedOpportunityId"]) == (
        "2026-02-10", CONTACT_1, OPP_1)
    contacts = sf.query("SELECT Name, Account.Name, Lifecycle_Stage__c FROM Contact ORDER BY Id")["records"]
    assert [(c["Name"], c["Account"]["Name"], c["Lifecycle_Stage__c"]) for c in contacts] == [
        ("Jane Doe", "Acme", "customer"), ("Li", "Acme", None)]


def test_line_items_history_contracts_and_currencies(sf: Salesforce) -> None:
    items = sf.query(f"SELECT Name, Quantity, ListPrice, UnitPrice, Discount, TotalPrice, Billing_Frequency__c, "
                     f"Product2.ProductCode FROM OpportunityLineItem WHERE OpportunityId = '{OPP_1}' ORDER BY Id")
    assert [(r["Name"], r["Quantity"], r["ListPrice"], r["UnitPrice"], r["Discount"], r["TotalPrice"],
             r["Billing_Frequency__c"], r["Product2"]["ProductCode"]) for r in items["records"]] == [
        ("Widget", 2.0, 100.0, 90.0, None, 180.0, "Monthly", "W-1"),
        ("Support", 1.0, 50.0, 50.0, 20.0, 40.0, None, "S-1")]
    history = sf.query(f"SELECT StageName, Probability, CreatedDate FROM OpportunityHistory "
                       f"WHERE OpportunityId = '{OPP_1}' ORDER BY CreatedDate")["records"]
    assert [(h["StageName"], h["Probability"], h["CreatedDate"]) for h in history] == [
        ("Prospecting", 10.0, "2026-01-01T00:00:00.000+0000"), ("Negotiation", 60.0, "2026-01-15T10:00:00.000+0000")]
    contracts = sf.query("SELECT ContractNumber, Status, StartDate, EndDate, ContractTerm, Opportunity__c "
                         "FROM Contract")["records"]
    assert [(c["ContractNumber"], c["Status"], c["StartDate"], c["EndDate"], c["ContractTerm"], c["Opportunity__c"])
            for c in contracts] == [("00000001", "Activated", "2026-02-01", "2027-01-31", 12, OPP_1)]
    currencies = sf.query("SELECT IsoCode, ConversionRate, IsCorporate FROM CurrencyType ORDER BY IsoCode")
    assert [(c["IsoCode"], c["ConversionRate"], c["IsCorporate"]) for c in currencies["records"]] == [
        ("EUR", 0.9, False), ("USD", 1.0, True)]
    dated = sf.query("SELECT IsoCode, ConversionRate, StartDate, NextStartDate FROM DatedConversionRate")
    assert [(d["IsoCode"], d["ConversionRate"], d["StartDate"], d["NextStartDate"]) for d in dated["records"]] == [
        ("EUR", 0.8, "2026-01-01", "9999-12-31")]


@pytest.mark.parametrize(("soql", "code", "text"), [
    ("SELECT Id FRM Opportunity", "MALFORMED_QUERY", "unexpected token: FRM"),
    ("SELECT Id FROM Opportunity WHERE Amount > 1 AND Amount < 5 OR Name = 'x'", "MALFORMED_QUERY",
     "unexpected token: OR"),
    ("SELECT Id FROM Opportunity WHERE Name = \"x\"", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Foo FROM Opportunity", "INVALID_FIELD", "No such column 'Foo' on entity 'Opportunity'"),
    ("SELECT Owner.Foo FROM Opportunity", "INVALID_FIELD", "No such column 'Foo' on entity 'User'"),
    ("SELECT Boss.Email FROM Opportunity", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
    ("SELECT Id FROM Opportunity WHERE Amount = '5'", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'Amount' must be of type double and should not be enclosed in quotes"),
    ("SELECT Id FROM Opportunity WHERE CreatedDate > 2026-01-01", "INVALID_QUERY_FILTER_OPERATOR",
     "must be of type dateTime"),
    ("SELECT Id FROM Widget__c", "INVALID_TYPE", "sObject type 'Widget__c' is not supported"),
    ("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName", "NOT_SUPPORTED_BY_SANDBOX", "GROUP BY"),
    ("SELECT Id, (SELECT Id FROM OpportunityLineItems) FROM Opportunity", "NOT_SUPPORTED_BY_SANDBOX", "subquery"),
    ("SELECT Id FROM Opportunity FOR VIEW", "NOT_SUPPORTED_BY_SANDBOX", "FOR VIEW"),
    ("SELECT TYPEOF What WHEN Account THEN Name END FROM Task", "NOT_SUPPORTED_BY_SANDBOX", "TYPEOF"),
])
def test_soql_errors_as_salesforce_answers_them(sf: Salesforce, soql: str, code: str, text: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query(soql)
    assert raised.value.status == 400
    assert error_code(raised.value) == code
    assert text in error_message(raised.value)


def test_malformed_message_points_at_the_token(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id, Foo FROM Opportunity")
    assert error_message(raised.value).startswith(
        "\nSELECT Id, Foo FROM Opportunity\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo'")


def test_describe_global_and_object(sf: Salesforce) -> None:
    names = {entry["name"] for entry in sf.describe()["sobjects"]}
    assert {"User", "UserRole", "Account", "Contact", "Lead", "Opportunity", "OpportunityLineItem",
            "OpportunityHistory", "Task", "Event", "Contract", "CurrencyType", "DatedConversionRate"} <= names
    described = sf.Opportunity.describe()
    assert (described["name"], described["keyPrefix"]) == ("Opportunity", "006")
    fields = {field["name"]: field for field in described["fields"]}
    assert [v["value"] for v in fields["StageName"]["picklistValues"]] == [
        "Prospecting", "Negotiation", "Closed Won", "Closed Lost"]
    assert {name: fields[name]["type"] for name in ("Id", "Name", "StageName", "Amount", "Probability", "CloseDate",
                                                    "CreatedDate", "IsWon", "OwnerId", "FiscalYear")} == {
        "Id": "id", "Name": "string", "StageName": "picklist", "Amount": "currency", "Probability": "percent",
        "CloseDate": "date", "CreatedDate": "datetime", "IsWon": "boolean", "OwnerId": "reference",
        "FiscalYear": "int"}
    assert (fields["OwnerId"]["referenceTo"], fields["OwnerId"]["relationshipName"]) == (["User"], "Owner")
    assert "New Customer" in [v["value"] for v in fields["Type"]["picklistValues"]]
    task_fields = {field["name"]: field for field in sf.Task.describe()["fields"]}
    assert task_fields["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    assert task_fields["WhoId"]["polymorphicForeignKey"] is True


def test_organization(sf: Salesforce) -> None:
    assert sf.is_sandbox() is True
    organization = sf.query("SELECT Id, TimeZoneSidKey, FiscalYearStartMonth FROM Organization")["records"][0]
    assert (organization["Id"], organization["TimeZoneSidKey"], organization["FiscalYearStartMonth"]) == (
        "00D8d0000000001EAA", "UTC", 1)  # D is upper case at place 3 of block 1 -> E


def test_limits_and_the_limit_info_header(sandbox: RunningSandbox, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM User LIMIT 1")
    used_before = sf.api_usage["api-usage"].used
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000
    assert limits["DailyApiRequests"]["Remaining"] == 15000 - (used_before + 1)
    assert sf.api_usage["api-usage"].used == used_before + 1
    assert sf.api_usage["api-usage"].total == 15000


def test_replication_deleted_and_updated(sf: Salesforce) -> None:
    from datetime import datetime

    start = datetime(2026, 2, 1, tzinfo=UTC)
    end = datetime(2026, 2, 1, 0, 1, tzinfo=UTC)
    deleted = sf.Opportunity.deleted(start, end)
    # deleted_at defaults to the record's updated_at: Feb 1 + 10, 20, 30 s
    assert [record["id"][:15] for record in deleted["deletedRecords"]] == [
        "0068d000000000A", "0068d000000000K", "0068d000000000U"]
    updated = sf.Opportunity.updated(start, end)
    assert len(updated["ids"]) == 56  # ids 1..59 within the minute, minus 3 deleted


def test_split_serving_only_salesforce_rows(tmp_path: Path, sandbox_tls_dir: Path) -> None:
    world = build_world(tmp_path)
    service = SalesforceService(world, only_crm="salesforce", limits_scale=0)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as running:
        sf = running.salesforce_client()
        assert count(sf, "SELECT Id FROM Opportunity") == 298  # reps 1 and 2 (team East), minus 10 and 20
        assert [u["Name"] for u in sf.query("SELECT Name FROM User ORDER BY Name")["records"]] == ["Ann Lee",
                                                                                                   "Bob Stone"]
        assert count(sf, "SELECT Id FROM OpportunityStage") == 4  # shared by both CRMs
    world.close()


@pytest.mark.parametrize("only_crm", [None, "salesforce"])
def test_the_newest_stamp_of_an_object_that_is_part_of_a_table(tmp_path: Path, sandbox_tls_dir: Path,
                                                              only_crm: str | None) -> None:
    """A connector's ceiling query, which the sandbox answers by walking its stamp index: the object's own
    condition still holds (the newer meeting and note are not Tasks), and queryAll counts deleted rows."""
    world = build_world(tmp_path)
    for record_id, stamp in ((2, "2027-06-01"), (3, "2027-06-02"), (5, "2027-06-03"), (6, "2027-06-04")):
        # 2: an email (Task), 3: a meeting (Event), 5: a note (neither), 6: a deleted call (Task)
        world.update("activities", record_id, {"updated_at": f"{stamp}T00:00:00.000Z"}, bump=False)
    world.update("stage_history", 1, {"updated_at": "2027-06-05T00:00:00.000Z"}, bump=False)
    # 300 more calls, one a minute on 2027-05-01 from 00:00 (04:59 is the newest): a newest-first query that
    # takes more than one page
    world.insert("activities", [{"id": 100 + n, "kind": "call", "subject": f"Call {n}", "owner_rep_id": 1,
                                 "created_at": "2027-01-01T00:00:00.000Z",
                                 "updated_at": f"2027-05-01T{n // 60:02d}:{n % 60:02d}:00.000Z"}
                                for n in range(300)])
    service = SalesforceService(world, only_crm=only_crm, limits_scale=0)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as running:
        sf = running.salesforce_client()

        def newest(sobject: str, include_deleted: bool = False) -> list[str]:
            soql = f"SELECT SystemModstamp FROM {sobject} ORDER BY SystemModstamp DESC LIMIT 1"
            return [row["SystemModstamp"] for row in sf.query(soql, include_deleted=include_deleted)["records"]]

        assert newest("Task") == ["2027-06-01T00:00:00.000+0000"]
        assert newest("Task", include_deleted=True) == ["2027-06-04T00:00:00.000+0000"]
        assert newest("Event") == ["2027-06-02T00:00:00.000+0000"]
        assert newest("OpportunityHistory") == ["2027-06-05T00:00:00.000+0000"]
        soql = "SELECT Subject FROM Task ORDER BY SystemModstamp DESC LIMIT 250"
        first = sf.query(soql, headers=SMALL_BATCH)
        rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_BATCH)
        subjects = [row["Subject"] for page in (first, rest) for row in page["records"]]
        # the email, then the calls from the newest (Call 299, 04:59) down: 250 in all
        assert subjects == ["Hello", *(f"Call {n}" for n in range(299, 50, -1))]
    world.close()
