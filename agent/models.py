"""The cache schema: every table the agent keeps, as SQLModel classes.

Conventions that every table follows (the KPI queries rely on them):

- Instants are timezone-aware datetimes, stored in UTC (``timestamptz`` on PostgreSQL, UTC text on
  SQLite) and read back in UTC; a naive datetime is refused on write.  Dates without a time
  (close date, contract start and end) are stored as ``date`` and mean the whole local day in the org
  timezone.  Period bucketing joins the :class:`Period` table, which holds each period both as local dates
  and as UTC instants, so it works the same on SQLite and PostgreSQL.
- CRM records carry the name of the configured ``connection`` they came from and the CRM's own id as
  ``source_id``; ``(connection, source_id)`` is unique per table, so two Salesforce orgs can coexist.
  References to other records are kept twice: the CRM id as sent (``*_source_id``), which is always
  known, and the cache's integer key (``*_id``), resolved at ingest when the other record is present.
- Amounts are kept as the CRM sent them (``amount`` in ``currency``) and in the org's home currency
  (``amount_home``); KPIs use the latter.
- ``is_deleted`` marks records deleted or archived in the CRM until they are purged.

The schema is created and upgraded only by the Alembic migrations in ``agent/migrations``; a test
checks that the migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

SCHEMA_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = SCHEMA_NAMING

ACTIVITY_KINDS = ("call", "email", "meeting", "demo", "proposal", "task", "note", "other")
ACTIVITY_STATUSES = ("completed", "open", "scheduled", "cancelled", "no_show", "other")
DIRECTIONS = ("outbound", "inbound", "none")
DEAL_TYPES = ("new_business", "upsell", "cross_sell", "renewal", "other")
SCOPE_KINDS = ("org", "team", "rep", "unassigned")


def _source_key(table: str) -> UniqueConstraint:
    return UniqueConstraint("connection", "source_id", name=f"uq_{table}_connection_source_id")


# Tables whose rows CRM users edit: on PostgreSQL a tenth of each page is left free, so that an edit which
# changes no indexed column is a HOT update (the new row version on the same page, no entry added to any of
# the table's indexes) instead of a new entry in every index.  SQLite updates rows in place.
EDITED_ROWS = {"postgresql_with": {"fillfactor": 90}}


class Connection(SQLModel, table=True):
    """A configured CRM connection; records name it so that several orgs can coexist."""

    __tablename__ = "connection"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    kind: str = Field(max_length=40)
    created_at: datetime


class Team(SQLModel, table=True):
    """A sales team, from config or from the CRM (Salesforce role, HubSpot team)."""

    __tablename__ = "team"
    __table_args__ = (_source_key("team"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    name: str = Field(max_length=200)
    region: str | None = Field(default=None, max_length=100)
    manager_rep_id: int | None = Field(default=None)


class Rep(SQLModel, table=True):
    """A sales rep: one per email, whichever CRMs know them (see :class:`CrmUser`)."""

    __tablename__ = "rep"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    name: str = Field(max_length=200)
    active: bool = True
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    manager_rep_id: int | None = Field(default=None)
    region: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)
    slack_user_id: str | None = Field(default=None, max_length=40)


class CrmUser(SQLModel, table=True):
    """A user or owner as one CRM knows it, mapped onto a :class:`Rep` by email."""

    __tablename__ = "crm_user"
    __table_args__ = (_source_key("crm_user"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    rep_id: int | None = Field(default=None, foreign_key="rep.id", index=True)
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    active: bool = True
    team_source_id: str | None = Field(default=None, max_length=100)
    last_modified_at: datetime | None = None


class Account(SQLModel, table=True):
    __tablename__ = "account"
    __table_args__ = (_source_key("account"), EDITED_ROWS)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    name: str | None = Field(default=None, max_length=255)
    owner_source_id: str | None = Field(default=None, max_length=100)
    owner_rep_id: int | None = Field(default=None, foreign_key="rep.id", index=True)
    region: str | None = Field(default=None, max_length=100, index=True)
    industry: str | None = Field(default=None, max_length=100)
    created_at: datetime | None = None
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (_source_key("contact"), EDITED_ROWS)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    account_source_id: str | None = Field(default=None, max_length=100)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    owner_source_id: str | None = Field(default=None, max_length=100)
    owner_rep_id: int | None = Field(default=None, foreign_key="rep.id", index=True)
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=255)
    lead_source: str | None = Field(default=None, max_length=100)
    lifecycle_stage: str | None = Field(default=None, max_length=60)
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    customer_at: datetime | None = None
    created_at: datetime | None = None
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class Pipeline(SQLModel, table=True):
    __tablename__ = "pipeline"
    __table_args__ = (_source_key("pipeline"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    name: str = Field(max_length=200)
    display_order: int = 0


class Stage(SQLModel, table=True):
    """A pipeline stage: its order, default probability (0–1) and closed/won flags."""

    __tablename__ = "stage"
    __table_args__ = (_source_key("stage"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    pipeline_id: int | None = Field(default=None, foreign_key="pipeline.id", index=True)
    pipeline_source_id: str | None = Field(default=None, max_length=100)
    name: str = Field(max_length=200)
    sort_order: int = 0
    probability: float | None = None
    is_closed: bool = False
    is_won: bool = False
    forecast_category: str | None = Field(default=None, max_length=40)


class Product(SQLModel, table=True):
    __tablename__ = "product"
    __table_args__ = (_source_key("product"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    name: str = Field(max_length=255)
    sku: str | None = Field(default=None, max_length=100)
    family: str | None = Field(default=None, max_length=100)


class Opportunity(SQLModel, table=True):
    """A deal.  ``closed_at`` is the instant it entered a closed stage (stage history), else the end of
    its close date's local day; ``probability`` is 0–1 (the deal's own, else its stage's)."""

    __tablename__ = "opportunity"
    __table_args__ = (
        _source_key("opportunity"),
        Index("ix_opportunity_won_close", "is_won", "close_date"),
        Index("ix_opportunity_owner_close", "owner_rep_id", "close_date"),
        Index("ix_opportunity_created", "created_at"),
        Index("ix_opportunity_open", "is_closed", "created_at"),
        EDITED_ROWS,
    )
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    name: str | None = Field(default=None, max_length=255)
    account_source_id: str | None = Field(default=None, max_length=100)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    owner_source_id: str | None = Field(default=None, max_length=100)
    owner_rep_id: int | None = Field(default=None, foreign_key="rep.id")
    pipeline_source_id: str | None = Field(default=None, max_length=100)
    pipeline_id: int | None = Field(default=None, foreign_key="pipeline.id")
    stage_source_id: str | None = Field(default=None, max_length=100)
    stage_id: int | None = Field(default=None, foreign_key="stage.id")
    amount: float | None = None
    currency: str | None = Field(default=None, max_length=3)
    amount_home: float | None = None
    probability: float | None = None
    forecast_category: str | None = Field(default=None, max_length=40)
    deal_type: str = Field(default="other", max_length=20)
    deal_type_raw: str | None = Field(default=None, max_length=100)
    lead_source: str | None = Field(default=None, max_length=100)
    record_type: str | None = Field(default=None, max_length=100)
    created_at: datetime
    close_date: date | None = None
    closed_at: datetime | None = None
    is_closed: bool = False
    is_won: bool = False
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class LineItem(SQLModel, table=True):
    """A deal's line: ``net_total`` after all discounts, ``list_price`` per unit before them."""

    __tablename__ = "line_item"
    __table_args__ = (_source_key("line_item"), EDITED_ROWS)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    opportunity_source_id: str | None = Field(default=None, max_length=100)
    opportunity_id: int | None = Field(default=None, foreign_key="opportunity.id", index=True)
    product_source_id: str | None = Field(default=None, max_length=100)
    product_id: int | None = Field(default=None, foreign_key="product.id", index=True)
    product_name: str | None = Field(default=None, max_length=255)
    quantity: float = 1.0
    list_price: float | None = None
    unit_price: float | None = None
    net_total: float | None = None
    currency: str | None = Field(default=None, max_length=3)
    list_total_home: float | None = None
    net_total_home: float | None = None
    recurring_term_months: int | None = None
    billing_frequency: str | None = Field(default=None, max_length=20)
    monthly_value_home: float | None = None
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class StageHistory(SQLModel, table=True):
    """One entry of a deal into a stage (Salesforce OpportunityHistory, HubSpot dealstage history)."""

    __tablename__ = "stage_history"
    __table_args__ = (
        _source_key("stage_history"),
        Index("ix_stage_history_opportunity_entered", "opportunity_id", "entered_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    opportunity_source_id: str | None = Field(default=None, max_length=100)
    opportunity_id: int | None = Field(default=None, foreign_key="opportunity.id")
    stage_source_id: str | None = Field(default=None, max_length=100)
    stage_id: int | None = Field(default=None, foreign_key="stage.id")
    entered_at: datetime
    amount_home: float | None = None
    probability: float | None = None
    close_date: date | None = None


class Activity(SQLModel, table=True):
    """A call, email, meeting, demo, proposal, task or note.  ``occurred_at`` is when it counts: the
    call or the sending, a meeting's start; ``created_at`` is when it was logged or booked."""

    __tablename__ = "activity"
    __table_args__ = (
        _source_key("activity"),
        Index("ix_activity_kind_occurred", "kind", "occurred_at"),
        Index("ix_activity_kind_created", "kind", "created_at"),  # meetings booked count by creation time
        Index("ix_activity_owner_occurred", "owner_rep_id", "occurred_at"),
        Index("ix_activity_lead", "lead_id", "occurred_at"),
        Index("ix_activity_opportunity", "opportunity_id", "occurred_at"),
        Index("ix_activity_contact", "contact_id", "occurred_at"),
        EDITED_ROWS,
    )
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    kind: str = Field(default="other", max_length=20)
    kind_raw: str | None = Field(default=None, max_length=100)
    subject: str | None = Field(default=None, max_length=255)
    status: str = Field(default="completed", max_length=20)
    direction: str = Field(default="none", max_length=10)
    owner_source_id: str | None = Field(default=None, max_length=100)
    owner_rep_id: int | None = Field(default=None, foreign_key="rep.id")
    occurred_at: datetime | None = None
    created_at: datetime | None = None
    lead_source_id: str | None = Field(default=None, max_length=100)
    lead_id: int | None = Field(default=None, foreign_key="lead.id")
    contact_source_id: str | None = Field(default=None, max_length=100)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    opportunity_source_id: str | None = Field(default=None, max_length=100)
    opportunity_id: int | None = Field(default=None, foreign_key="opportunity.id")
    account_source_id: str | None = Field(default=None, max_length=100)
    account_id: int | None = Field(default=None, foreign_key="account.id")
    duration_seconds: int | None = None
    outcome: str | None = Field(default=None, max_length=100)
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class Lead(SQLModel, table=True):
    __tablename__ = "lead"
    __table_args__ = (
        _source_key("lead"),
        Index("ix_lead_created", "created_at"),
        Index("ix_lead_owner_created", "owner_rep_id", "created_at"),
        Index("ix_lead_mql", "mql_at"),
        Index("ix_lead_converted_opportunity", "converted_opportunity_id"),
        Index("ix_lead_converted_contact", "converted_contact_id"),
        EDITED_ROWS,
    )
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    owner_source_id: str | None = Field(default=None, max_length=100)
    owner_rep_id: int | None = Field(default=None, foreign_key="rep.id")
    name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    company: str | None = Field(default=None, max_length=255)
    lead_source: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=100)
    created_at: datetime
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    converted_at: datetime | None = None
    converted_contact_source_id: str | None = Field(default=None, max_length=100)
    converted_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    converted_opportunity_source_id: str | None = Field(default=None, max_length=100)
    converted_opportunity_id: int | None = Field(default=None, foreign_key="opportunity.id")
    converted_account_source_id: str | None = Field(default=None, max_length=100)
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class Contract(SQLModel, table=True):
    """Recurring revenue: active from ``start_date`` 00:00 to ``end_date`` + 1 day 00:00 (local)."""

    __tablename__ = "contract"
    __table_args__ = (_source_key("contract"), Index("ix_contract_span", "start_date", "end_date"), EDITED_ROWS)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    account_source_id: str | None = Field(default=None, max_length=100)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    opportunity_source_id: str | None = Field(default=None, max_length=100)
    opportunity_id: int | None = Field(default=None, foreign_key="opportunity.id")
    owner_rep_id: int | None = Field(default=None, foreign_key="rep.id")
    start_date: date
    end_date: date | None = None
    cancelled_date: date | None = None
    status: str | None = Field(default=None, max_length=40)
    term_months: int | None = None
    monthly_value_home: float = 0.0
    derived_from: str = Field(default="crm", max_length=20)
    last_modified_at: datetime | None = None
    is_deleted: bool = False


class CurrencyRate(SQLModel, table=True):
    """Units of ``iso_code`` per one unit of the home currency, from ``start_date`` on (null: always)."""

    __tablename__ = "currency_rate"
    __table_args__ = (_source_key("currency_rate"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    iso_code: str = Field(max_length=3, index=True)
    rate: float
    start_date: date | None = None
    end_date: date | None = None
    is_corporate: bool = False


class Cost(SQLModel, table=True):
    """Sales, marketing or cost-of-goods money for a period; not CRM data (config or CSV)."""

    __tablename__ = "cost"
    __table_args__ = (_source_key("cost"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(default="config", max_length=100)
    source_id: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    period_start: date
    period_end: date
    team_id: int | None = Field(default=None, foreign_key="team.id")
    product_id: int | None = Field(default=None, foreign_key="product.id")
    amount_home: float


class Quota(SQLModel, table=True):
    """A revenue (or other KPI) target for a rep or a team over ``[period_start, period_end)``."""

    __tablename__ = "quota"
    __table_args__ = (
        UniqueConstraint("kpi", "scope_kind", "scope_id", "period_start", "period_end", name="uq_quota_scope"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kpi: str = Field(default="revenue", max_length=80)
    scope_kind: str = Field(max_length=10)
    scope_id: str = Field(max_length=100)
    period_start: date
    period_end: date
    amount: float
    source: str = Field(default="config", max_length=40)


class Goal(SQLModel, table=True):
    """A goal on any KPI for a scope and period, at an A (stretch) or C (minimum) level, optionally
    limited to a segment (a dimension and its value)."""

    __tablename__ = "goal"
    __table_args__ = (
        UniqueConstraint(
            "kpi", "scope_kind", "scope_id", "grain", "period_start", "dimension", "dimension_value",
            name="uq_goal_scope",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    kpi: str = Field(max_length=80)
    scope_kind: str = Field(max_length=10)
    scope_id: str = Field(default="", max_length=100)
    grain: str = Field(max_length=10)
    period_start: date
    target: float
    level: str = Field(default="C", max_length=1)
    dimension: str = Field(default="", max_length=40)
    dimension_value: str = Field(default="", max_length=200)
    source: str = Field(default="config", max_length=40)


class Period(SQLModel, table=True):
    """A calendar period in the org timezone, as local dates and as UTC instants, so that KPI queries
    bucket rows with a range join that works alike on SQLite and PostgreSQL."""

    __tablename__ = "period"
    __table_args__ = (
        UniqueConstraint("grain", "start_date", name="uq_period_grain_start"),
        Index("ix_period_grain_utc", "grain", "start_utc"),
    )
    id: int | None = Field(default=None, primary_key=True)
    grain: str = Field(max_length=10)
    start_date: date
    end_date: date
    start_utc: datetime
    end_utc: datetime
    timezone: str = Field(max_length=64)
    fiscal_start_month: int = 1


class KpiRun(SQLModel, table=True):
    __tablename__ = "kpi_run"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime
    finished_at: datetime | None = None
    status: str = Field(default="running", max_length=20)
    failed_kpis: str | None = Field(default=None, sa_column=Column(Text))


class KpiValue(SQLModel, table=True):
    """One computed value; numerator and denominator are kept so scopes roll up as Σn / Σd."""

    __tablename__ = "kpi_value"
    __table_args__ = (
        UniqueConstraint(
            "kpi", "grain", "period_start", "scope_kind", "scope_id", "dimension", "dimension_value",
            name="uq_kpi_value_key",
        ),
        Index("ix_kpi_value_period", "grain", "period_start", "kpi"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kpi: str = Field(max_length=80)
    grain: str = Field(max_length=10)
    period_start: date
    period_end: date
    scope_kind: str = Field(max_length=10)
    scope_id: str = Field(default="", max_length=100)
    dimension: str = Field(default="", max_length=40)
    dimension_value: str = Field(default="", max_length=200)
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    status: str = Field(default="ok", max_length=10)
    error: str | None = Field(default=None, sa_column=Column(Text))
    run_id: int | None = Field(default=None, foreign_key="kpi_run.id")
    computed_at: datetime


class PipelineSnapshot(SQLModel, table=True):
    """The open pipeline as it stood at an instant (history the CRM does not keep): one row a deal."""

    __tablename__ = "pipeline_snapshot"
    __table_args__ = (
        UniqueConstraint("taken_for", "opportunity_id", name="uq_pipeline_snapshot_deal"),
        Index("ix_pipeline_snapshot_taken", "taken_for"),
    )
    id: int | None = Field(default=None, primary_key=True)
    taken_for: datetime
    taken_at: datetime
    opportunity_id: int = Field(foreign_key="opportunity.id")
    owner_rep_id: int | None = None
    stage_id: int | None = None
    amount_home: float | None = None
    probability: float | None = None
    close_date: date | None = None
    rebuilt: bool = False


class ForecastSnapshot(SQLModel, table=True):
    """``revenue_forecast`` as it stood at a period's start, for ``forecast_accuracy``."""

    __tablename__ = "forecast_snapshot"
    __table_args__ = (
        UniqueConstraint("grain", "period_start", "scope_kind", "scope_id", name="uq_forecast_snapshot_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    grain: str = Field(max_length=10)
    period_start: date
    scope_kind: str = Field(max_length=10)
    scope_id: str = Field(default="", max_length=100)
    value: float | None = None
    taken_at: datetime
    rebuilt: bool = False


class SyncCursor(SQLModel, table=True):
    """Where a (connection, object) sync stands; written in the transaction of the rows it covers."""

    __tablename__ = "sync_cursor"
    __table_args__ = (UniqueConstraint("connection", "object", name="uq_sync_cursor_object"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    object: str = Field(max_length=60)
    stamp: datetime | None = None
    last_id: str | None = Field(default=None, max_length=100)
    initial_load_done: bool = False
    initial_load_started_at: datetime | None = None
    initial_last_id: str | None = Field(default=None, max_length=100)
    bulk_job_id: str | None = Field(default=None, max_length=100)
    bulk_locator: str | None = Field(default=None, max_length=200)
    last_reconciled_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = None
    last_run_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    records_synced: int = 0
    updated_at: datetime | None = None


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_object", "connection", "object", "started_at"),)
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    object: str = Field(max_length=60)
    started_at: datetime
    finished_at: datetime | None = None
    status: str = Field(default="running", max_length=20)
    records: int = 0
    deleted: int = 0
    quarantined: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))


class QuarantinedRecord(SQLModel, table=True):
    """A CRM record that could not be cached, kept by id with the reason and what the CRM sent."""

    __tablename__ = "quarantined_record"
    __table_args__ = (
        UniqueConstraint("connection", "object", "source_id", name="uq_quarantined_record_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    object: str = Field(max_length=60)
    source_id: str = Field(max_length=100)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    first_seen_at: datetime
    last_seen_at: datetime


class OutboxMessage(SQLModel, table=True):
    """A Slack message to send exactly once: its ``idempotency_key`` is unique, and it is marked sent in
    the same transaction that records Slack's answer."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_status", "status", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=20)
    channel: str = Field(max_length=100)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    created_at: datetime
    sent_at: datetime | None = None
    slack_ts: str | None = Field(default=None, max_length=40)
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class Setting(SQLModel, table=True):
    """Facts about the cache itself (e.g. the timezone its periods were built for)."""

    __tablename__ = "setting"
    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_column=Column(Text, nullable=False))


# The cache's keys that the sync resolves from CRM ids: (table, key column, parent table, the CRM id it is
# resolved from); an owner's key is the rep of the parent crm_user.  agent/sync/writer.py resolves them from
# this list.  A row whose parent was not there when it was written (it came later in the run, or has not
# come at all) keeps a null key until the end-of-run pass, which finds such rows through the partial indexes
# below, which hold only them, instead of scanning every row of a table of millions once per run.
KEY_REFERENCES: tuple[tuple[str, str, str, str], ...] = (
    ("stage", "pipeline_id", "pipeline", "pipeline_source_id"),
    ("account", "owner_rep_id", "crm_user", "owner_source_id"),
    ("contact", "account_id", "account", "account_source_id"),
    ("contact", "owner_rep_id", "crm_user", "owner_source_id"),
    ("lead", "owner_rep_id", "crm_user", "owner_source_id"),
    ("lead", "converted_contact_id", "contact", "converted_contact_source_id"),
    ("lead", "converted_opportunity_id", "opportunity", "converted_opportunity_source_id"),
    ("opportunity", "account_id", "account", "account_source_id"),
    ("opportunity", "owner_rep_id", "crm_user", "owner_source_id"),
    ("opportunity", "pipeline_id", "pipeline", "pipeline_source_id"),
    ("opportunity", "stage_id", "stage", "stage_source_id"),
    ("line_item", "opportunity_id", "opportunity", "opportunity_source_id"),
    ("line_item", "product_id", "product", "product_source_id"),
    ("stage_history", "opportunity_id", "opportunity", "opportunity_source_id"),
    ("stage_history", "stage_id", "stage", "stage_source_id"),
    ("activity", "owner_rep_id", "crm_user", "owner_source_id"),
    ("activity", "lead_id", "lead", "lead_source_id"),
    ("activity", "contact_id", "contact", "contact_source_id"),
    ("activity", "opportunity_id", "opportunity", "opportunity_source_id"),
    ("activity", "account_id", "account", "account_source_id"),
    ("contract", "account_id", "account", "account_source_id"),
    ("contract", "opportunity_id", "opportunity", "opportunity_source_id"),
)
UNRESOLVED_REFERENCES: tuple[tuple[str, str, str], ...] = tuple(
    (table, id_column, source_column) for table, id_column, _parent, source_column in KEY_REFERENCES)


def unresolved_index_name(table: str, id_column: str) -> str:
    return f"ix_{table}_{id_column}_unresolved"


def unresolved_condition(id_column: str, source_column: str) -> str:
    return f"{id_column} IS NULL AND {source_column} IS NOT NULL"


# Rows marked deleted in the CRM, which the end-of-run purge removes: found through an index that holds
# only them, so a run with nothing to purge does not scan every table.
DELETED_MARK = "is_deleted = TRUE"
MARKED_DELETED_TABLES: tuple[str, ...] = tuple(
    name for name, table in SQLModel.metadata.tables.items() if "is_deleted" in table.columns)


def marked_deleted_index_name(table: str) -> str:
    return f"ix_{table}_marked_deleted"


# The CRM's own contracts that name their deal (a deal with one gets no contract derived from it): whether
# there are any is asked once per sync run, and for Salesforce, whose standard Contract has no deal, the
# answer is always no; through this index (empty there) instead of a scan of every contract.
CRM_CONTRACT_NAMES_DEAL = "derived_from <> 'deal' AND opportunity_source_id IS NOT NULL"
Index("ix_contract_crm_names_deal", SQLModel.metadata.tables["contract"].c.connection,
      sqlite_where=text(CRM_CONTRACT_NAMES_DEAL), postgresql_where=text(CRM_CONTRACT_NAMES_DEAL))

for _table in MARKED_DELETED_TABLES:
    Index(marked_deleted_index_name(_table), SQLModel.metadata.tables[_table].c.connection,
          sqlite_where=text(DELETED_MARK), postgresql_where=text(DELETED_MARK))

for _table, _id_column, _source_column in UNRESOLVED_REFERENCES:
    _condition = text(unresolved_condition(_id_column, _source_column))
    Index(unresolved_index_name(_table, _id_column), SQLModel.metadata.tables[_table].c.connection,
          sqlite_where=_condition, postgresql_where=_condition)
