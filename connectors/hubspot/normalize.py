"""HubSpot records (as the CRM v3 API sends them) turned into the agent's normalized records.

Each builder takes one raw record (``{"id", "properties", "createdAt", "updatedAt", ...}``) and what the
connector fetched beside it (associations, first deals) and returns normalized records, or raises
:class:`BadRecord` with the reason the record is quarantined.  Values are mapped to the cache's kinds
through the connection's ``[mapping]``; an unmapped deal type lands as ``other`` with one warning per value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import HubSpotMapping
from agent.sync.records import (
    AccountRecord,
    ActivityRecord,
    ContactRecord,
    CrmRecord,
    LeadRecord,
    LineItemRecord,
    OpportunityRecord,
    PipelineRecord,
    ProductRecord,
    StageHistoryRecord,
    StageRecord,
    TeamRecord,
    UserRecord,
)
from connectors.hubspot.values import (
    BadRecord,
    duration_months,
    epoch_ms,
    is_blank,
    local_date,
    parse_bool,
    parse_instant,
    parse_number,
    probability,
    text_or_none,
)

CALL_STATUSES = {"COMPLETED": "completed", "CANCELED": "cancelled", "FAILED": "cancelled", "NO_ANSWER": "no_show",
                 "BUSY": "no_show", "QUEUED": "open", "RINGING": "open", "IN_PROGRESS": "open",
                 "CONNECTING": "open", "CALLING_CRM_USER": "open", "MISSED": "no_show"}
EMAIL_STATUSES = {"SENT": "completed", "SCHEDULED": "scheduled", "SENDING": "open", "FAILED": "cancelled",
                  "BOUNCED": "no_show"}
MEETING_OUTCOMES = {"COMPLETED": "completed", "SCHEDULED": "scheduled", "RESCHEDULED": "scheduled",
                    "NO_SHOW": "no_show", "CANCELED": "cancelled", "CANCELLED": "cancelled"}
TASK_STATUSES = {"COMPLETED": "completed", "NOT_STARTED": "open", "IN_PROGRESS": "open", "WAITING": "open",
                 "DEFERRED": "cancelled"}
CALL_DIRECTIONS = {"OUTBOUND": "outbound", "INBOUND": "inbound"}
EMAIL_DIRECTIONS = {"EMAIL": "outbound", "FORWARDED_EMAIL": "outbound", "INCOMING_EMAIL": "inbound"}
# recurringbillingfrequency: months per billing period, and the name the cache keeps.
BILLING_FREQUENCIES = {"monthly": (1, "monthly"), "quarterly": (3, "quarterly"),
                       "per_six_months": (6, "semiannually"), "annually": (12, "annually"),
                       "per_two_years": (24, "biennially"), "per_three_years": (36, "triennially"),
                       "per_four_years": (48, "every_4_years"), "per_five_years": (60, "every_5_years")}

# Per engagement object: the cache kind, the properties it reads, and where status, subject and time are.
ENGAGEMENT_KINDS = {"calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task", "notes": "note"}
SUBJECT_PROPERTY = {"calls": "hs_call_title", "emails": "hs_email_subject", "meetings": "hs_meeting_title",
                    "tasks": "hs_task_subject", "notes": "hs_note_body"}
SUBTYPE_PROPERTY = {"calls": "hs_activity_type", "meetings": "hs_activity_type", "tasks": "hs_task_type"}
STATUS_PROPERTY = {"calls": ("hs_call_status", CALL_STATUSES), "emails": ("hs_email_status", EMAIL_STATUSES),
                   "meetings": ("hs_meeting_outcome", MEETING_OUTCOMES), "tasks": ("hs_task_status", TASK_STATUSES)}
DIRECTION_PROPERTY = {"calls": ("hs_call_direction", CALL_DIRECTIONS),
                      "emails": ("hs_email_direction", EMAIL_DIRECTIONS)}
ENGAGEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "calls": ("hs_call_title", "hs_call_direction", "hs_call_status", "hs_call_disposition", "hs_call_duration",
              "hs_activity_type"),
    "emails": ("hs_email_subject", "hs_email_direction", "hs_email_status"),
    "meetings": ("hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_outcome",
                 "hs_activity_type"),
    "tasks": ("hs_task_subject", "hs_task_status", "hs_task_type"),
    "notes": ("hs_note_body",),
}


@dataclass(frozen=True)
class Related:
    """What the connector fetched beside a page: associated ids by object type (primary first), and the
    creation instant of deals (for a lead's conversion)."""

    associations: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    deal_created: Mapping[str, datetime] = field(default_factory=dict)

    def first(self, record_id: str, to_type: str) -> str | None:
        ids = self.associations.get(record_id, {}).get(to_type) or ()
        return ids[0] if ids else None

    def all(self, record_id: str, to_type: str) -> Sequence[str]:
        return self.associations.get(record_id, {}).get(to_type) or ()


@dataclass
class Normalizer:
    """The connection's settings that shape normalized records, and its warn-once memory."""

    connection: str
    timezone: ZoneInfo
    home_currency: str
    mapping: HubSpotMapping
    warn: Callable[[str], None]
    region_property: str | None = None
    option_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # property -> value -> label
    warned: set[str] = field(default_factory=set)

    def warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.warn(message)

    # -- mapping -------------------------------------------------------------------------------------

    def deal_type(self, raw: str | None) -> str:
        if raw is None:
            return "other"
        mapped = _lookup(self.mapping.deal_types, raw)
        if mapped is None:
            self.warn_once(f"dealtype:{raw}", f"HubSpot connection {self.connection!r}: deal type {raw!r} is not "
                           "in [connections.*.mapping] deal_types; those deals land as 'other' (map it to one of "
                           "new_business, upsell, cross_sell, renewal, other)")
            return "other"
        return mapped

    def activity_kind(self, object_type: str, subtype: str | None) -> str:
        mapped = _lookup(self.mapping.activity_types, subtype) if subtype else None
        return mapped or ENGAGEMENT_KINDS[object_type]

    def status(self, object_type: str, props: Mapping[str, Any]) -> str:
        name, table = STATUS_PROPERTY.get(object_type, ("", {}))
        value = text_or_none(props.get(name)) if name else None
        if value is None:
            return "completed"  # logged calls, emails and notes carry no status: they happened
        mapped = table.get(value.upper())
        if mapped is None:
            self.warn_once(f"{name}:{value}", f"HubSpot connection {self.connection!r}: {object_type} {name} "
                           f"{value!r} is not a known value; those activities land with status 'other'")
            return "other"
        return mapped


def _lookup(mapping: Mapping[str, str], raw: str) -> str | None:
    if raw in mapping:
        return mapping[raw]
    folded = raw.strip().lower()
    return next((kind for key, kind in mapping.items() if key.strip().lower() == folded), None)


# -- common pieces ---------------------------------------------------------------------------------------


def record_id(raw: Mapping[str, Any]) -> str:
    value = raw.get("id") or props_of(raw).get("hs_object_id")
    if is_blank(value):
        raise BadRecord("the record has no id")
    return str(value).strip()


def props_of(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    props = raw.get("properties")
    return props if isinstance(props, Mapping) else {}


def record_stamp(raw: Mapping[str, Any], stamp_property: str) -> datetime | None:
    """When the record last changed: its stamp property, else the object's updatedAt."""
    value = props_of(raw).get(stamp_property)
    return parse_instant(value if not is_blank(value) else raw.get("updatedAt"), stamp_property)


def _created(raw: Mapping[str, Any], name: str = "createdate") -> datetime | None:
    value = props_of(raw).get(name)
    return parse_instant(value if not is_blank(value) else raw.get("createdAt"), name)


def _name(*parts: object) -> str | None:
    text = " ".join(str(part).strip() for part in parts if not is_blank(part))
    return text or None


# -- builders ------------------------------------------------------------------------------------------


def company(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    props = props_of(raw)
    region = text_or_none(props.get(n.region_property)) if n.region_property else None
    return [AccountRecord(source_id=record_id(raw), last_modified_at=record_stamp(raw, stamp),
                          name=text_or_none(props.get("name"), 255),
                          owner_source_id=text_or_none(props.get("hubspot_owner_id")), region=region,
                          industry=text_or_none(props.get("industry"), 100), created_at=_created(raw))]


def contact(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    props = props_of(raw)
    return [ContactRecord(
        source_id=record_id(raw), last_modified_at=record_stamp(raw, stamp),
        account_source_id=text_or_none(props.get("associatedcompanyid")),
        owner_source_id=text_or_none(props.get("hubspot_owner_id")), email=text_or_none(props.get("email"), 320),
        name=_name(props.get("firstname"), props.get("lastname")),
        lead_source=text_or_none(props.get("hs_analytics_source"), 100),
        lifecycle_stage=text_or_none(props.get("lifecyclestage"), 60),
        mql_at=parse_instant(props.get("hs_lifecyclestage_marketingqualifiedlead_date"), "MQL date"),
        sql_at=parse_instant(props.get("hs_lifecyclestage_salesqualifiedlead_date"), "SQL date"),
        customer_at=parse_instant(props.get("hs_lifecyclestage_customer_date"), "customer date"),
        created_at=_created(raw))]


def lead(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    """A HubSpot contact read as a lead: created when the contact was, MQL/SQL from its lifecycle dates,
    converted when it became an opportunity (that date, else its first deal's creation)."""
    props = props_of(raw)
    source_id = record_id(raw)
    created = _created(raw)
    if created is None:
        raise BadRecord("the contact has no create date, which a lead needs")
    deal_id = related.first(source_id, "deals")
    converted = parse_instant(props.get("hs_lifecyclestage_opportunity_date"), "opportunity date")
    if converted is None and deal_id is not None:
        converted = related.deal_created.get(deal_id)
    return [LeadRecord(
        source_id=source_id, last_modified_at=record_stamp(raw, stamp), created_at=created,
        owner_source_id=text_or_none(props.get("hubspot_owner_id")),
        name=_name(props.get("firstname"), props.get("lastname")), email=text_or_none(props.get("email"), 320),
        company=text_or_none(props.get("company"), 255),
        lead_source=text_or_none(props.get("hs_analytics_source"), 100),
        status=text_or_none(props.get("lifecyclestage"), 100),
        mql_at=parse_instant(props.get("hs_lifecyclestage_marketingqualifiedlead_date"), "MQL date"),
        sql_at=parse_instant(props.get("hs_lifecyclestage_salesqualifiedlead_date"), "SQL date"),
        converted_at=converted,
        converted_contact_source_id=source_id if converted else None,
        converted_opportunity_source_id=deal_id if converted else None,
        converted_account_source_id=text_or_none(props.get("associatedcompanyid")) if converted else None)]


def deal(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    props = props_of(raw)
    source_id = record_id(raw)
    created = _created(raw)
    if created is None:
        raise BadRecord("the deal has no create date")
    amount = parse_number(props.get("amount"), "amount")
    currency = text_or_none(props.get("deal_currency_code")) or n.home_currency
    amount_home = parse_number(props.get("amount_in_home_currency"), "amount_in_home_currency")
    if amount_home is None and currency == n.home_currency:
        amount_home = amount
    raw_type = text_or_none(props.get("dealtype"))
    return [OpportunityRecord(
        source_id=source_id, last_modified_at=record_stamp(raw, stamp), created_at=created,
        name=text_or_none(props.get("dealname"), 255), account_source_id=related.first(source_id, "companies"),
        owner_source_id=text_or_none(props.get("hubspot_owner_id")),
        pipeline_source_id=text_or_none(props.get("pipeline")), stage_source_id=text_or_none(props.get("dealstage")),
        amount=amount, currency=currency[:3], amount_home=amount_home,
        probability=probability(props.get("hs_deal_stage_probability"), "hs_deal_stage_probability"),
        forecast_category=text_or_none(props.get("hs_forecast_category"), 40),
        deal_type=n.deal_type(raw_type), deal_type_raw=raw_type,
        lead_source=text_or_none(props.get("hs_analytics_source"), 100),
        close_date=local_date(props.get("closedate"), n.timezone, "closedate"),
        is_closed=parse_bool(props.get("hs_is_closed")), is_won=parse_bool(props.get("hs_is_closed_won")))]


def stage_history(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    """One record per entry of the deal's ``dealstage`` history, with the amount, close date and
    probability the deal had at that moment (from their own histories)."""
    deal_id = record_id(raw)
    histories = raw.get("propertiesWithHistory") or {}
    currency = text_or_none(props_of(raw).get("deal_currency_code")) or n.home_currency
    records: list[CrmRecord] = []
    for entry in histories.get("dealstage") or []:
        stage = text_or_none(entry.get("value"))
        entered = parse_instant(entry.get("timestamp"), "dealstage history timestamp")
        if stage is None or entered is None:
            continue
        records.append(StageHistoryRecord(
            source_id=f"{deal_id}:{stage}:{epoch_ms(entered)}", entered_at=entered, opportunity_source_id=deal_id,
            stage_source_id=stage, amount=parse_number(_value_at(histories.get("amount"), entered), "amount"),
            currency=currency[:3],
            close_date=local_date(_value_at(histories.get("closedate"), entered), n.timezone, "closedate"),
            probability=probability(_value_at(histories.get("hs_deal_stage_probability"), entered),
                                    "hs_deal_stage_probability")))
    return records


def _value_at(history: Sequence[Mapping[str, Any]] | None, moment: datetime) -> str | None:
    """The value a property held at ``moment``: its latest history entry stamped at or before it."""
    best: tuple[datetime, str | None] | None = None
    for entry in history or []:
        try:
            stamped = parse_instant(entry.get("timestamp"), "history timestamp")
        except BadRecord:
            continue
        if stamped is not None and stamped <= moment and (best is None or stamped > best[0]):
            best = (stamped, text_or_none(entry.get("value")))
    return best[1] if best else None


def line_item(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    props = props_of(raw)
    source_id = record_id(raw)
    quantity = parse_number(props.get("quantity"), "quantity")
    net_total = parse_number(props.get("amount"), "amount")
    list_price = parse_number(props.get("price"), "price")
    currency = text_or_none(props.get("hs_line_item_currency_code")) or n.home_currency
    at_home = currency == n.home_currency
    months, frequency = BILLING_FREQUENCIES.get(str(props.get("recurringbillingfrequency") or "").lower(),
                                                (None, text_or_none(props.get("recurringbillingfrequency"), 20)))
    term = duration_months(props.get("hs_recurring_billing_period"))
    if term is None:
        term_number = parse_number(props.get("hs_term_in_months"), "hs_term_in_months")
        term = int(term_number) if term_number else None
    net_home = net_total if at_home else None
    return [LineItemRecord(
        source_id=source_id, last_modified_at=record_stamp(raw, stamp),
        opportunity_source_id=related.first(source_id, "deals"),
        product_source_id=text_or_none(props.get("hs_product_id")), product_name=text_or_none(props.get("name"), 255),
        quantity=quantity if quantity is not None else 1.0, list_price=list_price,
        unit_price=(net_total / quantity) if net_total is not None and quantity else None, net_total=net_total,
        currency=currency[:3],
        list_total_home=(list_price * (quantity or 1.0)) if at_home and list_price is not None else None,
        net_total_home=net_home, recurring_term_months=term, billing_frequency=frequency,
        # A recurring line's amount is per billing period; its monthly value spreads that over the period.
        monthly_value_home=(net_home / months) if months and net_home is not None else None)]


def product(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
    props = props_of(raw)
    source_id = record_id(raw)
    return [ProductRecord(source_id=source_id, last_modified_at=record_stamp(raw, stamp),
                          name=text_or_none(props.get("name"), 255) or f"product {source_id}",
                          sku=text_or_none(props.get("hs_sku"), 100),
                          family=text_or_none(props.get("hs_product_type"), 100))]


def engagement(object_type: str) -> Callable[[Mapping[str, Any], Related, Normalizer, str], list[CrmRecord]]:
    def build(raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> list[CrmRecord]:
        return [_activity(object_type, raw, related, n, stamp)]

    build.__name__ = f"{object_type}_activity"
    return build


def _activity(object_type: str, raw: Mapping[str, Any], related: Related, n: Normalizer, stamp: str) -> ActivityRecord:
    props = props_of(raw)
    source_id = record_id(raw)
    subtype_property = SUBTYPE_PROPERTY.get(object_type)
    subtype = text_or_none(props.get(subtype_property)) if subtype_property else None
    direction_property, directions = DIRECTION_PROPERTY.get(object_type, ("", {}))
    direction_raw = text_or_none(props.get(direction_property)) if direction_property else None
    contact_id = related.first(source_id, "contacts")
    return ActivityRecord(
        source_id=source_id, last_modified_at=record_stamp(raw, stamp),
        kind=n.activity_kind(object_type, subtype), kind_raw=subtype[:100] if subtype else None,
        subject=text_or_none(props.get(SUBJECT_PROPERTY[object_type]), 255),
        status=n.status(object_type, props),
        direction=directions.get(direction_raw.upper(), "none") if direction_raw else "none",
        owner_source_id=text_or_none(props.get("hubspot_owner_id")),
        occurred_at=_occurred_at(object_type, props), created_at=_created(raw, "hs_createdate"),
        # A HubSpot lead is a contact (see connector docs): the contact's activities are its lead's.
        lead_source_id=contact_id, contact_source_id=contact_id,
        opportunity_source_id=related.first(source_id, "deals"),
        account_source_id=related.first(source_id, "companies"),
        duration_seconds=_duration_seconds(object_type, props), outcome=_outcome(object_type, props, n))


def _occurred_at(object_type: str, props: Mapping[str, Any]) -> datetime | None:
    if object_type == "meetings" and not is_blank(props.get("hs_meeting_start_time")):
        return parse_instant(props.get("hs_meeting_start_time"), "hs_meeting_start_time")
    return parse_instant(props.get("hs_timestamp"), "hs_timestamp")


def _duration_seconds(object_type: str, props: Mapping[str, Any]) -> int | None:
    if object_type == "calls":
        millis = parse_number(props.get("hs_call_duration"), "hs_call_duration")
        return round(millis / 1000) if millis is not None else None
    if object_type == "meetings":
        start = parse_instant(props.get("hs_meeting_start_time"), "hs_meeting_start_time")
        end = parse_instant(props.get("hs_meeting_end_time"), "hs_meeting_end_time")
        return round((end - start).total_seconds()) if start and end and end >= start else None
    return None


def _outcome(object_type: str, props: Mapping[str, Any], n: Normalizer) -> str | None:
    if object_type == "calls":
        value = text_or_none(props.get("hs_call_disposition"))
        if value is None:
            return None
        # Call outcomes are GUIDs; the property's options give their labels ("Connected").
        return n.option_labels.get("hs_call_disposition", {}).get(value, value)[:100]
    if object_type == "meetings":
        return text_or_none(props.get("hs_meeting_outcome"), 100)
    return None


# -- records that do not come from the objects API ------------------------------------------------------


def owner_record(owner: Mapping[str, Any]) -> UserRecord:
    if is_blank(owner.get("id")):
        raise BadRecord("the owner has no id")
    teams = owner.get("teams") or []
    primary = next((team for team in teams if team.get("primary")), teams[0] if teams else None)
    return UserRecord(
        source_id=str(owner["id"]), last_modified_at=parse_instant(owner.get("updatedAt"), "updatedAt"),
        email=text_or_none(owner.get("email"), 320),
        name=_name(owner.get("firstName"), owner.get("lastName")) or text_or_none(owner.get("email"), 200),
        active=not owner.get("archived", False), team_source_id=str(primary["id"]) if primary else None)


def team_records(owners: Sequence[Mapping[str, Any]]) -> list[TeamRecord]:
    teams: dict[str, TeamRecord] = {}
    for owner in owners:
        for team in owner.get("teams") or []:
            if not is_blank(team.get("id")):
                teams[str(team["id"])] = TeamRecord(source_id=str(team["id"]),
                                                    name=text_or_none(team.get("name"), 200) or str(team["id"]))
    return list(teams.values())


def pipeline_record(pipeline: Mapping[str, Any]) -> PipelineRecord:
    return PipelineRecord(source_id=str(pipeline["id"]), name=text_or_none(pipeline.get("label"), 200) or
                          str(pipeline["id"]), display_order=int(pipeline.get("displayOrder") or 0),
                          last_modified_at=parse_instant(pipeline.get("updatedAt"), "updatedAt"))


def stage_records(pipeline: Mapping[str, Any]) -> list[StageRecord]:
    stages = []
    for stage in pipeline.get("stages") or []:
        metadata = stage.get("metadata") or {}
        closed = parse_bool(metadata.get("isClosed"))
        try:
            chance = probability(metadata.get("probability"), f"stage {stage.get('id')} probability")
        except BadRecord:  # a stage is never dropped for its default probability: deals still point at it
            chance = None
        stages.append(StageRecord(
            source_id=str(stage["id"]), name=text_or_none(stage.get("label"), 200) or str(stage["id"]),
            pipeline_source_id=str(pipeline["id"]), sort_order=int(stage.get("displayOrder") or 0),
            probability=chance, is_closed=closed, is_won=closed and chance == 1.0,
            last_modified_at=parse_instant(stage.get("updatedAt"), "updatedAt")))
    return stages
