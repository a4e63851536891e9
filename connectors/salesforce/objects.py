"""The Salesforce objects the connector syncs: fields, filters, and how a record becomes a normalized one.

Each :class:`SObject` names the fields it needs (missing → the object cannot sync), the fields it uses when
the org has them (``CurrencyIsoCode`` exists only in multi-currency orgs) and the fields the config names
(``mapping.region_field`` ...), which are checked against describe before any SOQL is built.  Converting a
record raises :class:`~connectors.salesforce.values.BadValue` for what cannot be read; the connector then
quarantines that record and lands the rest of the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import SalesforceMapping
from agent.sync.records import (
    AccountRecord,
    ActivityRecord,
    ContactRecord,
    ContractRecord,
    CrmRecord,
    CurrencyRateRecord,
    LeadRecord,
    LineItemRecord,
    OpportunityRecord,
    PipelineRecord,
    StageHistoryRecord,
    StageRecord,
    TeamRecord,
    UserRecord,
)
from connectors.salesforce.values import (
    BadValue,
    boolean,
    day,
    instant,
    integer,
    local_day_end,
    local_midnight,
    number,
    related,
    text,
)

DEFAULT_PIPELINE = "default"
STAMP = "SystemModstamp"
AUDIT = ("Id", "IsDeleted", STAMP)


@dataclass(frozen=True)
class SObject:
    """One synced object.

    snapshot: reference data small enough to read whole every run (roles, stages, currencies).
    lookback: the first load reaches back ``initial_lookback_days`` (transactional records only).
    owned: ``exclude_owner_ids`` applies (the object has an ``OwnerId``).
    """

    name: str
    table: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    snapshot: bool = False
    lookback: bool = False
    owned: bool = False
    may_be_absent: bool = False  # CurrencyType exists only in multi-currency orgs
    configured: Callable[[SalesforceMapping], dict[str, str]] = field(default=lambda mapping: {})
    deletable: bool = True


def _region(mapping: SalesforceMapping) -> dict[str, str]:
    return {"region_field": mapping.region_field}


def _lead_dates(mapping: SalesforceMapping) -> dict[str, str]:
    fields = {"mql_date_field": mapping.mql_date_field, "sql_date_field": mapping.sql_date_field}
    return {key: value for key, value in fields.items() if value}


def _recurring(mapping: SalesforceMapping) -> dict[str, str]:
    fields = {"recurring_term_field": mapping.recurring_term_field,
              "recurring_frequency_field": mapping.recurring_frequency_field}
    return {key: value for key, value in fields.items() if value}


ACTIVITY_FIELDS = ("Subject", "OwnerId", "WhoId", "WhatId", "AccountId", "ActivityDate", "CreatedDate", "Type")

OBJECTS: tuple[SObject, ...] = (
    SObject("UserRole", "team", ("Id", "Name"), (STAMP,), snapshot=True, deletable=False),
    SObject("User", "crm_user", ("Id", "Name", "Email", "IsActive", STAMP),
            ("UserRoleId", "ManagerId", "TimeZoneSidKey"), configured=_region, deletable=False),
    SObject("Pipeline", "pipeline", (), snapshot=True, deletable=False),
    SObject("OpportunityStage", "stage", ("Id", "ApiName", "MasterLabel", "IsClosed", "IsWon"),
            ("SortOrder", "DefaultProbability", "ForecastCategoryName", "IsActive"), snapshot=True, deletable=False),
    SObject("CurrencyType", "currency_rate", ("Id", "IsoCode", "ConversionRate"), ("IsCorporate", "IsActive"),
            snapshot=True, may_be_absent=True, deletable=False),
    SObject("DatedConversionRate", "currency_rate", ("Id", "IsoCode", "ConversionRate", "StartDate"),
            ("NextStartDate",), snapshot=True, may_be_absent=True, deletable=False),
    SObject("Account", "account", (*AUDIT, "Name"), ("OwnerId", "Industry", "CreatedDate"), owned=True,
            configured=_region),
    SObject("Contact", "contact", (*AUDIT, "LastName"),
            ("AccountId", "OwnerId", "Email", "Name", "LeadSource", "CreatedDate"), owned=True),
    SObject("Lead", "lead", (*AUDIT, "CreatedDate", "LastName"),
            ("OwnerId", "Name", "Email", "Company", "LeadSource", "Status", "IsConverted", "ConvertedDate",
             "ConvertedContactId", "ConvertedOpportunityId", "ConvertedAccountId", "LastModifiedDate"),
            lookback=True, owned=True, configured=_lead_dates),
    SObject("Opportunity", "opportunity", (*AUDIT, "CreatedDate", "StageName"),
            ("Name", "AccountId", "OwnerId", "Amount", "CurrencyIsoCode", "Probability", "ForecastCategoryName",
             "Type", "LeadSource", "CloseDate", "IsClosed", "IsWon", "RecordTypeId"), lookback=True, owned=True),
    SObject("OpportunityLineItem", "line_item", (*AUDIT, "OpportunityId"),
            ("Product2Id", "Name", "Quantity", "ListPrice", "UnitPrice", "TotalPrice", "CurrencyIsoCode"),
            configured=_recurring),
    SObject("OpportunityHistory", "stage_history", (*AUDIT, "OpportunityId", "StageName", "CreatedDate"),
            ("Amount", "Probability", "CloseDate", "CurrencyIsoCode")),
    SObject("Task", "activity", (*AUDIT, *ACTIVITY_FIELDS),
            ("Status", "IsClosed", "TaskSubtype", "CallType", "CallDurationInSeconds", "CallDisposition",
             "CompletedDateTime"), lookback=True, owned=True),
    SObject("Event", "activity", (*AUDIT, *ACTIVITY_FIELDS),
            ("StartDateTime", "EndDateTime", "ActivityDateTime", "DurationInMinutes"), lookback=True, owned=True),
    SObject("Contract", "contract", (*AUDIT, "AccountId"),
            ("OwnerId", "StartDate", "EndDate", "ContractTerm", "Status", "StatusCode"), owned=True),
)

BY_NAME = {sobject.name: sobject for sobject in OBJECTS}
OBJECT_TABLES = {sobject.name: sobject.table for sobject in OBJECTS}

TASK_SUBTYPE_KINDS = {"Call": "call", "Email": "email", "ListEmail": "email", "Task": "task", "Cadence": "task",
                      "LinkedIn": "task"}
STANDARD_ACTIVITY_TYPES = {"Call": "call", "Email": "email", "Meeting": "meeting", "Other": None}


class Converter:
    """Turns one object's raw records into normalized ones, with the connection's mapping and timezone.

    ``warn(message)`` is called once per unmapped picklist value (per object and field), not per record.
    """

    def __init__(self, mapping: SalesforceMapping, zone: ZoneInfo, home_currency: str, warn: Callable[[str], None],
                 now: datetime) -> None:
        self.mapping = mapping
        self.zone = zone
        self.home_currency = home_currency
        self.warn = warn
        self.now = now
        self._warned: set[tuple[str, str, str]] = set()
        self._dispatch: dict[str, Callable[[dict[str, Any]], CrmRecord]] = {
            "UserRole": self.team, "User": self.user, "OpportunityStage": self.stage, "CurrencyType": self.currency,
            "DatedConversionRate": self.dated_rate, "Account": self.account, "Contact": self.contact,
            "Lead": self.lead, "Opportunity": self.opportunity, "OpportunityLineItem": self.line_item,
            "OpportunityHistory": self.history, "Task": self.task, "Event": self.event, "Contract": self.contract,
        }

    def convert(self, object_name: str, raw: dict[str, Any]) -> CrmRecord:
        if not text(raw.get("Id")) and object_name != "OpportunityStage":
            raise BadValue("the record has no Id")
        return self._dispatch[object_name](raw)

    def unmapped(self, object_name: str, field_name: str, value: str, fallback: str, config_key: str) -> None:
        key = (object_name, field_name, value)
        if key in self._warned:
            return
        self._warned.add(key)
        self.warn(f"{object_name}.{field_name} value {value!r} is not in mapping.{config_key}; it lands as "
                  f"{fallback!r} (add it to [connections.<name>.mapping.{config_key}] to count it)")

    # -- people and reference data ------------------------------------------------------------------------

    def team(self, raw: dict[str, Any]) -> TeamRecord:
        return TeamRecord(source_id=raw["Id"], name=text(raw.get("Name")) or raw["Id"],
                          last_modified_at=instant(raw.get(STAMP), STAMP))

    def user(self, raw: dict[str, Any]) -> UserRecord:
        return UserRecord(source_id=raw["Id"], email=text(raw.get("Email")), name=text(raw.get("Name")),
                          active=boolean(raw.get("IsActive", True)), team_source_id=text(raw.get("UserRoleId")),
                          manager_source_id=text(raw.get("ManagerId")),
                          region=text(raw.get(self.mapping.region_field)), timezone=text(raw.get("TimeZoneSidKey")),
                          last_modified_at=instant(raw.get(STAMP), STAMP))

    def stage(self, raw: dict[str, Any]) -> StageRecord:
        api_name = text(raw.get("ApiName")) or text(raw.get("MasterLabel"))
        if not api_name:
            raise BadValue("the stage has no ApiName")
        probability = number(raw.get("DefaultProbability"), "DefaultProbability")
        return StageRecord(source_id=api_name, name=text(raw.get("MasterLabel")) or api_name,
                           pipeline_source_id=DEFAULT_PIPELINE,
                           sort_order=integer(raw.get("SortOrder"), "SortOrder") or 0,
                           probability=None if probability is None else probability / 100,
                           is_closed=boolean(raw.get("IsClosed")), is_won=boolean(raw.get("IsWon")),
                           forecast_category=text(raw.get("ForecastCategoryName")),
                           last_modified_at=instant(raw.get(STAMP), STAMP))

    def pipeline(self) -> PipelineRecord:
        # Salesforce has one opportunity picklist of stages; record types choose subsets of it.
        return PipelineRecord(source_id=DEFAULT_PIPELINE, name="Opportunities")

    def currency(self, raw: dict[str, Any]) -> CurrencyRateRecord:
        return CurrencyRateRecord(source_id=raw["Id"], iso_code=_iso(raw.get("IsoCode")),
                                  rate=_rate(raw.get("ConversionRate")), is_corporate=boolean(raw.get("IsCorporate")))

    def dated_rate(self, raw: dict[str, Any]) -> CurrencyRateRecord:
        end = day(raw.get("NextStartDate"), "NextStartDate")
        return CurrencyRateRecord(source_id=raw["Id"], iso_code=_iso(raw.get("IsoCode")),
                                  rate=_rate(raw.get("ConversionRate")),
                                  start_date=day(raw.get("StartDate"), "StartDate"),
                                  end_date=None if end is None or end.year >= 9999 else end)

    # -- accounts, contacts, leads ------------------------------------------------------------------------

    def account(self, raw: dict[str, Any]) -> AccountRecord:
        return AccountRecord(source_id=raw["Id"], name=text(raw.get("Name")),
                             owner_source_id=_user_id(raw.get("OwnerId")),
                             region=text(raw.get(self.mapping.region_field)), industry=text(raw.get("Industry")),
                             created_at=instant(raw.get("CreatedDate"), "CreatedDate"), **self._audit(raw))

    def contact(self, raw: dict[str, Any]) -> ContactRecord:
        return ContactRecord(source_id=raw["Id"], account_source_id=text(raw.get("AccountId")),
                             owner_source_id=_user_id(raw.get("OwnerId")), email=text(raw.get("Email")),
                             name=text(raw.get("Name")) or text(raw.get("LastName")),
                             lead_source=text(raw.get("LeadSource")),
                             created_at=instant(raw.get("CreatedDate"), "CreatedDate"), **self._audit(raw))

    def lead(self, raw: dict[str, Any]) -> LeadRecord:
        created = _required(instant(raw.get("CreatedDate"), "CreatedDate"), "CreatedDate")
        status = text(raw.get("Status"))
        converted_at = self._converted_at(raw)
        sql_at = self._configured_instant(raw, self.mapping.sql_date_field)
        if sql_at is None and status in self.mapping.sql_statuses:
            sql_at = converted_at
        return LeadRecord(source_id=raw["Id"], created_at=created, owner_source_id=_user_id(raw.get("OwnerId")),
                          name=text(raw.get("Name")) or text(raw.get("LastName")), email=text(raw.get("Email")),
                          company=text(raw.get("Company")), lead_source=text(raw.get("LeadSource")), status=status,
                          mql_at=self._configured_instant(raw, self.mapping.mql_date_field), sql_at=sql_at,
                          converted_at=converted_at,
                          converted_contact_source_id=text(raw.get("ConvertedContactId")),
                          converted_opportunity_source_id=text(raw.get("ConvertedOpportunityId")),
                          converted_account_source_id=text(raw.get("ConvertedAccountId")), **self._audit(raw))

    def _converted_at(self, raw: dict[str, Any]) -> datetime | None:
        """ConvertedDate is a date only.  A converted lead is locked, so its last modification is usually the
        conversion itself: use it when it falls on that date, else the end of that local day."""
        converted = day(raw.get("ConvertedDate"), "ConvertedDate")
        if converted is None or not boolean(raw.get("IsConverted", True)):
            return None
        modified = instant(raw.get("LastModifiedDate"), "LastModifiedDate")
        if modified is not None and modified.astimezone(self.zone).date() == converted:
            return modified
        return local_day_end(converted, self.zone)

    def _configured_instant(self, raw: dict[str, Any], field_name: str | None) -> datetime | None:
        if not field_name:
            return None
        value = raw.get(field_name)
        if isinstance(value, str) and len(value) == 10:
            found = day(value, field_name)
            return None if found is None else local_midnight(found, self.zone)
        return instant(value, field_name)

    # -- deals ---------------------------------------------------------------------------------------------

    def opportunity(self, raw: dict[str, Any]) -> OpportunityRecord:
        created = _required(instant(raw.get("CreatedDate"), "CreatedDate"), "CreatedDate")
        probability = number(raw.get("Probability"), "Probability")
        return OpportunityRecord(
            source_id=raw["Id"], created_at=created, name=text(raw.get("Name")),
            account_source_id=text(raw.get("AccountId")), owner_source_id=_user_id(raw.get("OwnerId")),
            pipeline_source_id=DEFAULT_PIPELINE, stage_source_id=text(raw.get("StageName")),
            amount=number(raw.get("Amount"), "Amount"), currency=self._currency(raw),
            probability=None if probability is None else probability / 100,
            forecast_category=text(raw.get("ForecastCategoryName")), deal_type=self._deal_type(raw.get("Type")),
            deal_type_raw=text(raw.get("Type")), lead_source=text(raw.get("LeadSource")),
            record_type=text(related(raw, "RecordType.Name")), close_date=day(raw.get("CloseDate"), "CloseDate"),
            is_closed=boolean(raw.get("IsClosed")), is_won=boolean(raw.get("IsWon")), **self._audit(raw))

    def _deal_type(self, value: Any) -> str:
        raw = text(value)
        if raw is None:
            return "other"
        mapped = self.mapping.deal_types.get(raw)
        if mapped is None:
            self.unmapped("Opportunity", "Type", raw, "other", "deal_types")
            return "other"
        return mapped

    def line_item(self, raw: dict[str, Any]) -> LineItemRecord:
        term_field, frequency_field = self.mapping.recurring_term_field, self.mapping.recurring_frequency_field
        frequency = text(raw.get(frequency_field)) if frequency_field else None
        return LineItemRecord(
            source_id=raw["Id"], opportunity_source_id=text(raw.get("OpportunityId")),
            product_source_id=text(raw.get("Product2Id")), product_name=text(raw.get("Name")),
            quantity=number(raw.get("Quantity"), "Quantity") or 0.0,
            list_price=number(raw.get("ListPrice"), "ListPrice"),
            unit_price=number(raw.get("UnitPrice"), "UnitPrice"), net_total=number(raw.get("TotalPrice"), "TotalPrice"),
            currency=self._currency(raw),
            recurring_term_months=integer(raw.get(term_field), term_field) if term_field else None,
            billing_frequency=frequency.lower() if frequency else None, **self._audit(raw))

    def history(self, raw: dict[str, Any]) -> StageHistoryRecord:
        entered = _required(instant(raw.get("CreatedDate"), "CreatedDate"), "CreatedDate")
        probability = number(raw.get("Probability"), "Probability")
        return StageHistoryRecord(
            source_id=raw["Id"], entered_at=entered, opportunity_source_id=text(raw.get("OpportunityId")),
            stage_source_id=text(raw.get("StageName")), amount=number(raw.get("Amount"), "Amount"),
            currency=text(raw.get("CurrencyIsoCode")),
            probability=None if probability is None else probability / 100,
            close_date=day(raw.get("CloseDate"), "CloseDate"), **self._audit(raw))

    # -- activities ------------------------------------------------------------------------------------------

    def task(self, raw: dict[str, Any]) -> ActivityRecord:
        subtype = text(raw.get("TaskSubtype"))
        kind = self._activity_kind("Task", raw.get("Type"), self._subtype_kind(subtype))
        status = text(raw.get("Status"))
        if status == "Completed":
            state = "completed"
        elif boolean(raw.get("IsClosed", False)):
            state = "cancelled"
        else:
            state = "open"
        call_type = text(raw.get("CallType"))
        direction = {"Outbound": "outbound", "Inbound": "inbound"}.get(call_type or "", "none")
        completed = instant(raw.get("CompletedDateTime"), "CompletedDateTime")
        due = day(raw.get("ActivityDate"), "ActivityDate")
        created = instant(raw.get("CreatedDate"), "CreatedDate")
        occurred = completed or (local_midnight(due, self.zone) if due else None) or created
        return ActivityRecord(source_id=raw["Id"], kind=kind, kind_raw=text(raw.get("Type")) or subtype,
                              subject=text(raw.get("Subject")), status=state, direction=direction,
                              occurred_at=occurred, created_at=created,
                              duration_seconds=integer(raw.get("CallDurationInSeconds"), "CallDurationInSeconds"),
                              outcome=text(raw.get("CallDisposition")), **self._links(raw), **self._audit(raw))

    def _subtype_kind(self, subtype: str | None) -> str:
        if subtype is None:
            return "task"
        kind = TASK_SUBTYPE_KINDS.get(subtype)
        if kind is None:
            self.unmapped("Task", "TaskSubtype", subtype, "other", "activity_types")
            return "other"
        return kind

    def event(self, raw: dict[str, Any]) -> ActivityRecord:
        kind = self._activity_kind("Event", raw.get("Type"), "meeting")
        start = instant(raw.get("StartDateTime") or raw.get("ActivityDateTime"), "StartDateTime")
        end = instant(raw.get("EndDateTime"), "EndDateTime")
        # Events have no status: one that has ended was held, one ahead is scheduled.
        status = "completed" if (end or start) is not None and (end or start) <= self.now else "scheduled"
        minutes = integer(raw.get("DurationInMinutes"), "DurationInMinutes")
        return ActivityRecord(source_id=raw["Id"], kind=kind, kind_raw=text(raw.get("Type")),
                              subject=text(raw.get("Subject")), status=status, direction="none", occurred_at=start,
                              created_at=instant(raw.get("CreatedDate"), "CreatedDate"),
                              duration_seconds=None if minutes is None else minutes * 60,
                              **self._links(raw), **self._audit(raw))

    def _activity_kind(self, object_name: str, value: Any, fallback: str) -> str:
        """``Type`` mapped by ``mapping.activity_types`` (Demo → demo ...); standard types and no type fall
        back to what the record is (a call task, a meeting); an unknown type is warned about once."""
        raw = text(value)
        if raw is None:
            return fallback
        if raw in self.mapping.activity_types:
            return self.mapping.activity_types[raw]
        if raw in STANDARD_ACTIVITY_TYPES:
            return STANDARD_ACTIVITY_TYPES[raw] or fallback
        self.unmapped(object_name, "Type", raw, fallback, "activity_types")
        return fallback

    def _links(self, raw: dict[str, Any]) -> dict[str, Any]:
        who, what = text(raw.get("WhoId")), text(raw.get("WhatId"))
        account = text(raw.get("AccountId"))
        return {
            "owner_source_id": _user_id(raw.get("OwnerId")),
            "lead_source_id": who if who and who.startswith("00Q") else None,
            "contact_source_id": who if who and who.startswith("003") else None,
            "opportunity_source_id": what if what and what.startswith("006") else None,
            "account_source_id": what if what and what.startswith("001") else account,
        }

    # -- contracts -------------------------------------------------------------------------------------------

    def contract(self, raw: dict[str, Any]) -> ContractRecord:
        start = _required(day(raw.get("StartDate"), "StartDate"), "StartDate")
        status_code = text(raw.get("StatusCode"))
        end = day(raw.get("EndDate"), "EndDate")
        return ContractRecord(source_id=raw["Id"], start_date=start, account_source_id=text(raw.get("AccountId")),
                              owner_source_id=_user_id(raw.get("OwnerId")), end_date=end,
                              cancelled_date=end if status_code == "Terminated" else None,
                              status=text(raw.get("Status")),
                              term_months=integer(raw.get("ContractTerm"), "ContractTerm"),
                              **self._audit(raw))

    # -- common ----------------------------------------------------------------------------------------------

    def _audit(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {"last_modified_at": instant(raw.get(STAMP), STAMP), "is_deleted": boolean(raw.get("IsDeleted", False))}

    def _currency(self, raw: dict[str, Any]) -> str:
        return text(raw.get("CurrencyIsoCode")) or self.home_currency


def _required(value: Any, field_name: str) -> Any:
    if value is None:
        raise BadValue(f"{field_name} is empty")
    return value


def _iso(value: Any) -> str:
    code = text(value)
    if code is None or len(code) != 3:
        raise BadValue(f"IsoCode {value!r} is not a currency code")
    return code.upper()


def _rate(value: Any) -> float:
    rate = number(value, "ConversionRate")
    if rate is None or rate <= 0:
        raise BadValue(f"ConversionRate {value!r} is not a positive number")
    return rate


def _user_id(value: Any) -> str | None:
    """Owners are users (005...) or queues (00G...); a queue owns nothing a rep is measured on."""
    owner = text(value)
    return owner if owner and owner.startswith("005") else None
