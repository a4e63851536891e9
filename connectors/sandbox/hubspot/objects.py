"""The neutral world seen as HubSpot: object types, their properties, ids and associations.

A `Catalog` is built once per service from the world (pipelines, stages and the home currency shape the
property definitions). Each `ObjectSpec` says which world table serves a HubSpot object type, which SQL
expression over that table (alias `r`) gives each property's stored value, and how a codec turns it into
the string HubSpot sends. Only the properties a request needs are selected, so a list of a million deals
never computes `hs_date_entered_*` subqueries nobody asked for.

HubSpot ids are derived from world ids by a fixed offset per object type (`ID_BASES`), so they are stable,
distinct between types (a connector that mixes a deal id with a company id finds nothing) and reversible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.hubspot.codecs import (
    BoolCodec,
    Codec,
    EnumCodec,
    IdCodec,
    InstantCodec,
    KeyCodec,
    NumberCodec,
)

# world id + base = HubSpot id. Engagements share the activities table, as HubSpot engagement ids are
# unique across calls, emails, meetings, tasks and notes.
ID_BASES: dict[str, int] = {
    "contacts": 1_000_000_000,
    "companies": 2_000_000_000,
    "deals": 3_000_000_000,
    "line_items": 4_000_000_000,
    "products": 5_000_000_000,
    "engagements": 6_000_000_000,
    "leads": 7_000_000_000,
}
OWNER_ID_BASE = 40_000_000  # owner ids look like "41629779"
USER_ID_BASE = 9_000_000  # user ids look like 9586504
TEAM_ID_BASE = 30_000_000
PIPELINE_ID_BASE = 800_000_000  # pipelines after the first ("default") get numeric ids, as in real portals
STAGE_ID_BASE = 100_000_000

# The first pipeline is HubSpot's "default"; stages whose names match its built-in stages keep the
# built-in internal ids (the ids most public code hard-codes).
DEFAULT_STAGE_IDS: dict[str, str] = {
    "appointmentscheduled": "appointmentscheduled",
    "qualifiedtobuy": "qualifiedtobuy",
    "presentationscheduled": "presentationscheduled",
    "decisionmakerboughtin": "decisionmakerboughtin",
    "contractsent": "contractsent",
    "closedwon": "closedwon",
    "closedlost": "closedlost",
}

DEAL_TYPES = {"new_business": "newbusiness", "newbusiness": "newbusiness", "upsell": "existingbusiness",
              "cross_sell": "existingbusiness", "existingbusiness": "existingbusiness", "renewal": "renewal"}
FORECAST_CATEGORIES = {"pipeline": "PIPELINE", "bestcase": "BEST_CASE", "best case": "BEST_CASE",
                       "commit": "COMMIT", "closed": "CLOSED", "omitted": "OMIT", "omit": "OMIT"}
# Neutral lead sources (Salesforce-style picklist values) onto HubSpot's "Original source" options.
ANALYTICS_SOURCES = {
    "web": "ORGANIC_SEARCH", "website": "ORGANIC_SEARCH", "organic search": "ORGANIC_SEARCH",
    "seo": "ORGANIC_SEARCH", "advertisement": "PAID_SEARCH", "paid search": "PAID_SEARCH",
    "ppc": "PAID_SEARCH", "email": "EMAIL_MARKETING", "email marketing": "EMAIL_MARKETING",
    "social": "SOCIAL_MEDIA", "social media": "SOCIAL_MEDIA", "paid social": "PAID_SOCIAL",
    "referral": "REFERRALS", "partner": "REFERRALS", "partner referral": "REFERRALS",
    "employee referral": "REFERRALS", "external referral": "REFERRALS", "event": "OFFLINE",
    "trade show": "OFFLINE", "outbound": "OFFLINE", "cold call": "OFFLINE", "phone inquiry": "OFFLINE",
    "direct": "DIRECT_TRAFFIC", "direct traffic": "DIRECT_TRAFFIC", "other": "OTHER_CAMPAIGNS",
    "webinar": "OTHER_CAMPAIGNS",
}
CALL_DIRECTIONS = {"outbound": "OUTBOUND", "inbound": "INBOUND"}
CALL_STATUSES = {"completed": "COMPLETED", "cancelled": "CANCELED", "canceled": "CANCELED",
                 "no_show": "NO_ANSWER", "scheduled": "QUEUED", "open": "QUEUED"}
# HubSpot's built-in call outcomes are GUIDs (the "hs_call_disposition" options).
CALL_DISPOSITIONS = {
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7", "no answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "left voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "left live message": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "wrong number": "17b47fee-58de-441e-a44c-c6300d46f273",
}
EMAIL_DIRECTIONS = {"outbound": "EMAIL", "inbound": "INCOMING_EMAIL"}
EMAIL_STATUSES = {"completed": "SENT", "scheduled": "SCHEDULED", "open": "SENDING", "cancelled": "FAILED",
                  "no_show": "BOUNCED"}
MEETING_OUTCOMES = {"completed": "COMPLETED", "scheduled": "SCHEDULED", "open": "SCHEDULED",
                    "cancelled": "CANCELED", "canceled": "CANCELED", "no_show": "NO_SHOW",
                    "rescheduled": "RESCHEDULED"}
TASK_STATUSES = {"completed": "COMPLETED", "open": "NOT_STARTED", "scheduled": "NOT_STARTED",
                 "in_progress": "IN_PROGRESS", "cancelled": "DEFERRED", "no_show": "DEFERRED"}
TASK_TYPES = {"call": "CALL", "email": "EMAIL", "todo": "TODO", "to-do": "TODO", "linkedin": "LINKED_IN"}
LEAD_STAGES = {"open - not contacted": "new-stage-id", "working - contacted": "attempting-stage-id",
               "closed - converted": "qualified-stage-id", "closed - not converted": "unqualified-stage-id"}
BILLING_FREQUENCIES = {"monthly": "monthly", "quarterly": "quarterly", "annually": "annually",
                       "semiannually": "per_six_months", "biennially": "per_two_years"}


@dataclass(frozen=True)
class Prop:
    """One HubSpot property of an object: its definition and where its stored value comes from."""

    name: str
    label: str
    type: str  # HubSpot property type: string, number, datetime, date, enumeration, bool
    field_type: str  # text, number, date, select, booleancheckbox, calculation_equation, ...
    sql: str  # SQL over the row alias `r` (and the spec's joins) giving the stored value
    codec: Codec = field(default_factory=Codec)
    group: str = "information"
    options: tuple[tuple[str, str], ...] = ()  # enumeration options as (value, label)
    calculated: bool = False
    read_only: bool = False


@dataclass(frozen=True)
class AssociationSpec:
    """Associations from one object type to another, as pairs (from world id, to world id) in SQL.

    `pairs_sql` selects `from_id, to_id` with a `{ids}` placeholder for the from ids. `types` lists the
    v4 association types each pair carries (typeId, label); `v3_types` the v3 type names.
    """

    to_object: str
    pairs_sql: str
    types: tuple[tuple[int, str | None], ...]
    v3_types: tuple[str, ...]


@dataclass(frozen=True)
class ObjectSpec:
    name: str  # "deals": the path segment and the v3 associations key
    type_id: str  # "0-3"
    singular: str  # "deal"
    table: str
    id_base: int
    props: Mapping[str, Prop]
    default_props: tuple[str, ...]  # returned when a request names no properties
    always_props: tuple[str, ...]  # returned whatever properties a request names
    joins: str = ""
    where: str = "1=1"  # the rows of the table this object serves (e.g. activities of one kind)
    associations: Mapping[str, AssociationSpec] = field(default_factory=dict)
    searchable_text: tuple[str, ...] = ()  # properties the free-text `query` looks in
    stage_entered_props: Mapping[str, int] = field(default_factory=dict)  # hs_date_entered_X -> stage id

    def prop(self, name: str) -> Prop | None:
        return self.props.get(name)

    def hubspot_id(self, world_id: int) -> str:
        return str(self.id_base + int(world_id))

    def world_id(self, hubspot_id: str) -> int | None:
        """The world id of a HubSpot id of this type, or None when it cannot be one."""
        text = str(hubspot_id).strip()
        if not text.isdigit():
            return None
        world_id = int(text) - self.id_base
        return world_id if world_id > 0 else None

    def v3_association_key(self) -> str:
        # v3 answers key line items by their label "line items" (with a space); all others by name.
        return "line items" if self.name == "line_items" else self.name


@dataclass(frozen=True)
class WorldShape:
    """What the catalog needs to know about a world: currency and the deal pipelines."""

    home_currency: str
    pipelines: list[Mapping[str, Any]]
    stages: list[Mapping[str, Any]]


@dataclass
class Catalog:
    objects: dict[str, ObjectSpec]
    aliases: dict[str, str]  # "deal", "0-3", "DEALS" ... -> "deals"
    pipeline_ids: dict[int, str]  # world pipeline id -> HubSpot pipeline id
    stage_ids: dict[int, str]  # world stage id -> HubSpot stage id
    shape: WorldShape

    def resolve(self, name: str) -> ObjectSpec | None:
        """An object type by its name, singular, upper-case name or type id ("deals", "deal", "0-3")."""
        key = self.aliases.get(name.lower()) or self.aliases.get(name)
        return self.objects.get(key) if key else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def hubspot_pipeline_ids(pipelines: list[Mapping[str, Any]]) -> dict[int, str]:
    ordered = sorted(pipelines, key=lambda row: (row.get("display_order") or 0, row["id"]))
    ids: dict[int, str] = {}
    for index, row in enumerate(ordered):
        ids[int(row["id"])] = "default" if index == 0 else str(PIPELINE_ID_BASE + int(row["id"]))
    return ids


def hubspot_stage_ids(stages: list[Mapping[str, Any]], pipeline_ids: Mapping[int, str]) -> dict[int, str]:
    ids: dict[int, str] = {}
    used: set[str] = set()
    for row in sorted(stages, key=lambda stage: (stage["pipeline_id"], stage.get("sort_order") or 0, stage["id"])):
        builtin = DEFAULT_STAGE_IDS.get(_slug(str(row["name"])))
        if pipeline_ids.get(int(row["pipeline_id"])) == "default" and builtin and builtin not in used:
            ids[int(row["id"])] = builtin
            used.add(builtin)
        else:
            ids[int(row["id"])] = str(STAGE_ID_BASE + int(row["id"]))
    return ids


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _options(mapping: Mapping[str, str], labels: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    values = list(dict.fromkeys(mapping.values()))
    return tuple((value, (labels or {}).get(value, value.replace("_", " ").title())) for value in values)


def _common(created_sql: str = "r.created_at", created_name: str = "createdate") -> dict[str, Prop]:
    owners = IdCodec(base=OWNER_ID_BASE)
    return {
        created_name: Prop(created_name, "Create Date", "datetime", "date", created_sql, InstantCodec(),
                           read_only=True),
        "hs_lastmodifieddate": Prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date",
                                    "r.updated_at", InstantCodec(), read_only=True),
        "hubspot_owner_id": Prop("hubspot_owner_id", "Owner", "enumeration", "select", "r.owner_rep_id", owners),
    }


def _object_id(base: int) -> Prop:
    return Prop("hs_object_id", "Record ID", "number", "number", "r.id", IdCodec(base=base), read_only=True)


def _deal_props(shape: WorldShape, pipeline_ids: Mapping[int, str], stage_ids: Mapping[int, str]) -> dict[str, Prop]:
    home = _sql_text(shape.home_currency)
    stage_labels = {stage_ids[int(row["id"])]: str(row["name"]) for row in shape.stages}
    pipeline_labels = {pipeline_ids[int(row["id"])]: str(row["name"]) for row in shape.pipelines}
    home_amount = (
        f"COALESCE(r.amount_home, CASE WHEN COALESCE(r.currency, {home}) = {home} THEN r.amount ELSE "
        "r.amount / (SELECT c.rate FROM currency_rates c WHERE c.iso_code = r.currency AND c.start_date IS NULL "
        "ORDER BY c.id LIMIT 1) END)"
    )
    props = {
        **_common(),
        "hs_object_id": _object_id(ID_BASES["deals"]),
        "dealname": Prop("dealname", "Deal Name", "string", "text", "r.name"),
        "amount": Prop("amount", "Amount", "number", "number", "r.amount", NumberCodec()),
        "amount_in_home_currency": Prop("amount_in_home_currency", "Amount in company currency", "number",
                                        "calculation_equation", home_amount, NumberCodec(), calculated=True,
                                        read_only=True),
        "deal_currency_code": Prop("deal_currency_code", "Currency", "enumeration", "select",
                                   f"COALESCE(r.currency, {home})", Codec(case_insensitive=False)),
        "dealstage": Prop("dealstage", "Deal Stage", "enumeration", "radio", "r.stage_id",
                          KeyCodec(mapping=stage_ids), options=tuple(stage_labels.items())),
        "pipeline": Prop("pipeline", "Pipeline", "enumeration", "select", "r.pipeline_id",
                         KeyCodec(mapping=pipeline_ids), options=tuple(pipeline_labels.items())),
        "closedate": Prop("closedate", "Close Date", "datetime", "date",
                          "CASE WHEN r.close_date IS NULL OR r.close_date = '' THEN NULL "
                          "ELSE substr(r.close_date, 1, 10) || 'T00:00:00.000Z' END", InstantCodec()),
        "dealtype": Prop("dealtype", "Deal Type", "enumeration", "radio", "r.deal_type",
                         EnumCodec(mapping=DEAL_TYPES),
                         options=(("newbusiness", "New Business"), ("existingbusiness", "Existing Business"),
                                  ("renewal", "Renewal"))),
        "hs_is_closed": Prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox",
                             "COALESCE(r.is_closed, s.is_closed, 0)", BoolCodec(), calculated=True, read_only=True),
        "hs_is_closed_won": Prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox",
                                 "COALESCE(r.is_won, s.is_won, 0)", BoolCodec(), calculated=True, read_only=True),
        "hs_deal_stage_probability": Prop("hs_deal_stage_probability", "Deal probability", "number", "number",
                                          "COALESCE(r.probability, s.probability)", NumberCodec()),
        "hs_forecast_amount": Prop("hs_forecast_amount", "Forecast amount", "number", "calculation_equation",
                                   "r.amount * COALESCE(r.probability, s.probability)", NumberCodec(),
                                   calculated=True, read_only=True),
        "hs_forecast_category": Prop("hs_forecast_category", "Forecast category", "enumeration", "select",
                                     "COALESCE(r.forecast_category, s.forecast_category)",
                                     EnumCodec(mapping=FORECAST_CATEGORIES),
                                     options=_options(FORECAST_CATEGORIES)),
        "hs_analytics_source": Prop("hs_analytics_source", "Original Source Type", "enumeration", "select",
                                    "r.lead_source", EnumCodec(mapping=ANALYTICS_SOURCES),
                                    options=_options(ANALYTICS_SOURCES), read_only=True),
    }
    for world_id, stage_id in stage_ids.items():
        name = f"hs_date_entered_{stage_id}"
        label = f"Date entered \"{stage_labels.get(stage_id, stage_id)}\""
        props[name] = Prop(name, label, "datetime", "calculation_equation",
                           f"(SELECT MAX(h.entered_at) FROM stage_history h WHERE h.opportunity_id = r.id "
                           f"AND h.stage_id = {world_id})", InstantCodec(), group="dealstages", calculated=True,
                           read_only=True)
    return props


def _engagement_props(kind: str) -> dict[str, Prop]:
    props = {
        **_common("r.created_at", "hs_createdate"),
        "hs_object_id": _object_id(ID_BASES["engagements"]),
        "hs_timestamp": Prop("hs_timestamp", "Activity date", "datetime", "date", "r.occurred_at", InstantCodec()),
    }
    subject = "r.subject"
    if kind == "call":
        props |= {
            "hs_call_title": Prop("hs_call_title", "Call Title", "string", "text", subject),
            "hs_call_direction": Prop("hs_call_direction", "Call direction", "enumeration", "select", "r.direction",
                                      EnumCodec(mapping=CALL_DIRECTIONS), options=_options(CALL_DIRECTIONS)),
            "hs_call_status": Prop("hs_call_status", "Call status", "enumeration", "select", "r.status",
                                   EnumCodec(mapping=CALL_STATUSES), options=_options(CALL_STATUSES)),
            "hs_call_disposition": Prop("hs_call_disposition", "Call outcome", "enumeration", "select", "r.outcome",
                                        EnumCodec(mapping=CALL_DISPOSITIONS),
                                        options=tuple((guid, name.title())
                                                      for name, guid in CALL_DISPOSITIONS.items())),
            "hs_call_duration": Prop("hs_call_duration", "Call duration", "number", "number", "r.duration_seconds",
                                     NumberCodec(scale=1000.0)),
            "hs_activity_type": Prop("hs_activity_type", "Call and meeting type", "enumeration", "select",
                                     "r.subtype", Codec()),
        }
    elif kind == "email":
        props |= {
            "hs_email_subject": Prop("hs_email_subject", "Email subject", "string", "text", subject),
            "hs_email_direction": Prop("hs_email_direction", "Email direction", "enumeration", "select",
                                       "r.direction", EnumCodec(mapping=EMAIL_DIRECTIONS),
                                       options=(("EMAIL", "Email sent from CRM"),
                                                ("INCOMING_EMAIL", "Reply from contact"),
                                                ("FORWARDED_EMAIL", "Forwarded email"))),
            "hs_email_status": Prop("hs_email_status", "Email send status", "enumeration", "select", "r.status",
                                    EnumCodec(mapping=EMAIL_STATUSES), options=_options(EMAIL_STATUSES)),
        }
    elif kind == "meeting":
        props |= {
            "hs_meeting_title": Prop("hs_meeting_title", "Meeting name", "string", "text", subject),
            "hs_meeting_start_time": Prop("hs_meeting_start_time", "Start Time", "datetime", "date",
                                          "r.occurred_at", InstantCodec()),
            "hs_meeting_end_time": Prop("hs_meeting_end_time", "End Time", "datetime", "date",
                                        "CASE WHEN r.occurred_at IS NULL THEN NULL ELSE "
                                        "strftime('%Y-%m-%dT%H:%M:%fZ', r.occurred_at, '+' || "
                                        "COALESCE(r.duration_seconds, 0) || ' seconds') END", InstantCodec()),
            "hs_meeting_outcome": Prop("hs_meeting_outcome", "Meeting outcome", "enumeration", "select",
                                       "COALESCE(r.outcome, r.status)", EnumCodec(mapping=MEETING_OUTCOMES),
                                       options=_options(MEETING_OUTCOMES)),
            "hs_activity_type": Prop("hs_activity_type", "Call and meeting type", "enumeration", "select",
                                     "r.subtype", Codec()),
        }
    elif kind == "task":
        props |= {
            "hs_task_subject": Prop("hs_task_subject", "Task Title", "string", "text", subject),
            "hs_task_status": Prop("hs_task_status", "Task Status", "enumeration", "select", "r.status",
                                   EnumCodec(mapping=TASK_STATUSES),
                                   options=(("NOT_STARTED", "Not Started"), ("IN_PROGRESS", "In Progress"),
                                            ("WAITING", "Waiting"), ("COMPLETED", "Completed"),
                                            ("DEFERRED", "Deferred"))),
            "hs_task_type": Prop("hs_task_type", "Task Type", "enumeration", "select", "COALESCE(r.subtype, 'todo')",
                                 EnumCodec(mapping=TASK_TYPES), options=_options(TASK_TYPES)),
        }
    else:
        props |= {"hs_note_body": Prop("hs_note_body", "Note body", "string", "html", subject)}
    return props


def _association(to_object: str, pairs_sql: str, types: tuple[tuple[int, str | None], ...],
                 v3_types: tuple[str, ...]) -> AssociationSpec:
    return AssociationSpec(to_object, pairs_sql, types, v3_types)


ENGAGEMENTS: dict[str, tuple[str, int, int, int]] = {
    # name: (activities.kind, type id suffix, deal->x typeId, x->deal typeId)
    "calls": ("call", 48, 205, 206),
    "emails": ("email", 49, 209, 210),
    "meetings": ("meeting", 47, 211, 212),
    "tasks": ("task", 27, 215, 216),
    "notes": ("note", 46, 213, 214),
}
# contact->x / x->contact and company->x / x->company association type ids, per engagement.
ENGAGEMENT_CONTACT_TYPES = {"calls": (193, 194), "emails": (197, 198), "meetings": (199, 200),
                            "tasks": (203, 204), "notes": (201, 202)}
ENGAGEMENT_COMPANY_TYPES = {"calls": (181, 182), "emails": (185, 186), "meetings": (187, 188),
                            "tasks": (191, 192), "notes": (189, 190)}


def _activity_pairs(column: str, kind: str, *, reverse: bool) -> str:
    """Pairs between activities of one kind and the record in `column` (opportunity_id, contact_id ...)."""
    if reverse:  # from the record to its activities
        return (f"SELECT a.{column} AS from_id, a.id AS to_id FROM activities a WHERE a.{column} IN ({{ids}}) "
                f"AND a.kind = '{kind}'")
    return (f"SELECT a.id AS from_id, a.{column} AS to_id FROM activities a WHERE a.id IN ({{ids}}) "
            f"AND a.{column} IS NOT NULL")


DEAL_CONTACT_PAIRS = (
    "SELECT l.converted_opportunity_id AS from_id, l.converted_contact_id AS to_id FROM leads l "
    "WHERE l.converted_opportunity_id IN ({ids}) AND l.converted_contact_id IS NOT NULL "
    "UNION SELECT a.opportunity_id, a.contact_id FROM activities a "
    "WHERE a.opportunity_id IN ({ids}) AND a.contact_id IS NOT NULL"
)
CONTACT_DEAL_PAIRS = (
    "SELECT l.converted_contact_id AS from_id, l.converted_opportunity_id AS to_id FROM leads l "
    "WHERE l.converted_contact_id IN ({ids}) AND l.converted_opportunity_id IS NOT NULL "
    "UNION SELECT a.contact_id, a.opportunity_id FROM activities a "
    "WHERE a.contact_id IN ({ids}) AND a.opportunity_id IS NOT NULL"
)


def _deal_associations() -> dict[str, AssociationSpec]:
    found = {
        "companies": _association("companies", "SELECT o.id AS from_id, o.account_id AS to_id FROM opportunities o "
                                  "WHERE o.id IN ({ids}) AND o.account_id IS NOT NULL",
                                  ((5, "Primary"), (341, None)), ("deal_to_company", "deal_to_company_unlabeled")),
        "contacts": _association("contacts", DEAL_CONTACT_PAIRS, ((3, None),), ("deal_to_contact",)),
        "line_items": _association("line_items", "SELECT li.opportunity_id AS from_id, li.id AS to_id FROM "
                                   "line_items li WHERE li.opportunity_id IN ({ids})", ((19, None),),
                                   ("deal_to_line_item",)),
    }
    for name, (kind, _suffix, to_type, _back) in ENGAGEMENTS.items():
        found[name] = _association(name, _activity_pairs("opportunity_id", kind, reverse=True), ((to_type, None),),
                                   (f"deal_to_{kind}",))
    return found


def _contact_associations() -> dict[str, AssociationSpec]:
    found = {
        "companies": _association("companies", "SELECT c.id AS from_id, c.account_id AS to_id FROM contacts c "
                                  "WHERE c.id IN ({ids}) AND c.account_id IS NOT NULL",
                                  ((1, "Primary"), (279, None)),
                                  ("contact_to_company", "contact_to_company_unlabeled")),
        "deals": _association("deals", CONTACT_DEAL_PAIRS, ((4, None),), ("contact_to_deal",)),
    }
    for name, (kind, *_rest) in ENGAGEMENTS.items():
        found[name] = _association(name, _activity_pairs("contact_id", kind, reverse=True),
                                   ((ENGAGEMENT_CONTACT_TYPES[name][0], None),), (f"contact_to_{kind}",))
    return found


def _company_associations() -> dict[str, AssociationSpec]:
    found = {
        "contacts": _association("contacts", "SELECT c.account_id AS from_id, c.id AS to_id FROM contacts c "
                                 "WHERE c.account_id IN ({ids})", ((2, "Primary"), (280, None)),
                                 ("company_to_contact", "company_to_contact_unlabeled")),
        "deals": _association("deals", "SELECT o.account_id AS from_id, o.id AS to_id FROM opportunities o "
                              "WHERE o.account_id IN ({ids})", ((6, "Primary"), (342, None)),
                              ("company_to_deal", "company_to_deal_unlabeled")),
    }
    for name, (kind, *_rest) in ENGAGEMENTS.items():
        found[name] = _association(name, _activity_pairs("account_id", kind, reverse=True),
                                   ((ENGAGEMENT_COMPANY_TYPES[name][0], None),), (f"company_to_{kind}",))
    return found


def _engagement_associations(name: str) -> dict[str, AssociationSpec]:
    kind, _suffix, _to_type, back = ENGAGEMENTS[name]
    return {
        "deals": _association("deals", _activity_pairs("opportunity_id", kind, reverse=False), ((back, None),),
                              (f"{kind}_to_deal",)),
        "contacts": _association("contacts", _activity_pairs("contact_id", kind, reverse=False),
                                 ((ENGAGEMENT_CONTACT_TYPES[name][1], None),), (f"{kind}_to_contact",)),
        "companies": _association("companies", _activity_pairs("account_id", kind, reverse=False),
                                  ((ENGAGEMENT_COMPANY_TYPES[name][1], None),), (f"{kind}_to_company",)),
    }


def build_catalog(shape: WorldShape) -> Catalog:
    """The HubSpot view of a world: object specs, their aliases, and the pipeline and stage ids."""
    pipeline_ids = hubspot_pipeline_ids(shape.pipelines)
    stage_ids = hubspot_stage_ids(shape.stages, pipeline_ids)
    analytics = EnumCodec(mapping=ANALYTICS_SOURCES)
    objects: dict[str, ObjectSpec] = {}

    deal_props = _deal_props(shape, pipeline_ids, stage_ids)
    objects["deals"] = ObjectSpec(
        "deals", "0-3", "deal", "opportunities", ID_BASES["deals"], deal_props,
        default_props=("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                       "hs_object_id", "pipeline"),
        always_props=("createdate", "hs_lastmodifieddate", "hs_object_id"),
        joins="LEFT JOIN stages s ON s.id = r.stage_id", associations=_deal_associations(),
        searchable_text=("dealname",),
        stage_entered_props={f"hs_date_entered_{hs}": world for world, hs in stage_ids.items()},
    )
    contact_props = {
        **_common(),
        "hs_object_id": _object_id(ID_BASES["contacts"]),
        "lastmodifieddate": Prop("lastmodifieddate", "Last Modified Date", "datetime", "date", "r.updated_at",
                                 InstantCodec(), read_only=True),
        "firstname": Prop("firstname", "First Name", "string", "text", "r.first_name"),
        "lastname": Prop("lastname", "Last Name", "string", "text", "r.last_name"),
        "email": Prop("email", "Email", "string", "text", "r.email"),
        "associatedcompanyid": Prop("associatedcompanyid", "Primary Associated Company ID", "number", "number",
                                    "r.account_id", IdCodec(base=ID_BASES["companies"])),
        "lifecyclestage": Prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "r.lifecycle_stage",
                               EnumCodec(mapping={}),
                               options=tuple((value, value.title()) for value in (
                                   "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                                   "opportunity", "customer", "evangelist", "other"))),
        "hs_lifecyclestage_marketingqualifiedlead_date": Prop(
            "hs_lifecyclestage_marketingqualifiedlead_date", "Became a Marketing Qualified Lead Date", "datetime",
            "date", "r.mql_at", InstantCodec(), calculated=True, read_only=True),
        "hs_lifecyclestage_salesqualifiedlead_date": Prop(
            "hs_lifecyclestage_salesqualifiedlead_date", "Became a Sales Qualified Lead Date", "datetime", "date",
            "r.sql_at", InstantCodec(), calculated=True, read_only=True),
        "hs_lifecyclestage_customer_date": Prop(
            "hs_lifecyclestage_customer_date", "Became a Customer Date", "datetime", "date", "r.customer_at",
            InstantCodec(), calculated=True, read_only=True),
        "hs_analytics_source": Prop("hs_analytics_source", "Original Source", "enumeration", "select",
                                    "r.lead_source", analytics, options=_options(ANALYTICS_SOURCES), read_only=True),
    }
    objects["contacts"] = ObjectSpec(
        "contacts", "0-1", "contact", "contacts", ID_BASES["contacts"], contact_props,
        default_props=("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        always_props=("createdate", "hs_object_id", "lastmodifieddate"),
        associations=_contact_associations(), searchable_text=("firstname", "lastname", "email"),
    )
    company_props = {
        **_common(),
        "hs_object_id": _object_id(ID_BASES["companies"]),
        "name": Prop("name", "Company name", "string", "text", "r.name"),
        "domain": Prop("domain", "Company Domain Name", "string", "text", "NULL"),
        "industry": Prop("industry", "Industry", "enumeration", "select", "r.industry", Codec()),
        # Not a HubSpot default: portals that sell by region keep it in a custom property like this one,
        # which is what the agent's default mapping (region_property = "region") expects.
        "region": Prop("region", "Region", "string", "text", "r.region"),
    }
    objects["companies"] = ObjectSpec(
        "companies", "0-2", "company", "accounts", ID_BASES["companies"], company_props,
        default_props=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
        always_props=("createdate", "hs_lastmodifieddate", "hs_object_id"),
        associations=_company_associations(), searchable_text=("name",),
    )
    product_props = {
        **{key: prop for key, prop in _common().items() if key != "hubspot_owner_id"},
        "hs_object_id": _object_id(ID_BASES["products"]),
        "name": Prop("name", "Name", "string", "text", "r.name"),
        "price": Prop("price", "Unit price", "number", "number", "r.list_price", NumberCodec()),
        "hs_sku": Prop("hs_sku", "SKU", "string", "text", "r.sku"),
        "hs_cost_of_goods_sold": Prop("hs_cost_of_goods_sold", "Unit cost", "number", "number", "r.unit_cost",
                                      NumberCodec()),
        "description": Prop("description", "Description", "string", "textarea", "r.family"),
    }
    objects["products"] = ObjectSpec(
        "products", "0-7", "product", "products", ID_BASES["products"], product_props,
        default_props=("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
        always_props=("createdate", "hs_lastmodifieddate", "hs_object_id"), searchable_text=("name",),
    )
    line_item_props = {
        **{key: prop for key, prop in _common().items() if key != "hubspot_owner_id"},
        "hs_object_id": _object_id(ID_BASES["line_items"]),
        "name": Prop("name", "Name", "string", "text", "p.name"),
        "hs_product_id": Prop("hs_product_id", "Product ID", "number", "number", "r.product_id",
                              IdCodec(base=ID_BASES["products"])),
        "hs_sku": Prop("hs_sku", "SKU", "string", "text", "p.sku"),
        "quantity": Prop("quantity", "Quantity", "number", "number", "r.quantity", NumberCodec()),
        "price": Prop("price", "Unit price", "number", "number", "r.list_price", NumberCodec()),
        "amount": Prop("amount", "Net price", "number", "calculation_equation", "r.total_price", NumberCodec(),
                       calculated=True),
        "hs_discount_percentage": Prop("hs_discount_percentage", "Discount Percentage", "number", "number",
                                       "r.discount_pct", NumberCodec()),
        "discount": Prop("discount", "Unit discount", "number", "number",
                         "CASE WHEN r.discount_pct IS NULL AND r.list_price > r.unit_price "
                         "THEN r.list_price - r.unit_price END", NumberCodec()),
        "hs_recurring_billing_period": Prop("hs_recurring_billing_period", "Term", "string", "text",
                                            "CASE WHEN r.recurring_term_months IS NULL THEN NULL "
                                            "ELSE 'P' || CAST(r.recurring_term_months AS INTEGER) || 'M' END"),
        "hs_term_in_months": Prop("hs_term_in_months", "Term (months)", "number", "number",
                                  "r.recurring_term_months", NumberCodec(), calculated=True, read_only=True),
        "recurringbillingfrequency": Prop("recurringbillingfrequency", "Billing frequency", "enumeration", "select",
                                          "r.billing_frequency", EnumCodec(mapping=BILLING_FREQUENCIES),
                                          options=_options(BILLING_FREQUENCIES)),
        "hs_line_item_currency_code": Prop("hs_line_item_currency_code", "Currency", "enumeration", "select",
                                           f"COALESCE(r.currency, {_sql_text(shape.home_currency)})",
                                           Codec(case_insensitive=False)),
    }
    objects["line_items"] = ObjectSpec(
        "line_items", "0-8", "line_item", "line_items", ID_BASES["line_items"], line_item_props,
        default_props=("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_product_id", "name",
                       "price", "quantity"),
        always_props=("createdate", "hs_lastmodifieddate", "hs_object_id"),
        joins="LEFT JOIN products p ON p.id = r.product_id",
        associations={"deals": _association("deals", "SELECT li.id AS from_id, li.opportunity_id AS to_id FROM "
                                            "line_items li WHERE li.id IN ({ids})", ((20, None),),
                                            ("line_item_to_deal",))},
        searchable_text=("name",),
    )
    for name, (kind, suffix, *_types) in ENGAGEMENTS.items():
        props = _engagement_props(kind)
        title = next((key for key in props if key.endswith(("_title", "_subject", "_body"))), "hs_timestamp")
        objects[name] = ObjectSpec(
            name, f"0-{suffix}", name[:-1], "activities", ID_BASES["engagements"], props,
            default_props=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            always_props=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            where=f"r.kind = '{kind}'", associations=_engagement_associations(name), searchable_text=(title,),
        )
    lead_props = {
        **_common("r.created_at", "hs_createdate"),
        "hs_object_id": _object_id(ID_BASES["leads"]),
        "hs_lead_name": Prop("hs_lead_name", "Lead name", "string", "text",
                             "TRIM(COALESCE(r.first_name, '') || ' ' || COALESCE(r.last_name, ''))"),
        "hs_pipeline_stage": Prop("hs_pipeline_stage", "Lead stage", "enumeration", "select", "r.status",
                                  EnumCodec(mapping=LEAD_STAGES), options=_options(LEAD_STAGES)),
        "hs_pipeline": Prop("hs_pipeline", "Lead pipeline", "enumeration", "select", "'lead-pipeline-id'"),
    }
    objects["leads"] = ObjectSpec(
        "leads", "0-136", "lead", "leads", ID_BASES["leads"], lead_props,
        default_props=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        always_props=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"), searchable_text=("hs_lead_name",),
    )
    aliases: dict[str, str] = {}
    for spec in objects.values():
        for alias in (spec.name, spec.singular, spec.type_id, spec.name.replace("_", "")):
            aliases[alias.lower()] = spec.name
    aliases["line items"] = "line_items"
    return Catalog(objects, aliases, pipeline_ids, stage_ids, shape)
