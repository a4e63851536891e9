"""Salesforce objects over the neutral world tables: names, fields, types, ids and picklist values.

Every field is a SQL expression over the world store (`{t}` stands for the table alias), so a query selects,
filters and sorts in SQLite and never loads a table into memory. Neutral values become Salesforce picklist
values through CASE expressions (`deal_type` `new_business` is Type `New Customer`); values the mapping does
not know pass through as they are, because real orgs hold odd values and connectors must meet them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Types as describe reports them, and how the query layer compares and renders them.
STRING_TYPES = frozenset({"string", "picklist", "textarea", "email", "phone", "url", "combobox"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
ID_TYPES = frozenset({"id", "reference"})
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
    "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string",
    "combobox": "xsd:string", "currency": "xsd:double", "double": "xsd:double", "percent": "xsd:double",
    "int": "xsd:int", "date": "xsd:date", "datetime": "xsd:dateTime", "boolean": "xsd:boolean",
}

FORECAST_CATEGORY_API = {"Pipeline": "Pipeline", "BestCase": "BestCase", "Commit": "Forecast",
                         "Closed": "Closed", "Omitted": "Omitted"}
FORECAST_CATEGORY_LABEL = {"Pipeline": "Pipeline", "BestCase": "Best Case", "Commit": "Commit",
                           "Closed": "Closed", "Omitted": "Omitted"}
OPPORTUNITY_TYPE = {"new_business": "New Customer", "upsell": "Existing Customer - Upgrade",
                    "cross_sell": "Existing Customer - Cross-Sell", "renewal": "Renewal"}
TASK_STATUS = {"completed": "Completed", "open": "Not Started", "scheduled": "Not Started",
               "cancelled": "Deferred", "no_show": "Deferred"}
EVENT_STATUS = {"completed": "Completed", "open": "Scheduled", "scheduled": "Scheduled",
                "cancelled": "Cancelled", "no_show": "No Show"}
TASK_SUBTYPE = {"call": "Call", "email": "Email", "task": "Task"}
CALL_TYPE = {"outbound": "Outbound", "inbound": "Inbound"}
BILLING_FREQUENCY = {"monthly": "Monthly", "quarterly": "Quarterly", "annually": "Annually"}
CONTRACT_STATUS_CODE = {"Draft": "Draft", "Activated": "Activated", "Cancelled": "Terminated",
                        "Expired": "Expired"}
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                    "customer", "other")

DELETED_FALSE = "0"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    sql: str  # expression over `{t}`; for id/reference fields the world's integer id
    label: str = ""
    picklist: tuple[str, ...] = ()
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    # polymorphic lookups (WhoId, WhatId): (object name, integer-id expression that is NULL unless the
    # lookup points at that object), in the order Salesforce would resolve them
    alternatives: tuple[tuple[str, str], ...] = ()
    converted_sql: str | None = None  # currency fields: the amount in the corporate currency
    length: int = 0
    nillable: bool = True
    custom: bool = False
    standard_picklist_from_world: str | None = None  # SQL giving extra picklist values found in the world

    @property
    def is_polymorphic(self) -> bool:
        return bool(self.alternatives)


@dataclass(frozen=True)
class SObjectType:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    source: str  # world table name, or a parenthesised SELECT for objects the world derives
    fields: tuple[Field, ...]
    world_table: str | None = None  # the world table records live in (for faults that mutate it)
    base_condition: str | None = None  # restricts the source (Task = activities that are not meetings)
    deleted_sql: str = DELETED_FALSE  # expression that is 1 for soft-deleted rows
    crm_column: bool = True  # False for records both CRMs serve (stages, products, currency rates)
    queryable: bool = True
    custom_setting: bool = False

    def field(self, name: str) -> Field | None:
        return self._field_index().get(name.lower())

    def relationship(self, name: str) -> Field | None:
        lowered = name.lower()
        for candidate in self.fields:
            if candidate.relationship_name and candidate.relationship_name.lower() == lowered:
                return candidate
        return None

    def _field_index(self) -> dict[str, Field]:
        index = self.__dict__.get("_index")
        if index is None:
            index = {candidate.name.lower(): candidate for candidate in self.fields}
            object.__setattr__(self, "_index", index)
        return index


# ------------------------------------------------------------------------------------------ builders

def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mapped(column: str, mapping: Mapping[str, str]) -> str:
    """CASE mapping neutral values to Salesforce ones; other values pass through unchanged."""
    whens = " ".join(f"WHEN {_quote(neutral)} THEN {_quote(salesforce)}" for neutral, salesforce in mapping.items())
    return f"(CASE {column} {whens} ELSE {column} END)"


def datetime_sql(expression: str) -> str:
    return expression


def date_of(expression: str) -> str:
    return f"substr({expression}, 1, 10)"


def stage_value(column: str) -> str:
    return f"(SELECT s.{column} FROM stages s WHERE s.id = {{t}}.stage_id)"


def rate_of(currency_expression: str) -> str:
    """Units of a currency per corporate unit, the current (undated) rate; 1 for the corporate currency."""
    return (f"COALESCE((SELECT r.rate FROM currency_rates r WHERE r.iso_code = {currency_expression} "
            f"AND r.start_date IS NULL ORDER BY r.id LIMIT 1), 1.0)")


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ")
    return words.strip()


def f(name: str, type_: str, sql: str, **extra: object) -> Field:
    extra.setdefault("label", _label(name))
    extra.setdefault("custom", name.endswith("__c"))
    return Field(name=name, type=type_, sql=sql, **extra)  # type: ignore[arg-type]


def ref(name: str, target: str, sql: str, relationship: str | None = None, **extra: object) -> Field:
    if relationship is None and name.endswith("Id"):
        relationship = name[:-2]
    elif relationship is None and name.endswith("__c"):
        relationship = name[:-3] + "__r"
    return f(name, "reference", sql, reference_to=(target,), relationship_name=relationship, **extra)


def audit_fields(created: str = "{t}.created_at", modified: str = "{t}.updated_at",
                 deleted: str = DELETED_FALSE, by_user: str = "{t}.owner_rep_id",
                 last_modified: bool = True) -> list[Field]:
    fields = [
        f("IsDeleted", "boolean", deleted, nillable=False),
        f("CreatedDate", "datetime", created, nillable=False),
        ref("CreatedById", "User", by_user),
    ]
    if last_modified:
        fields += [f("LastModifiedDate", "datetime", modified, nillable=False),
                   ref("LastModifiedById", "User", by_user)]
    fields.append(f("SystemModstamp", "datetime", modified, nillable=False))
    return fields


def first_name(expression: str) -> str:
    return f"(CASE WHEN instr({expression}, ' ') > 0 THEN substr({expression}, 1, instr({expression}, ' ') - 1) END)"


def last_name(expression: str) -> str:
    return (f"(CASE WHEN instr({expression}, ' ') > 0 THEN substr({expression}, instr({expression}, ' ') + 1) "
            f"ELSE {expression} END)")


def full_name(first: str, last: str) -> str:
    return f"(CASE WHEN {first} IS NULL OR {first} = '' THEN {last} ELSE {first} || ' ' || {last} END)"


# --------------------------------------------------------------------------------------------- model

def build_objects(home_currency: str, org_timezone: str) -> dict[str, SObjectType]:
    """The objects the sandbox serves, keyed by lower-case name."""
    if not re.fullmatch(r"[A-Z]{3}", home_currency):
        raise ValueError(f"home currency {home_currency!r} is not an ISO 4217 code")
    home = _quote(home_currency)
    currency = f"COALESCE({{t}}.currency, {home})"
    deleted = "COALESCE({t}.deleted, 0)"
    objects = [
        _user(home, org_timezone), _user_role(), _account(home, deleted), _contact(home, deleted),
        _lead(home, deleted), _opportunity(currency, deleted), _line_item(currency, deleted),
        _opportunity_history(home), _task(home, deleted), _event(home, deleted), _contract(currency, deleted),
        _opportunity_stage(), _product(currency), _pricebook(), _pricebook_entry(currency),
        _currency_type(home), _dated_conversion_rate(), _organization(org_timezone),
    ]
    return {sobject.name.lower(): sobject for sobject in objects}


def _user(home: str, org_timezone: str) -> SObjectType:
    name = "{t}.name"
    return SObjectType(
        name="User", label="User", label_plural="Users", key_prefix="005", source="reps", world_table="reps",
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Username", "string", "{t}.email", length=80, nillable=False),
            f("Name", "string", name, length=121, nillable=False),
            f("FirstName", "string", first_name(name), length=40),
            f("LastName", "string", last_name(name), length=80, nillable=False),
            f("Email", "email", "{t}.email", length=128, nillable=False),
            f("Alias", "string", "lower(substr(replace({t}.name, ' ', ''), 1, 8))", length=8),
            f("IsActive", "boolean", "COALESCE({t}.active, 1)", nillable=False),
            ref("UserRoleId", "UserRole", "{t}.team_id"),
            ref("ManagerId", "User", "{t}.manager_id"),
            f("Department", "string", "(SELECT tm.name FROM teams tm WHERE tm.id = {t}.team_id)", length=80),
            f("Region__c", "picklist",
              "COALESCE({t}.region, (SELECT tm.region FROM teams tm WHERE tm.id = {t}.team_id))"),
            f("TimeZoneSidKey", "picklist", f"COALESCE({{t}}.timezone, {_quote(org_timezone)})", nillable=False),
            f("UserType", "picklist", "'Standard'", picklist=("Standard",), nillable=False),
            f("DefaultCurrencyIsoCode", "picklist", home, nillable=False),
            f("CurrencyIsoCode", "picklist", home, nillable=False),
            *audit_fields(by_user="{t}.id")[1:],
        ),
    )


def _user_role() -> SObjectType:
    return SObjectType(
        name="UserRole", label="Role", label_plural="Roles", key_prefix="00E", source="teams", world_table="teams",
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=80, nillable=False),
            f("DeveloperName", "string",
              "replace(replace(replace(trim({t}.name), ' ', '_'), '-', '_'), '&', '_')", length=80),
            ref("ParentRoleId", "UserRole", "NULL"),
            ref("ForecastUserId", "User", "{t}.manager_rep_id"),
            f("RollupDescription", "string", "{t}.name", length=80),
            f("OpportunityAccessForAccountOwner", "picklist", "'Edit'"),
            f("LastModifiedDate", "datetime", "{t}.updated_at", nillable=False),
            ref("LastModifiedById", "User", "{t}.manager_rep_id"),
            f("SystemModstamp", "datetime", "{t}.updated_at", nillable=False),
        ),
    )


def _account(home: str, deleted: str) -> SObjectType:
    return SObjectType(
        name="Account", label="Account", label_plural="Accounts", key_prefix="001", source="accounts",
        world_table="accounts", deleted_sql=deleted,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=255, nillable=False),
            ref("OwnerId", "User", "{t}.owner_rep_id", nillable=False),
            f("Industry", "picklist", "{t}.industry", picklist=(
                "Agriculture", "Apparel", "Banking", "Biotechnology", "Communications", "Consulting", "Education",
                "Electronics", "Energy", "Engineering", "Finance", "Healthcare", "Manufacturing", "Media",
                "Retail", "Technology", "Other")),
            f("Type", "picklist", "'Customer - Direct'", picklist=("Prospect", "Customer - Direct",
                                                                   "Customer - Channel", "Other")),
            f("Region__c", "picklist", "{t}.region"),
            f("CurrencyIsoCode", "picklist", home, nillable=False),
            *audit_fields(deleted=deleted),
        ),
    )


def _contact(home: str, deleted: str) -> SObjectType:
    first, last = "{t}.first_name", "{t}.last_name"
    return SObjectType(
        name="Contact", label="Contact", label_plural="Contacts", key_prefix="003", source="contacts",
        world_table="contacts", deleted_sql=deleted,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            ref("AccountId", "Account", "{t}.account_id"),
            f("FirstName", "string", first, length=40),
            f("LastName", "string", last, length=80, nillable=False),
            f("Name", "string", full_name(first, last), length=121, nillable=False),
            f("Email", "email", "{t}.email", length=80),
            ref("OwnerId", "User", "{t}.owner_rep_id", nillable=False),
            f("LeadSource", "picklist", "{t}.lead_source", picklist=LEAD_SOURCES),
            f("Lifecycle_Stage__c", "picklist", "{t}.lifecycle_stage", picklist=LIFECYCLE_STAGES),
            f("MQL_Date__c", "datetime", "{t}.mql_at"),
            f("SQL_Date__c", "datetime", "{t}.sql_at"),
            f("Customer_Date__c", "datetime", "{t}.customer_at"),
            f("CurrencyIsoCode", "picklist", home, nillable=False),
            *audit_fields(deleted=deleted),
        ),
    )


def _lead(home: str, deleted: str) -> SObjectType:
    first, last = "{t}.first_name", "{t}.last_name"
    converted = ("({t}.converted_at IS NOT NULL OR {t}.converted_contact_id IS NOT NULL "
                 "OR {t}.converted_opportunity_id IS NOT NULL)")
    return SObjectType(
        name="Lead", label="Lead", label_plural="Leads", key_prefix="00Q", source="leads", world_table="leads",
        deleted_sql=deleted,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("FirstName", "string", first, length=40),
            f("LastName", "string", last, length=80, nillable=False),
            f("Name", "string", full_name(first, last), length=121, nillable=False),
            f("Email", "email", "{t}.email", length=80),
            f("Company", "string", "{t}.company", length=255, nillable=False),
            f("LeadSource", "picklist", "{t}.lead_source", picklist=LEAD_SOURCES),
            f("Status", "picklist", "{t}.status", picklist=LEAD_STATUSES, nillable=False),
            ref("OwnerId", "User", "{t}.owner_rep_id", nillable=False),
            f("IsConverted", "boolean", converted, nillable=False),
            f("ConvertedDate", "date", date_of("{t}.converted_at")),
            ref("ConvertedAccountId", "Account", "{t}.converted_account_id"),
            ref("ConvertedContactId", "Contact", "{t}.converted_contact_id"),
            ref("ConvertedOpportunityId", "Opportunity", "{t}.converted_opportunity_id"),
            f("MQL_Date__c", "datetime", "{t}.mql_at"),
            f("SQL_Date__c", "datetime", "{t}.sql_at"),
            f("CurrencyIsoCode", "picklist", home, nillable=False),
            *audit_fields(deleted=deleted),
        ),
    )


def _opportunity(currency: str, deleted: str) -> SObjectType:
    probability_fraction = f"COALESCE({{t}}.probability, {stage_value('probability')})"
    probability = f"ROUND({probability_fraction} * 100, 4)"
    forecast_neutral = f"COALESCE({{t}}.forecast_category, {stage_value('forecast_category')})"
    amount_home = f"COALESCE({{t}}.amount_home, {{t}}.amount / {rate_of(currency)})"
    return SObjectType(
        name="Opportunity", label="Opportunity", label_plural="Opportunities", key_prefix="006",
        source="opportunities", world_table="opportunities", deleted_sql=deleted,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=120, nillable=False),
            ref("AccountId", "Account", "{t}.account_id"),
            ref("OwnerId", "User", "{t}.owner_rep_id", nillable=False),
            f("StageName", "picklist", stage_value("name"), nillable=False,
              standard_picklist_from_world="SELECT name FROM stages ORDER BY pipeline_id, sort_order"),
            f("Amount", "currency", "{t}.amount", converted_sql=amount_home),
            f("CurrencyIsoCode", "picklist", currency, nillable=False),
            f("Probability", "percent", probability),
            f("ExpectedRevenue", "currency", f"({{t}}.amount * {probability_fraction})",
              converted_sql=f"({amount_home} * {probability_fraction})"),
            f("CloseDate", "date", "{t}.close_date", nillable=False),
            # read-only in Salesforce, derived from the stage (the world's own flags only fill a gap)
            f("IsClosed", "boolean", f"COALESCE({stage_value('is_closed')}, {{t}}.is_closed, 0)", nillable=False),
            f("IsWon", "boolean", f"COALESCE({stage_value('is_won')}, {{t}}.is_won, 0)", nillable=False),
            f("ForecastCategory", "picklist", mapped(forecast_neutral, FORECAST_CATEGORY_API),
              picklist=tuple(dict.fromkeys(FORECAST_CATEGORY_API.values())), nillable=False),
            f("ForecastCategoryName", "picklist", mapped(forecast_neutral, FORECAST_CATEGORY_LABEL),
              picklist=tuple(FORECAST_CATEGORY_LABEL.values())),
            f("Type", "picklist", mapped("{t}.deal_type", OPPORTUNITY_TYPE),
              picklist=("Existing Customer - Upgrade", "Existing Customer - Replacement",
                        "Existing Customer - Downgrade", "Existing Customer - Cross-Sell", "New Customer",
                        "Renewal")),
            f("LeadSource", "picklist", "{t}.lead_source", picklist=LEAD_SOURCES),
            f("FiscalYear", "int", "CAST(substr({t}.close_date, 1, 4) AS INTEGER)"),
            f("FiscalQuarter", "int", "((CAST(substr({t}.close_date, 6, 2) AS INTEGER) + 2) / 3)"),
            f("Fiscal", "string", "(substr({t}.close_date, 1, 4) || ' ' || "
                                  "((CAST(substr({t}.close_date, 6, 2) AS INTEGER) + 2) / 3))"),
            f("HasOpportunityLineItem", "boolean",
              "EXISTS (SELECT 1 FROM line_items li WHERE li.opportunity_id = {t}.id AND COALESCE(li.deleted, 0) = 0)",
              nillable=False),
            f("LastActivityDate", "date",
              "(SELECT substr(MAX(a.occurred_at), 1, 10) FROM activities a WHERE a.opportunity_id = {t}.id "
              "AND COALESCE(a.deleted, 0) = 0 AND a.kind IN ('call', 'email', 'meeting', 'task'))"),
            f("LastStageChangeDate", "datetime",
              "(SELECT MAX(h.entered_at) FROM stage_history h WHERE h.opportunity_id = {t}.id)"),
            f("Pipeline__c", "string", "(SELECT p.name FROM pipelines p WHERE p.id = {t}.pipeline_id)", length=80),
            *audit_fields(deleted=deleted),
        ),
    )


def _line_item(currency: str, deleted: str) -> SObjectType:
    subtotal = "({t}.quantity * {t}.unit_price)"
    rate = rate_of(currency)
    product = "(SELECT p.{column} FROM products p WHERE p.id = {{t}}.product_id)"
    return SObjectType(
        name="OpportunityLineItem", label="Opportunity Product", label_plural="Opportunity Product",
        key_prefix="00k", source="line_items", world_table="line_items", deleted_sql=deleted,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            ref("OpportunityId", "Opportunity", "{t}.opportunity_id", nillable=False),
            ref("Product2Id", "Product2", "{t}.product_id"),
            ref("PricebookEntryId", "PricebookEntry", "{t}.product_id"),
            f("Name", "string", product.format(column="name"), length=376),
            f("ProductCode", "string", product.format(column="sku"), length=255),
            f("Quantity", "double", "{t}.quantity", nillable=False),
            f("ListPrice", "currency", "{t}.list_price", converted_sql=f"({{t}}.list_price / {rate})"),
            f("UnitPrice", "currency", "{t}.unit_price", converted_sql=f"({{t}}.unit_price / {rate})"),
            f("Subtotal", "currency", subtotal, converted_sql=f"({subtotal} / {rate})"),
            # Salesforce applies Discount on top of UnitPrice; the world's unit_price already carries the
            # discount, so Discount shows only what the net total takes off beyond it.
            f("Discount", "percent",
              f"(CASE WHEN {subtotal} > 0 AND {{t}}.total_price < {subtotal} - 0.005 "
              f"THEN ROUND(100.0 * (1 - {{t}}.total_price / {subtotal}), 2) END)"),
            f("TotalPrice", "currency", "{t}.total_price", converted_sql=f"({{t}}.total_price / {rate})"),
            f("CurrencyIsoCode", "picklist", currency, nillable=False),
            f("ServiceDate", "date", "NULL"),
            f("Recurring_Term_Months__c", "double", "{t}.recurring_term_months"),
            f("Billing_Frequency__c", "picklist", mapped("{t}.billing_frequency", BILLING_FREQUENCY),
              picklist=tuple(BILLING_FREQUENCY.values())),
            *audit_fields(deleted=deleted,
                          by_user="(SELECT o.owner_rep_id FROM opportunities o WHERE o.id = {t}.opportunity_id)"),
        ),
    )


def _opportunity_history(home: str) -> SObjectType:
    forecast = stage_value("forecast_category")
    return SObjectType(
        name="OpportunityHistory", label="Opportunity History", label_plural="Opportunity History",
        key_prefix="008", source="stage_history", world_table="stage_history",
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            ref("OpportunityId", "Opportunity", "{t}.opportunity_id", nillable=False),
            f("StageName", "picklist", stage_value("name"), nillable=False),
            f("Amount", "currency", "{t}.amount"),
            f("Probability", "percent", "ROUND({t}.probability * 100, 4)"),
            f("ExpectedRevenue", "currency", "({t}.amount * {t}.probability)"),
            f("CloseDate", "date", "{t}.close_date"),
            f("ForecastCategory", "picklist", mapped(forecast, FORECAST_CATEGORY_API),
              picklist=tuple(dict.fromkeys(FORECAST_CATEGORY_API.values()))),
            f("CurrencyIsoCode", "picklist",
              f"COALESCE((SELECT o.currency FROM opportunities o WHERE o.id = {{t}}.opportunity_id), {home})"),
            *audit_fields(created="{t}.entered_at", modified="{t}.updated_at",  # never NULL: the world sets it
                          by_user="(SELECT o.owner_rep_id FROM opportunities o WHERE o.id = {t}.opportunity_id)",
                          last_modified=False),
        ),
    )


def _activity_common(deleted: str) -> list[Field]:
    return [
        f("Id", "id", "{t}.id", nillable=False),
        f("Subject", "combobox", "{t}.subject", length=255),
        ref("OwnerId", "User", "{t}.owner_rep_id", nillable=False),
        f("WhoId", "reference", "NULL", reference_to=("Contact", "Lead"), relationship_name="Who",
          alternatives=(("Contact", "{t}.contact_id"),
                        ("Lead", "(CASE WHEN {t}.contact_id IS NULL THEN {t}.lead_id END)"))),
        f("WhatId", "reference", "NULL", reference_to=("Opportunity", "Account"), relationship_name="What",
          alternatives=(("Opportunity", "{t}.opportunity_id"),
                        ("Account", "(CASE WHEN {t}.opportunity_id IS NULL THEN {t}.account_id END)"))),
        ref("AccountId", "Account",
            "COALESCE({t}.account_id, (SELECT o.account_id FROM opportunities o WHERE o.id = {t}.opportunity_id))"),
        f("ActivityDate", "date", date_of("{t}.occurred_at")),
        f("Outcome__c", "string", "{t}.outcome", length=255),
        *audit_fields(deleted=deleted),
    ]


def _task(home: str, deleted: str) -> SObjectType:
    completed = "({t}.status IN ('completed', 'cancelled', 'no_show'))"
    return SObjectType(
        name="Task", label="Task", label_plural="Tasks", key_prefix="00T", source="activities",
        world_table="activities", base_condition="{t}.kind IN ('call', 'email', 'task')", deleted_sql=deleted,
        fields=(
            *_activity_common(deleted),
            f("Status", "picklist", mapped("{t}.status", TASK_STATUS), nillable=False,
              picklist=("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")),
            f("Priority", "picklist", "'Normal'", picklist=("High", "Normal", "Low"), nillable=False),
            f("IsClosed", "boolean", completed, nillable=False),
            f("TaskSubtype", "picklist", mapped("{t}.kind", TASK_SUBTYPE),
              picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")),
            f("Type", "picklist",
              "COALESCE({t}.subtype, CASE {t}.kind WHEN 'call' THEN 'Call' WHEN 'email' THEN 'Email' END)",
              picklist=("Call", "Email", "Meeting", "Other")),
            f("CallType", "picklist", f"(CASE WHEN {{t}}.kind = 'call' THEN {mapped('{t}.direction', CALL_TYPE)} END)",
              picklist=("Internal", "Inbound", "Outbound")),
            f("CallDurationInSeconds", "int", "(CASE WHEN {t}.kind = 'call' THEN {t}.duration_seconds END)"),
            f("CallDisposition", "string", "(CASE WHEN {t}.kind = 'call' THEN {t}.outcome END)", length=255),
            f("CompletedDateTime", "datetime", "(CASE WHEN {t}.status = 'completed' THEN {t}.occurred_at END)"),
            f("CurrencyIsoCode", "picklist", home, nillable=False),
        ),
    )


def _event(home: str, deleted: str) -> SObjectType:
    end = "strftime('%Y-%m-%dT%H:%M:%fZ', {t}.occurred_at, '+' || COALESCE({t}.duration_seconds, 0) || ' seconds')"
    return SObjectType(
        name="Event", label="Event", label_plural="Events", key_prefix="00U", source="activities",
        world_table="activities", base_condition="{t}.kind = 'meeting'", deleted_sql=deleted,
        fields=(
            *_activity_common(deleted),
            f("ActivityDateTime", "datetime", "{t}.occurred_at"),
            f("StartDateTime", "datetime", "{t}.occurred_at"),
            f("EndDateTime", "datetime", f"(CASE WHEN {{t}}.occurred_at IS NOT NULL THEN {end} END)"),
            f("DurationInMinutes", "int", "CAST(COALESCE({t}.duration_seconds, 0) / 60 AS INTEGER)"),
            f("IsAllDayEvent", "boolean", "0", nillable=False),
            f("EventSubtype", "picklist", "'Event'", picklist=("Event",)),
            f("Type", "picklist", "COALESCE({t}.subtype, 'Meeting')",
              picklist=("Call", "Email", "Meeting", "Other")),
            f("ShowAs", "picklist", "'Busy'", picklist=("Busy", "OutOfOffice", "Free")),
            f("Status__c", "picklist", mapped("{t}.status", EVENT_STATUS),
              picklist=tuple(dict.fromkeys(EVENT_STATUS.values()))),
            f("CurrencyIsoCode", "picklist", home, nillable=False),
        ),
    )


def _contract(currency: str, deleted: str) -> SObjectType:
    owner = "(SELECT a.owner_rep_id FROM accounts a WHERE a.id = {t}.account_id)"
    return SObjectType(
        name="Contract", label="Contract", label_plural="Contracts", key_prefix="800", source="contracts",
        world_table="contracts", deleted_sql=deleted,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("ContractNumber", "string", "printf('%08d', {t}.id)", length=30, nillable=False),
            ref("AccountId", "Account", "{t}.account_id", nillable=False),
            ref("OwnerId", "User", owner, nillable=False),
            f("StartDate", "date", "{t}.start_date"),
            f("EndDate", "date", "{t}.end_date"),
            f("ContractTerm", "int", "{t}.term_months"),
            f("Status", "picklist", "{t}.status", picklist=("Draft", "In Approval Process", "Activated"),
              nillable=False),
            f("StatusCode", "picklist", mapped("{t}.status", CONTRACT_STATUS_CODE),
              picklist=("Draft", "InApproval", "Activated", "Terminated", "Expired"), nillable=False),
            ref("Opportunity__c", "Opportunity", "{t}.opportunity_id"),
            f("Monthly_Value__c", "currency", "{t}.monthly_value",
              converted_sql=f"({{t}}.monthly_value / {rate_of(currency)})"),
            f("CurrencyIsoCode", "picklist", currency, nillable=False),
            *audit_fields(deleted=deleted, by_user=owner),
        ),
    )


def _opportunity_stage() -> SObjectType:
    forecast = "{t}.forecast_category"
    return SObjectType(
        name="OpportunityStage", label="Opportunity Stage", label_plural="Opportunity Stages", key_prefix="01J",
        source="stages", world_table="stages", crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("MasterLabel", "string", "{t}.name", length=255, nillable=False),
            f("ApiName", "string", "{t}.name", length=255, nillable=False),
            f("IsActive", "boolean", "1", nillable=False),
            f("IsClosed", "boolean", "COALESCE({t}.is_closed, 0)", nillable=False),
            f("IsWon", "boolean", "COALESCE({t}.is_won, 0)", nillable=False),
            f("DefaultProbability", "percent", "ROUND({t}.probability * 100, 4)"),
            f("ForecastCategory", "picklist", mapped(forecast, FORECAST_CATEGORY_API)),
            f("ForecastCategoryName", "picklist", mapped(forecast, FORECAST_CATEGORY_LABEL)),
            f("SortOrder", "int", "{t}.sort_order"),
            f("Description", "string", "(SELECT p.name FROM pipelines p WHERE p.id = {t}.pipeline_id)", length=255),
            f("CreatedDate", "datetime", "{t}.created_at", nillable=False),
            f("LastModifiedDate", "datetime", "{t}.updated_at", nillable=False),
            f("SystemModstamp", "datetime", "{t}.updated_at", nillable=False),
        ),
    )


def _product(currency: str) -> SObjectType:
    return SObjectType(
        name="Product2", label="Product", label_plural="Products", key_prefix="01t", source="products",
        world_table="products", crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=255, nillable=False),
            f("ProductCode", "string", "{t}.sku", length=255),
            f("Family", "picklist", "{t}.family"),
            f("IsActive", "boolean", "1", nillable=False),
            f("Unit_Cost__c", "currency", "{t}.unit_cost",
              converted_sql=f"({{t}}.unit_cost / {rate_of(currency)})"),
            f("CurrencyIsoCode", "picklist", currency, nillable=False),
            *audit_fields(by_user="NULL"),
        ),
    )


def _pricebook() -> SObjectType:
    source = ("(SELECT 1 AS id, 'Standard Price Book' AS name, 1 AS is_standard, "
              "'2000-01-01T00:00:00.000Z' AS created_at, '2000-01-01T00:00:00.000Z' AS updated_at)")
    return SObjectType(
        name="Pricebook2", label="Price Book", label_plural="Price Books", key_prefix="01s", source=source,
        crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=255, nillable=False),
            f("IsStandard", "boolean", "{t}.is_standard", nillable=False),
            f("IsActive", "boolean", "1", nillable=False),
            *audit_fields(by_user="NULL"),
        ),
    )


def _pricebook_entry(currency: str) -> SObjectType:
    return SObjectType(
        name="PricebookEntry", label="Price Book Entry", label_plural="Price Book Entries", key_prefix="01u",
        source="products", world_table="products", crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=255),
            ref("Product2Id", "Product2", "{t}.id", nillable=False),
            ref("Pricebook2Id", "Pricebook2", "1", nillable=False),
            f("UnitPrice", "currency", "{t}.list_price", converted_sql=f"({{t}}.list_price / {rate_of(currency)})"),
            f("ProductCode", "string", "{t}.sku", length=255),
            f("IsActive", "boolean", "1", nillable=False),
            f("UseStandardPrice", "boolean", "0", nillable=False),
            f("CurrencyIsoCode", "picklist", currency, nillable=False),
            *audit_fields(by_user="NULL"),
        ),
    )


def _currency_type(home: str) -> SObjectType:
    source = (f"(SELECT r.id AS id, r.iso_code AS iso_code, r.rate AS rate, "
              f"CASE WHEN r.iso_code = {home} THEN 1 ELSE COALESCE(r.is_corporate, 0) END AS is_corporate "
              f"FROM currency_rates r WHERE r.start_date IS NULL "
              f"UNION ALL SELECT 0, {home}, 1.0, 1 WHERE NOT EXISTS (SELECT 1 FROM currency_rates r2 "
              f"WHERE r2.iso_code = {home} AND r2.start_date IS NULL))")
    return SObjectType(
        name="CurrencyType", label="Currency", label_plural="Currencies", key_prefix="02y", source=source,
        world_table="currency_rates", crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("IsoCode", "picklist", "{t}.iso_code", nillable=False),
            f("ConversionRate", "double", "{t}.rate", nillable=False),
            f("DecimalPlaces", "int", "2", nillable=False),
            f("IsActive", "boolean", "1", nillable=False),
            f("IsCorporate", "boolean", "{t}.is_corporate", nillable=False),
        ),
    )


def _dated_conversion_rate() -> SObjectType:
    next_start = ("COALESCE((SELECT MIN(n.start_date) FROM currency_rates n WHERE n.iso_code = {t}.iso_code "
                  "AND n.start_date > {t}.start_date), '9999-12-31')")
    return SObjectType(
        name="DatedConversionRate", label="Dated Exchange Rate", label_plural="Dated Exchange Rates",
        key_prefix="04w", source="currency_rates", world_table="currency_rates",
        base_condition="{t}.start_date IS NOT NULL", crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("IsoCode", "picklist", "{t}.iso_code", nillable=False),
            f("ConversionRate", "double", "{t}.rate", nillable=False),
            f("StartDate", "date", "{t}.start_date", nillable=False),
            f("NextStartDate", "date", next_start),
        ),
    )


def _organization(org_timezone: str) -> SObjectType:
    source = (f"(SELECT 1 AS id, 'KPI Agent Sandbox' AS name, {_quote(org_timezone)} AS timezone, "
              "'2020-01-01T00:00:00.000Z' AS created_at, '2020-01-01T00:00:00.000Z' AS updated_at)")
    return SObjectType(
        name="Organization", label="Organization", label_plural="Organizations", key_prefix="00D", source=source,
        crm_column=False,
        fields=(
            f("Id", "id", "{t}.id", nillable=False),
            f("Name", "string", "{t}.name", length=80, nillable=False),
            f("IsSandbox", "boolean", "1", nillable=False),
            f("OrganizationType", "picklist", "'Enterprise Edition'"),
            f("InstanceName", "string", "'SANDBOX'", length=5),
            f("TimeZoneSidKey", "picklist", "{t}.timezone", nillable=False),
            f("DefaultLocaleSidKey", "picklist", "'en_US'", nillable=False),
            f("LanguageLocaleKey", "picklist", "'en_US'", nillable=False),
            f("FiscalYearStartMonth", "int", "1"),
            f("UsesStartDateAsFiscalYearName", "boolean", "1", nillable=False),
            f("CreatedDate", "datetime", "{t}.created_at", nillable=False),
            f("LastModifiedDate", "datetime", "{t}.updated_at", nillable=False),
            f("SystemModstamp", "datetime", "{t}.updated_at", nillable=False),
        ),
    )


def key_prefixes(objects: Iterable[SObjectType]) -> dict[str, SObjectType]:
    return {sobject.key_prefix: sobject for sobject in objects}
