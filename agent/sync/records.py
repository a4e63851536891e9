"""Normalized CRM records: what every connector yields, whichever CRM it reads.

Each record mirrors one cache table (``agent/models.py``) minus the integer keys: references to other
records are CRM ids (``*_source_id``), which the sync writer resolves to cache keys.  Instants are
timezone-aware UTC datetimes; dates without a time are ``date``.  Amounts come as sent (``amount`` in
``currency``) and in the home currency (``amount_home``) when the CRM or the connector can say it.

These are part of the plugin API (connector plugins build them): new fields get defaults, nothing is
renamed without a deprecation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from agent.models import ACTIVITY_KINDS, ACTIVITY_STATUSES, DEAL_TYPES, DIRECTIONS


@dataclass(frozen=True, kw_only=True)
class CrmRecord:
    """Common to every record: the CRM's id, when it last changed, whether it is deleted/archived."""

    source_id: str
    last_modified_at: datetime | None = None
    is_deleted: bool = False


@dataclass(frozen=True, kw_only=True)
class UserRecord(CrmRecord):
    """A CRM user or owner; mapped onto a rep by email (one rep per email across connections)."""

    email: str | None = None
    name: str | None = None
    active: bool = True
    team_source_id: str | None = None
    manager_source_id: str | None = None
    region: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, kw_only=True)
class TeamRecord(CrmRecord):
    """A Salesforce role or HubSpot team."""

    name: str
    region: str | None = None


@dataclass(frozen=True, kw_only=True)
class AccountRecord(CrmRecord):
    name: str | None = None
    owner_source_id: str | None = None
    region: str | None = None
    industry: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ContactRecord(CrmRecord):
    account_source_id: str | None = None
    owner_source_id: str | None = None
    email: str | None = None
    name: str | None = None
    lead_source: str | None = None
    lifecycle_stage: str | None = None
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    customer_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class LeadRecord(CrmRecord):
    created_at: datetime
    owner_source_id: str | None = None
    name: str | None = None
    email: str | None = None
    company: str | None = None
    lead_source: str | None = None
    status: str | None = None
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    converted_at: datetime | None = None
    converted_contact_source_id: str | None = None
    converted_opportunity_source_id: str | None = None
    converted_account_source_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class PipelineRecord(CrmRecord):
    name: str
    display_order: int = 0


@dataclass(frozen=True, kw_only=True)
class StageRecord(CrmRecord):
    """A pipeline stage; ``probability`` is 0–1."""

    name: str
    pipeline_source_id: str | None = None
    sort_order: int = 0
    probability: float | None = None
    is_closed: bool = False
    is_won: bool = False
    forecast_category: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProductRecord(CrmRecord):
    name: str
    sku: str | None = None
    family: str | None = None


@dataclass(frozen=True, kw_only=True)
class OpportunityRecord(CrmRecord):
    """A deal. ``probability`` is 0–1 (Salesforce's 0–100 divided by 100); ``deal_type`` is one of
    ``DEAL_TYPES`` after mapping, ``deal_type_raw`` the CRM's value; ``closed_at`` the instant the deal
    entered a closed stage when the connector knows it (else the writer derives it from the close date)."""

    created_at: datetime
    name: str | None = None
    account_source_id: str | None = None
    owner_source_id: str | None = None
    pipeline_source_id: str | None = None
    stage_source_id: str | None = None
    amount: float | None = None
    currency: str | None = None
    amount_home: float | None = None
    probability: float | None = None
    forecast_category: str | None = None
    deal_type: str = "other"
    deal_type_raw: str | None = None
    lead_source: str | None = None
    record_type: str | None = None
    close_date: date | None = None
    closed_at: datetime | None = None
    is_closed: bool = False
    is_won: bool = False

    def __post_init__(self) -> None:
        if self.deal_type not in DEAL_TYPES:
            raise ValueError(f"opportunity {self.source_id}: deal_type {self.deal_type!r} is not one of {DEAL_TYPES}")


@dataclass(frozen=True, kw_only=True)
class LineItemRecord(CrmRecord):
    opportunity_source_id: str | None = None
    product_source_id: str | None = None
    product_name: str | None = None
    quantity: float = 1.0
    list_price: float | None = None
    unit_price: float | None = None
    net_total: float | None = None
    currency: str | None = None
    list_total_home: float | None = None
    net_total_home: float | None = None
    recurring_term_months: int | None = None
    billing_frequency: str | None = None
    monthly_value_home: float | None = None


@dataclass(frozen=True, kw_only=True)
class StageHistoryRecord(CrmRecord):
    entered_at: datetime
    opportunity_source_id: str | None = None
    stage_source_id: str | None = None
    amount_home: float | None = None
    probability: float | None = None
    close_date: date | None = None
    amount: float | None = None
    """The deal's amount at that entry, as the CRM sent it; the writer converts it when ``amount_home``
    is not given (``currency``, else the deal's currency)."""
    currency: str | None = None


@dataclass(frozen=True, kw_only=True)
class ActivityRecord(CrmRecord):
    """A call, email, meeting, demo, proposal, task or note, already mapped to the cache's kinds.
    ``occurred_at``: the call or sending time, a meeting's start; ``created_at``: when logged/booked."""

    kind: str = "other"
    kind_raw: str | None = None
    subject: str | None = None
    status: str = "completed"
    direction: str = "none"
    owner_source_id: str | None = None
    occurred_at: datetime | None = None
    created_at: datetime | None = None
    lead_source_id: str | None = None
    contact_source_id: str | None = None
    opportunity_source_id: str | None = None
    account_source_id: str | None = None
    duration_seconds: int | None = None
    outcome: str | None = None

    def __post_init__(self) -> None:
        checks = ((self.kind, ACTIVITY_KINDS, "kind"), (self.status, ACTIVITY_STATUSES, "status"),
                  (self.direction, DIRECTIONS, "direction"))
        for value, allowed, name in checks:
            if value not in allowed:
                raise ValueError(f"activity {self.source_id}: {name} {value!r} is not one of {allowed}")


@dataclass(frozen=True, kw_only=True)
class ContractRecord(CrmRecord):
    start_date: date
    account_source_id: str | None = None
    opportunity_source_id: str | None = None
    owner_source_id: str | None = None
    end_date: date | None = None
    cancelled_date: date | None = None
    status: str | None = None
    term_months: int | None = None
    monthly_value_home: float = 0.0
    derived_from: str = "crm"


@dataclass(frozen=True, kw_only=True)
class CurrencyRateRecord(CrmRecord):
    """Units of ``iso_code`` per one unit of the home currency, from ``start_date`` (null: always)."""

    iso_code: str
    rate: float
    start_date: date | None = None
    end_date: date | None = None
    is_corporate: bool = False


@dataclass(frozen=True)
class QuarantinedItem:
    """A record that could not be normalized: kept by id with the reason and the raw payload."""

    source_id: str
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)


RECORD_TABLES: dict[type[CrmRecord], str] = {
    UserRecord: "crm_user",
    TeamRecord: "team",
    AccountRecord: "account",
    ContactRecord: "contact",
    LeadRecord: "lead",
    PipelineRecord: "pipeline",
    StageRecord: "stage",
    ProductRecord: "product",
    OpportunityRecord: "opportunity",
    LineItemRecord: "line_item",
    StageHistoryRecord: "stage_history",
    ActivityRecord: "activity",
    ContractRecord: "contract",
    CurrencyRateRecord: "currency_rate",
}
