"""The cache as KPI facts: named *sources* that declarative KPIs aggregate over.

A source is a SQLAlchemy ``Select`` over the cache with a fixed shape: ``rep_id`` (the owning rep, null
for records owned by no rep), ``team_id`` (a team that owns the row directly, e.g. a team's costs; null
otherwise — the engine adds the rep's current team), ``dimension_value`` (the requested dimension, or
``''``) and the columns a KPI asks for.  Deleted and archived records never appear.  Amounts are in the
home currency.

Kinds:

- ``event``: rows happen at a time; ``Aggregate(at=...)`` names the time column and the engine
  range-joins it with the ``period`` table (local dates for date-only columns, UTC instants otherwise).
- ``static``: rows have no time (reps); they count in every period.
- ``period``: the source joins the periods itself and returns ``period_start`` (costs booked to a
  span, customers per period).
- ``state``: like ``period``, as the state stood at the period's start or end (``AsOf``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)

from agent.kpi.spec import NO_VALUE, KpiContext
from agent.kpi.sqlfuncs import add_months, days_between, minutes_between, row_filter, sequential
from agent.models import (
    Account,
    Activity,
    Contact,
    Contract,
    Cost,
    Lead,
    LineItem,
    Opportunity,
    Period,
    Pipeline,
    PipelineSnapshot,
    Product,
    Rep,
    Stage,
    StageHistory,
)

SourceKind = Literal["event", "static", "period", "state"]
TimeKind = Literal["date", "instant"]

OPPORTUNITY = Opportunity.__table__
ACCOUNT = Account.__table__
ACTIVITY = Activity.__table__
CONTACT = Contact.__table__
CONTRACT = Contract.__table__
COST = Cost.__table__
LEAD = Lead.__table__
LINE_ITEM = LineItem.__table__
PERIOD = Period.__table__
PIPELINE = Pipeline.__table__
SNAPSHOT = PipelineSnapshot.__table__
PRODUCT = Product.__table__
REP = Rep.__table__
STAGE = Stage.__table__
STAGE_HISTORY = StageHistory.__table__

OPPORTUNITY_DIMENSIONS = ("lead_source", "region", "pipeline", "crm", "deal_type")
HELD_STATUSES = ("completed", "scheduled")
MEETING_KINDS = ("meeting", "demo")


class SourceError(LookupError):
    """A KPI names a source, column or dimension that does not exist."""


@dataclass(frozen=True)
class SourceRequest:
    """What the engine asks of a source: these columns, sliced by this dimension, over these windows."""

    ctx: KpiContext
    columns: frozenset[str]
    dimension: str | None
    windows: FromClause | None = None
    instant: str | None = None


@dataclass(frozen=True)
class Source:
    name: str
    kind: SourceKind
    description: str
    columns: tuple[str, ...]
    dimensions: tuple[str, ...]
    build: Callable[[SourceRequest], Select]
    times: tuple[tuple[str, TimeKind], ...] = ()

    def time_kind(self, column: str) -> TimeKind:
        for name, kind in self.times:
            if name == column:
                return kind
        known = ", ".join(name for name, _ in self.times) or "none"
        raise SourceError(f"source {self.name!r} has no time column {column!r}; its time columns: {known}")

    def check_columns(self, columns: frozenset[str]) -> None:
        unknown = sorted(columns - set(self.columns) - {name for name, _ in self.times})
        if unknown:
            raise SourceError(
                f"source {self.name!r} has no column(s) {', '.join(unknown)}; it has {', '.join(self.columns)}"
            )


# --- shared pieces ---------------------------------------------------------------------------------


def dimension_value(expression: ColumnElement[Any]) -> ColumnElement[str]:
    return func.coalesce(cast(expression, String), literal(NO_VALUE, String))


NO_DIMENSION = literal_column("''", String)


def _unsupported(source: str, dimension: str) -> SourceError:
    return SourceError(f"source {source!r} cannot be sliced by {dimension!r}")


def opportunity_dimension(
    frm: FromClause, opportunity: FromClause, dimension: str | None, source: str
) -> tuple[FromClause, ColumnElement[str]]:
    """The dimension column for rows of an opportunity, with the join it needs."""
    o = opportunity.c
    if dimension is None:
        return frm, NO_DIMENSION
    direct = {"lead_source": o.lead_source, "crm": o.connection, "deal_type": o.deal_type}
    if dimension in direct:
        return frm, dimension_value(direct[dimension])
    if dimension == "region":
        account = ACCOUNT.alias("dimension_account")
        return frm.outerjoin(account, account.c.id == o.account_id), dimension_value(account.c.region)
    if dimension == "pipeline":
        pipeline = PIPELINE.alias("dimension_pipeline")
        return frm.outerjoin(pipeline, pipeline.c.id == o.pipeline_id), dimension_value(pipeline.c.name)
    raise _unsupported(source, dimension)


def account_dimension(account: FromClause, dimension: str | None, source: str) -> ColumnElement[str]:
    if dimension is None:
        return NO_DIMENSION
    if dimension == "region":
        return dimension_value(account.c.region)
    if dimension == "crm":
        return dimension_value(account.c.connection)
    raise _unsupported(source, dimension)


def _pick(request: SourceRequest, columns: Mapping[str, ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    return [columns[name].label(name) for name in sorted(request.columns)]


def _shape(rep_id: ColumnElement[Any], team_id: ColumnElement[Any], dimension: ColumnElement[str]) -> list[Any]:
    return [rep_id.label("rep_id"), team_id.label("team_id"), dimension.label("dimension_value")]


def no_id() -> ColumnElement[Any]:
    """A typed null id (PostgreSQL types an untyped NULL in a UNION as text)."""
    return cast(null(), Integer)


def _grouping(request: SourceRequest, dimension: ColumnElement[str]) -> list[ColumnElement[str]]:
    """GROUP BY terms for the dimension (none without one: PostgreSQL rejects grouping by a constant)."""
    return [dimension] if request.dimension is not None else []


def local_date(instant: ColumnElement[Any]) -> ColumnElement[Any]:
    """The org-local date of a UTC instant, read from the ``day`` rows of the period table (the engine
    keeps them for the span of the data), so no timezone database is needed in SQL."""
    return (
        select(PERIOD.c.start_date)
        .where(PERIOD.c.grain == "day", PERIOD.c.start_utc <= instant)
        .order_by(PERIOD.c.start_utc.desc())
        .limit(1)
        .scalar_subquery()
    )


def _later_open_stage(stage: FromClause) -> ColumnElement[bool]:
    """``stage`` is open and later in its pipeline than the pipeline's first open stage."""
    first = STAGE.alias("first_open_stage")
    first_order = (
        select(func.min(first.c.sort_order))
        .where(first.c.pipeline_id.is_not_distinct_from(stage.c.pipeline_id), first.c.is_closed == false())
        .scalar_subquery()
    )
    return and_(stage.c.is_closed == false(), stage.c.sort_order > first_order)


def _qualified(opportunity: FromClause) -> ColumnElement[bool]:
    entered = STAGE.alias("entered_stage")
    history = STAGE_HISTORY.alias("qualified_history")
    current = STAGE.alias("current_stage")
    reached_in_history = exists(
        select(history.c.id)
        .select_from(history.join(entered, entered.c.id == history.c.stage_id))
        .where(history.c.opportunity_id == opportunity.c.id, _later_open_stage(entered))
    )
    is_now_in_later_stage = exists(
        select(current.c.id).where(current.c.id == opportunity.c.stage_id, _later_open_stage(current))
    )
    return or_(opportunity.c.is_won == literal(True), reached_in_history, is_now_in_later_stage)


# --- opportunities ---------------------------------------------------------------------------------


def _opportunities(request: SourceRequest) -> Select:
    o = OPPORTUNITY
    frm, dimension = opportunity_dimension(o, o, request.dimension, "opportunities")
    columns: dict[str, ColumnElement[Any]] = {
        "close_date": o.c.close_date,
        "created_at": o.c.created_at,
        "closed_at": o.c.closed_at,
        "amount": o.c.amount_home,
        "is_won": o.c.is_won,
        "is_closed": o.c.is_closed,
        "is_lost": and_(o.c.is_closed == literal(True), o.c.is_won == false()),
        "deal_type": o.c.deal_type,
        "is_new_business": o.c.deal_type == "new_business",
        "cycle_days": days_between(o.c.close_date, local_date(o.c.created_at)),
        "is_qualified": _qualified(o),
    }
    return (
        select(*_shape(o.c.owner_rep_id, no_id(), dimension), *_pick(request, columns))
        .select_from(frm)
        .where(o.c.is_deleted == false())
    )


# --- line items of won deals -----------------------------------------------------------------------


def _unit_cost(request: SourceRequest, item: FromClause, product: FromClause) -> ColumnElement[Any]:
    """The configured unit cost of a line's product, by SKU, product name or the line's product name."""
    costs = dict(request.ctx.config.unit_costs)
    if not costs:
        return null()
    lowered = {key.strip().lower(): value for key, value in costs.items()}
    return func.coalesce(
        case(costs, value=product.c.sku, else_=null()),
        case(lowered, value=func.lower(product.c.name), else_=null()),
        case(lowered, value=func.lower(item.c.product_name), else_=null()),
    )


def _line_items(request: SourceRequest) -> Select:
    item, o = LINE_ITEM, OPPORTUNITY
    product = PRODUCT.alias("line_product")
    frm = item.join(o, o.c.id == item.c.opportunity_id).outerjoin(product, product.c.id == item.c.product_id)
    if request.dimension == "product":
        frm_d, dimension = frm, dimension_value(func.coalesce(product.c.name, item.c.product_name))
    else:
        frm_d, dimension = opportunity_dimension(frm, o, request.dimension, "line_items")
    unit_cost = _unit_cost(request, item, product)
    cost = unit_cost * item.c.quantity
    columns: dict[str, ColumnElement[Any]] = {
        "close_date": o.c.close_date,
        "net": item.c.net_total_home,
        "list_total": item.c.list_total_home,
        "discount": item.c.list_total_home - item.c.net_total_home,
        "quantity": item.c.quantity,
        "is_costed": unit_cost.isnot(None) if costs_configured(request) else false(),
        "cost": cost,
        "margin": item.c.net_total_home - cost,
    }
    return (
        select(*_shape(o.c.owner_rep_id, no_id(), dimension), *_pick(request, columns))
        .select_from(frm_d)
        .where(item.c.is_deleted == false(), o.c.is_deleted == false(), o.c.is_won == literal(True))
    )


def costs_configured(request: SourceRequest) -> bool:
    return bool(request.ctx.config.unit_costs)


# --- activities ------------------------------------------------------------------------------------


def counts_as_response(activity: FromClause) -> ColumnElement[bool]:
    """An activity that answers a lead: an outbound completed call or email, or a meeting booked."""
    a = activity.c
    return or_(
        and_(a.kind.in_(("call", "email")), a.status == "completed", a.direction == "outbound"),
        a.kind.in_(MEETING_KINDS),
    )


def response_time(activity: FromClause) -> ColumnElement[Any]:
    """When an activity answered: a call or email when made or sent, a meeting when booked."""
    return case((activity.c.kind.in_(MEETING_KINDS), activity.c.created_at), else_=activity.c.occurred_at)


def _activities(request: SourceRequest) -> Select:
    a = ACTIVITY
    now = literal(request.ctx.now, Activity.__table__.c.occurred_at.type)
    held = and_(a.c.status.in_(HELD_STATUSES), a.c.occurred_at <= now)
    frm: FromClause = a
    if request.dimension == "region":
        account = ACCOUNT.alias("activity_account")
        frm = a.outerjoin(account, account.c.id == a.c.account_id)
        dimension = dimension_value(account.c.region)
    elif request.dimension == "crm":
        dimension = dimension_value(a.c.connection)
    elif request.dimension is None:
        dimension = NO_DIMENSION
    else:
        raise _unsupported("activities", request.dimension)
    outbound_done = and_(a.c.status == "completed", a.c.direction == "outbound")
    columns: dict[str, ColumnElement[Any]] = {
        "occurred_at": a.c.occurred_at,
        "created_at": a.c.created_at,
        "kind": a.c.kind,
        "status": a.c.status,
        "direction": a.c.direction,
        "is_call": and_(a.c.kind == "call", outbound_done),
        "is_email": and_(a.c.kind == "email", outbound_done),
        "is_call_or_email": and_(a.c.kind.in_(("call", "email")), outbound_done),
        "is_meeting_held": and_(a.c.kind == "meeting", held),
        "is_demo_held": and_(a.c.kind == "demo", held),
        "is_proposal_sent": and_(a.c.kind == "proposal", a.c.status == "completed"),
        "is_meeting_booked": a.c.kind.in_(MEETING_KINDS),
    }
    return (
        select(*_shape(a.c.owner_rep_id, no_id(), dimension), *_pick(request, columns))
        .select_from(frm)
        .where(a.c.is_deleted == false())
    )


# --- leads ----------------------------------------------------------------------------------------


def first_responses() -> FromClause:
    """Each lead's first response by its owner, on the lead or on the contact or deal it was converted
    into (activities move there on conversion and still count): one grouped pass over the linked
    activities, which the activity indexes on lead, contact and deal find.  The owner check sits in the
    aggregate, not the join, so the planner keeps to those indexes."""
    lead = LEAD.alias("responding_lead")

    def via(column: str, target: ColumnElement[Any]) -> Select:
        activity = ACTIVITY.alias(f"response_via_{column}")
        answered = response_time(activity)
        by_owner = case((activity.c.owner_rep_id == lead.c.owner_rep_id, answered), else_=None)
        return (
            select(lead.c.id.label("lead_id"), by_owner.label("answered"), lead.c.created_at.label("created_at"))
            .select_from(lead.join(activity, activity.c[column] == target))
            # A row filter: as an OR over indexed kinds it had SQLite read every call, email and meeting
            # three times through the kind index instead of each lead's few activities by link.
            .where(activity.c.is_deleted == false(), row_filter(counts_as_response(activity)), target.isnot(None))
        )

    linked = union_all(
        via("lead_id", lead.c.id),
        via("contact_id", lead.c.converted_contact_id),
        via("opportunity_id", lead.c.converted_opportunity_id),
    ).subquery("linked_responses")
    in_time = case((linked.c.answered >= linked.c.created_at, linked.c.answered), else_=None)
    return (
        select(linked.c.lead_id, func.min(in_time).label("first_response"))
        .group_by(linked.c.lead_id)
        .subquery("first_responses")
    )


def _leads(request: SourceRequest) -> Select:
    lead = LEAD
    if request.dimension in (None, "lead_source", "crm"):
        direct = {"lead_source": lead.c.lead_source, "crm": lead.c.connection}
        dimension = dimension_value(direct[request.dimension]) if request.dimension else NO_DIMENSION
    else:
        raise _unsupported("leads", request.dimension)
    frm: FromClause = lead
    responded: ColumnElement[Any] = null()
    if request.columns & {"response_minutes", "has_response", "answered_5min"}:
        first = first_responses()
        frm, responded = lead.outerjoin(first, first.c.lead_id == lead.c.id), first.c.first_response
    minutes = minutes_between(responded, lead.c.created_at)
    columns: dict[str, ColumnElement[Any]] = {
        "created_at": lead.c.created_at,
        "converted_at": lead.c.converted_at,
        "mql_at": lead.c.mql_at,
        "is_converted_to_opportunity": or_(
            lead.c.converted_opportunity_id.isnot(None), lead.c.converted_opportunity_source_id.isnot(None)
        ),
        "response_minutes": minutes,
        "has_response": responded.isnot(None),
        "answered_5min": and_(responded.isnot(None), minutes <= 5),
    }
    return (
        select(*_shape(lead.c.owner_rep_id, no_id(), dimension), *_pick(request, columns))
        .select_from(frm)
        .where(lead.c.is_deleted == false())
    )


def _lifecycle(request: SourceRequest) -> Select:
    """Leads and contacts with lifecycle dates (MQL, SQL); a contact a lead with an MQL date was
    converted into is the same person and is counted once, as the lead."""
    lead, contact = LEAD, CONTACT
    if request.dimension not in (None, "lead_source", "crm"):
        raise _unsupported("lifecycle", request.dimension)

    def dimension_of(table: FromClause) -> ColumnElement[str]:
        if request.dimension is None:
            return NO_DIMENSION
        column = "connection" if request.dimension == "crm" else "lead_source"
        return dimension_value(table.c[column])

    def columns_of(table: FromClause) -> dict[str, ColumnElement[Any]]:
        return {"mql_at": table.c.mql_at, "reached_sql": table.c.sql_at.isnot(None)}

    converted = LEAD.alias("converted_lead")
    leads = select(*_shape(lead.c.owner_rep_id, no_id(), dimension_of(lead)), *_pick(request, columns_of(lead))).where(
        lead.c.is_deleted == false(), lead.c.mql_at.isnot(None)
    )
    contacts = select(
        *_shape(contact.c.owner_rep_id, no_id(), dimension_of(contact)), *_pick(request, columns_of(contact))
    ).where(
        contact.c.is_deleted == false(),
        contact.c.mql_at.isnot(None),
        # NOT IN, not a correlated NOT EXISTS: lead.converted_contact_id has no index.
        contact.c.id.not_in(
            select(converted.c.converted_contact_id).where(
                converted.c.converted_contact_id.isnot(None),
                converted.c.mql_at.isnot(None),
                converted.c.is_deleted == false(),
            )
        ),
    )
    return select(union_all(leads, contacts).subquery("lifecycle_rows"))


# --- accounts and customers ------------------------------------------------------------------------


def first_wins() -> FromClause:
    """Each account's first won deal date (and an owner to fall back on when the account has none)."""
    o = OPPORTUNITY
    return (
        select(
            o.c.account_id,
            func.min(o.c.close_date).label("first_close"),
            func.min(o.c.owner_rep_id).label("deal_owner"),
        )
        .where(o.c.is_won == literal(True), o.c.is_deleted == false(), o.c.account_id.isnot(None))
        .group_by(o.c.account_id)
        .subquery("first_wins")
    )


def _first_wins(request: SourceRequest) -> Select:
    wins = first_wins()
    account = ACCOUNT
    dimension = account_dimension(account, request.dimension, "first_wins")
    columns = {"close_date": wins.c.first_close}
    return (
        select(
            *_shape(func.coalesce(account.c.owner_rep_id, wins.c.deal_owner), no_id(), dimension),
            *_pick(request, columns),
        )
        .select_from(wins.join(account, account.c.id == wins.c.account_id))
        .where(account.c.is_deleted == false())
    )


def _account_wins(request: SourceRequest) -> Select:
    """One row per account with a won deal in the period; ``is_repeat`` when it had won one before."""
    assert request.windows is not None
    w, o, account = request.windows, OPPORTUNITY, ACCOUNT
    wins = first_wins()
    dimension = account_dimension(account, request.dimension, "account_wins")
    owner = func.coalesce(func.min(account.c.owner_rep_id), func.min(o.c.owner_rep_id))
    is_repeat = case((func.min(wins.c.first_close) < w.c.start_date, literal(1)), else_=literal(0))
    columns = {"is_repeat": is_repeat, "accounts": literal(1)}
    return (
        select(w.c.period_start, *_shape(owner, no_id(), dimension), *_pick(request, columns))
        .select_from(
            w.join(o, and_(o.c.close_date >= w.c.start_date, o.c.close_date < w.c.end_date))
            .join(account, account.c.id == o.c.account_id)
            .join(wins, wins.c.account_id == o.c.account_id)
        )
        .where(o.c.is_won == literal(True), o.c.is_deleted == false(), account.c.is_deleted == false())
        .group_by(w.c.period_start, w.c.start_date, o.c.account_id, *_grouping(request, dimension))
    )


def contract_active_on(contract: FromClause, day: ColumnElement[Any]) -> ColumnElement[bool]:
    """Active at the first instant of local ``day``: started by then, its last day not before ``day``,
    not cancelled on an earlier day (a date covers its whole local day)."""
    c = contract.c
    return and_(
        c.start_date <= day,
        or_(c.end_date.is_(None), c.end_date >= day),
        or_(c.cancelled_date.is_(None), c.cancelled_date >= day),
    )


def _counted_contract(contract: FromClause) -> ColumnElement[bool]:
    status = func.lower(func.coalesce(contract.c.status, ""))
    return and_(contract.c.is_deleted == false(), status != "draft")


def _contracts(request: SourceRequest) -> Select:
    """Contracts active at the period's start or end (``AsOf``)."""
    assert request.windows is not None
    w, contract = request.windows, CONTRACT
    account = ACCOUNT.alias("contract_account")
    day = w.c.start_date if request.instant == "start" else w.c.end_date
    dimension = account_dimension(account, request.dimension, "contracts")
    columns = {"monthly_value": contract.c.monthly_value_home}
    owner = func.coalesce(account.c.owner_rep_id, contract.c.owner_rep_id)
    return (
        select(w.c.period_start, *_shape(owner, no_id(), dimension), *_pick(request, columns))
        .select_from(
            w.join(contract, contract_active_on(contract, day))
            .outerjoin(account, account.c.id == contract.c.account_id)
        )
        .where(_counted_contract(contract))
    )


def _customers(request: SourceRequest) -> Select:
    """One row per account that was a customer (had an active contract) at the period's start, at its
    end, or twelve months before its end; with 0/1 flags for each and for the losses between them."""
    assert request.windows is not None
    w, contract = request.windows, CONTRACT
    account = ACCOUNT.alias("customer_account")
    year_before = add_months(w.c.end_date, literal(-12))
    flags = {
        "at_start": contract_active_on(contract, w.c.start_date),
        "at_end": contract_active_on(contract, w.c.end_date),
        "year_before_end": contract_active_on(contract, year_before),
    }
    was = {name: func.max(case((condition, literal(1)), else_=literal(0))) for name, condition in flags.items()}

    def lost(before: str) -> ColumnElement[int]:
        return case((and_(was[before] == 1, was["at_end"] == 0), literal(1)), else_=literal(0))

    columns = {**was, "lost": lost("at_start"), "lost_in_year": lost("year_before_end")}
    dimension = account_dimension(account, request.dimension, "customers")
    owner = func.coalesce(func.min(account.c.owner_rep_id), func.min(contract.c.owner_rep_id))
    return (
        select(w.c.period_start, *_shape(owner, no_id(), dimension), *_pick(request, columns))
        .select_from(w.join(contract, or_(*flags.values())).outerjoin(account, account.c.id == contract.c.account_id))
        .where(_counted_contract(contract), contract.c.account_id.isnot(None))
        .group_by(w.c.period_start, w.c.start_date, w.c.end_date, contract.c.account_id, *_grouping(request, dimension))
    )


# --- pipeline --------------------------------------------------------------------------------------


def open_at(opportunity: FromClause, instant: ColumnElement[Any]) -> ColumnElement[bool]:
    """Created before ``instant`` and not closed at it (a deal closed exactly then is closed)."""
    o = opportunity.c
    still_open = or_(o.closed_at > instant, and_(o.closed_at.is_(None), o.is_closed == false()))
    # Most deals were created before any recent instant: SQLite reads them in one pass rather than
    # through ix_opportunity_created, a row lookup each (4x slower for a snapshot at 100k deals).
    return and_(sequential(o.created_at) < instant, still_open, o.is_deleted == false())


@dataclass(frozen=True)
class PipelineState:
    """One deal's state at an instant: columns of a select, rebuilt from stage history or snapshotted."""

    opportunity_id: ColumnElement[Any]
    owner_rep_id: ColumnElement[Any]
    stage_id: ColumnElement[Any]
    amount: ColumnElement[Any]
    probability: ColumnElement[Any]
    close_date: ColumnElement[Any]


def rebuilt_pipeline(
    anchor: FromClause | None, instant: ColumnElement[Any]
) -> tuple[FromClause, PipelineState, ColumnElement[bool]]:
    """Deals open at ``instant`` (a column of ``anchor``, e.g. each window's end, or a literal), each
    with the stage, amount, probability and close date of its latest stage-history entry at or before
    the instant (the live values where the history says nothing).  Returns the FROM, the state columns
    and the WHERE condition."""
    o = OPPORTUNITY
    history = STAGE_HISTORY.alias("state_history")
    entry_stage = STAGE.alias("state_stage")
    latest = STAGE_HISTORY.alias("latest_history")
    correlated = [o] if anchor is None else [o, anchor]
    latest_id = (
        select(latest.c.id)
        .where(latest.c.opportunity_id == o.c.id, latest.c.entered_at <= instant)
        .order_by(latest.c.entered_at.desc(), latest.c.id.desc())
        .limit(1)
        .correlate(*correlated)
        .scalar_subquery()
    )
    base: FromClause = o if anchor is None else anchor.join(o, open_at(o, instant))
    frm = base.outerjoin(history, history.c.id == latest_id).outerjoin(
        entry_stage, entry_stage.c.id == history.c.stage_id
    )
    same_stage_as_now = history.c.stage_id == o.c.stage_id
    state = PipelineState(
        opportunity_id=o.c.id,
        owner_rep_id=o.c.owner_rep_id,
        stage_id=func.coalesce(history.c.stage_id, o.c.stage_id),
        amount=func.coalesce(history.c.amount_home, o.c.amount_home),
        probability=func.coalesce(
            history.c.probability,
            case((same_stage_as_now, o.c.probability), else_=entry_stage.c.probability),
            o.c.probability,
        ),
        close_date=func.coalesce(history.c.close_date, o.c.close_date),
    )
    where = open_at(o, instant) if anchor is None else true()
    return frm, state, where


def _pipeline_columns(
    w: FromClause, state: PipelineState, stage: FromClause, o: FromClause
) -> dict[str, ColumnElement[Any]]:
    def close_within(start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[bool]:
        return and_(state.close_date >= start, state.close_date < end)

    category = func.lower(func.coalesce(stage.c.forecast_category, o.c.forecast_category, ""))
    return {
        "amount": state.amount,
        "probability": state.probability,
        "weighted": state.amount * state.probability,
        "close_date": state.close_date,
        "close_in_period": close_within(w.c.start_date, w.c.end_date),
        "close_in_next_period": close_within(w.c.next_start_date, w.c.next_end_date),
        "is_commit": category == "commit",
        "stage_id": state.stage_id,
    }


def _pipeline(request: SourceRequest) -> Select:
    """Open pipeline at the period's start or end: the agent's snapshot where it has one, else rebuilt
    from stage history (for a future instant, that is the live state)."""
    assert request.windows is not None
    w = request.windows
    instant = w.c.start_utc if request.instant == "start" else w.c.end_utc
    o = OPPORTUNITY

    def select_state(frm: FromClause, state: PipelineState, *where: ColumnElement[bool]) -> Select:
        stage = STAGE.alias()
        frm_with_stage = frm.outerjoin(stage, stage.c.id == state.stage_id)
        frm_d, dimension = opportunity_dimension(frm_with_stage, o, request.dimension, "pipeline")
        columns = _pipeline_columns(w, state, stage, o)
        return (
            select(w.c.period_start, *_shape(state.owner_rep_id, no_id(), dimension), *_pick(request, columns))
            .select_from(frm_d)
            .where(*where)
        )

    snapshot = SNAPSHOT.alias("snapshot")
    snapshot_state = PipelineState(
        snapshot.c.opportunity_id,
        snapshot.c.owner_rep_id,
        snapshot.c.stage_id,
        snapshot.c.amount_home,
        snapshot.c.probability,
        snapshot.c.close_date,
    )
    from_snapshot = select_state(
        w.join(snapshot, snapshot.c.taken_for == instant).join(o, o.c.id == snapshot.c.opportunity_id),
        snapshot_state,
    )
    any_snapshot = SNAPSHOT.alias("any_snapshot")
    rebuilt_from, rebuilt_state, rebuilt_where = rebuilt_pipeline(w, instant)
    rebuilt = select_state(
        rebuilt_from,
        rebuilt_state,
        rebuilt_where,
        ~exists(select(any_snapshot.c.id).where(any_snapshot.c.taken_for == instant)),
    )
    return select(union_all(from_snapshot, rebuilt).subquery("pipeline_rows"))


# --- reps and costs --------------------------------------------------------------------------------


def _reps(request: SourceRequest) -> Select:
    if request.dimension is not None:
        raise _unsupported("reps", request.dimension)
    columns = {"active": REP.c.active}
    return select(*_shape(REP.c.id, no_id(), NO_DIMENSION), *_pick(request, columns))


def _earlier(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((a < b, a), else_=b)


def _later(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((a > b, a), else_=b)


def overlap_share(
    start: ColumnElement[Any], end: ColumnElement[Any], window_start: ColumnElement[Any], window_end: ColumnElement[Any]
) -> ColumnElement[Any]:
    """The share of the date span ``[start, end)`` inside ``[window_start, window_end)``: an amount
    booked to a quarter counts a third in each month, and monthly amounts add up in a quarter."""
    inside = days_between(_earlier(end, window_end), _later(start, window_start))
    return inside / days_between(end, start)


def overlaps(
    start: ColumnElement[Any], end: ColumnElement[Any], window_start: ColumnElement[Any], window_end: ColumnElement[Any]
) -> ColumnElement[bool]:
    return and_(start < window_end, end > window_start, end > start)


def _costs(request: SourceRequest) -> Select:
    assert request.windows is not None
    if request.dimension is not None:
        raise _unsupported("costs", request.dimension)
    w, cost = request.windows, COST
    span = (cost.c.period_start, cost.c.period_end, w.c.start_date, w.c.end_date)
    columns = {"amount": cost.c.amount_home * overlap_share(*span), "kind": cost.c.kind}
    return (
        select(w.c.period_start, *_shape(no_id(), cost.c.team_id, NO_DIMENSION), *_pick(request, columns))
        .select_from(w.join(cost, overlaps(*span)))
    )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            "opportunities",
            "event",
            "Deals. is_won/is_lost/is_closed flags, amount (home currency), cycle_days from created to close "
            "date, is_qualified (reached an open stage after its pipeline's first, or won).",
            ("amount", "is_won", "is_closed", "is_lost", "deal_type", "is_new_business", "cycle_days", "is_qualified"),
            OPPORTUNITY_DIMENSIONS,
            _opportunities,
            (("close_date", "date"), ("created_at", "instant"), ("closed_at", "instant")),
        ),
        Source(
            "line_items",
            "event",
            "Line items of won deals: net (after all discounts), list_total (list price × quantity), discount, "
            "and, where [unit_costs] prices the product, is_costed, cost and margin.",
            ("net", "list_total", "discount", "quantity", "is_costed", "cost", "margin"),
            (*OPPORTUNITY_DIMENSIONS, "product"),
            _line_items,
            (("close_date", "date"),),
        ),
        Source(
            "activities",
            "event",
            "Calls, emails, meetings, demos, proposals. is_call/is_email: outbound and completed; "
            "is_meeting_held/is_demo_held: completed or scheduled and started by now; is_meeting_booked: "
            "meetings and demos, by created_at; is_proposal_sent: completed proposals.",
            (
                "kind",
                "status",
                "direction",
                "is_call",
                "is_email",
                "is_call_or_email",
                "is_meeting_held",
                "is_demo_held",
                "is_proposal_sent",
                "is_meeting_booked",
            ),
            ("crm", "region"),
            _activities,
            (("occurred_at", "instant"), ("created_at", "instant")),
        ),
        Source(
            "leads",
            "event",
            "Leads. is_converted_to_opportunity; response_minutes from creation to the owner's first response "
            "(outbound completed call or email, or a meeting booked; on the lead or what it was converted into).",
            ("is_converted_to_opportunity", "response_minutes", "has_response", "answered_5min"),
            ("lead_source", "crm"),
            _leads,
            (("created_at", "instant"), ("converted_at", "instant"), ("mql_at", "instant")),
        ),
        Source(
            "lifecycle",
            "event",
            "Leads and contacts that became MQL (mql_at); reached_sql when they have an SQL date.",
            ("reached_sql",),
            ("lead_source", "crm"),
            _lifecycle,
            (("mql_at", "instant"),),
        ),
        Source(
            "first_wins",
            "event",
            "One row per account at the close date of its first won deal; owner: the account's.",
            (),
            ("region", "crm"),
            _first_wins,
            (("close_date", "date"),),
        ),
        Source(
            "account_wins",
            "period",
            "One row per account with a won deal in the period (accounts = 1); is_repeat when it won one before.",
            ("accounts", "is_repeat"),
            ("region", "crm"),
            _account_wins,
        ),
        Source(
            "contracts",
            "state",
            "Contracts active at the instant, with monthly_value; owner: the account's, else the contract's.",
            ("monthly_value",),
            ("region", "crm"),
            _contracts,
        ),
        Source(
            "customers",
            "period",
            "One row per account with a contract active at the period's start, end or a year before its end: "
            "at_start, at_end, year_before_end, lost (at start, not at end), lost_in_year.",
            ("at_start", "at_end", "year_before_end", "lost", "lost_in_year"),
            ("region", "crm"),
            _customers,
        ),
        Source(
            "pipeline",
            "state",
            "Deals open at the instant with the stage, amount, probability and close date they had then: "
            "amount, probability, weighted, close_in_period, close_in_next_period, is_commit, stage_id.",
            (
                "amount",
                "probability",
                "weighted",
                "close_date",
                "close_in_period",
                "close_in_next_period",
                "is_commit",
                "stage_id",
            ),
            OPPORTUNITY_DIMENSIONS,
            _pipeline,
        ),
        Source("reps", "static", "Reps (one row each): active.", ("active",), (), _reps),
        Source(
            "costs",
            "period",
            "Sales and marketing costs (config), spread over the periods they are booked to: amount, kind. "
            "Owned by their team, or by the org when they name none.",
            ("amount", "kind"),
            (),
            _costs,
        ),
    )
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise SourceError(f"no source {name!r}; the sources are {', '.join(sorted(SOURCES))}") from None


