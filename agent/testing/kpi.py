"""Test helpers for KPI plugins: a dataset builder that writes rows straight into the cache, a config
and plugin host for a run, and :func:`assert_kpi` to check a stored value with its numerator and
denominator.  The project's own KPI tests use exactly these.

Times in the builder are local to the dataset's timezone unless they carry a ``tzinfo``: write
``"2024-01-31 20:00"`` for 8 pm in the org's timezone; dates are ``"2024-01-31"``.  Example::

    data = KpiDataset(db, timezone="Asia/Jakarta")
    data.rep("ana@example.com", team="north")
    data.deal(owner="ana@example.com", amount=100, close="2024-01-31", status="won")
    run_kpis(db, kpi_config(timezone="Asia/Jakarta"), at="2024-02-15")
    assert_kpi(db, "revenue", "2024-01", "rep:ana@example.com", 100)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select

from agent.config import AgentConfig
from agent.db import Database
from agent.kpi.engine import RunResult, compute_kpis
from agent.kpi.periods import local_midnight_utc, to_utc
from agent.models import (
    Account,
    Activity,
    Contact,
    Contract,
    Cost,
    KpiValue,
    Lead,
    LineItem,
    Opportunity,
    Pipeline,
    Product,
    Quota,
    Rep,
    Stage,
    StageHistory,
    Team,
)
from agent.plugins import BUILTIN_DISTRIBUTION, PluginHost, create_plugin_manager, entry_points

BUILTIN_KPI_PLUGINS = ("revenue", "conversion", "activity", "customer")
DEFAULT_STAGES: tuple[tuple[str, float, bool, bool, str], ...] = (
    ("Prospecting", 0.1, False, False, "Pipeline"),
    ("Qualification", 0.2, False, False, "Pipeline"),
    ("Proposal", 0.5, False, False, "Best Case"),
    ("Negotiation", 0.8, False, False, "Commit"),
    ("Closed Won", 1.0, True, True, "Closed"),
    ("Closed Lost", 0.0, True, False, "Omitted"),
)
_MISSING: Any = object()

DateLike = date | str
InstantLike = datetime | str


def as_date(value: DateLike) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def kpi_config(timezone: str = "UTC", *, fiscal_year_start_month: int = 1, **sections: Any) -> AgentConfig:
    """A config for a KPI test: ``kpi_config("Asia/Jakarta", kpis={"history_periods": 3})``."""
    raw: dict[str, Any] = {"agent": {"timezone": timezone, "fiscal_year_start_month": fiscal_year_start_month}}
    raw.update(sections)
    return AgentConfig.model_validate(raw)


def kpi_host(*plugins: tuple[str, object], builtins: bool = True) -> PluginHost:
    """A plugin host with the built-in KPI plugins (from their entry points) and ``plugins``."""
    found: list[tuple[str, object]] = []
    if builtins:
        for entry_point in entry_points():
            dist = entry_point.dist.metadata["Name"] if entry_point.dist else None
            if dist == BUILTIN_DISTRIBUTION and entry_point.name in BUILTIN_KPI_PLUGINS:
                found.append((entry_point.name, entry_point.load()))
    return create_plugin_manager(load_entry_points=False, plugins=[*found, *plugins])


def run_kpis(
    db: Database,
    config: AgentConfig | None = None,
    *,
    at: DateLike | datetime,
    host: PluginHost | None = None,
    grain: str | None = None,
    dimensions: Sequence[str] = (),
    recompute_all: bool = False,
) -> RunResult:
    """Compute the KPIs as the agent would at ``at`` (a local date means the end of that day)."""
    moment = at if isinstance(at, datetime) else as_date(at)
    return compute_kpis(
        db,
        config or kpi_config(),
        host or kpi_host(),
        grain=grain,
        at=moment,
        dimensions=dimensions,
        recompute_all=recompute_all,
    )


class KpiDataset:
    """Writes cache rows for a test, with the defaults a CRM sync would fill in."""

    def __init__(self, db: Database, *, timezone: str = "UTC", connection: str = "crm") -> None:
        self.db, self.timezone, self.connection = db, timezone, connection
        self._ids = itertools.count(1)
        self._pending: dict[Table, list[dict[str, Any]]] | None = None
        self.stages: dict[str, int] = {}
        self._stage_info: dict[int, tuple[float, bool, bool]] = {}
        self.pipeline_id = self.pipeline("Sales")

    # plumbing

    def _insert(self, table: Table, **values: Any) -> int:
        if self._pending is not None:
            self._pending.setdefault(table, []).append(values)
            return 0
        with self.db.write_connection() as connection:
            return int(connection.execute(insert(table).values(**values)).inserted_primary_key[0])

    @contextmanager
    def bulk(self) -> Iterator[KpiDataset]:
        """Buffer the rows written inside and insert them in one transaction (methods return 0 as id):
        for worked examples with thousands of leads."""
        self._pending = {}
        try:
            yield self
            with self.db.write_connection() as connection:
                for table, rows in self._pending.items():
                    for keys in {tuple(sorted(row)) for row in rows}:
                        connection.execute(insert(table), [row for row in rows if tuple(sorted(row)) == keys])
        finally:
            self._pending = None

    def _crm(self, prefix: str) -> dict[str, Any]:
        return {"connection": self.connection, "source_id": f"{prefix}-{next(self._ids)}"}

    def instant(self, value: InstantLike | None) -> datetime | None:
        """An aware UTC instant from a local time string or datetime (naive means local)."""
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return to_utc(moment, self.timezone)

    def end_of_day(self, day: DateLike) -> datetime:
        """When a date-only close date closes a deal: the next local midnight, in UTC."""
        return local_midnight_utc(as_date(day) + timedelta(days=1), self.timezone)

    def _rep_id(self, email: str | None) -> int | None:
        if email is None:
            return None
        with self.db.engine.connect() as connection:
            found = connection.execute(
                select(Rep.__table__.c.id).where(func.lower(Rep.__table__.c.email) == email.lower())
            ).scalar()
        return int(found) if found is not None else self.rep(email)

    def _team_id(self, key: str | None) -> int | None:
        if key is None:
            return None
        table = Team.__table__
        with self.db.engine.connect() as connection:
            found = connection.execute(select(table.c.id).where(table.c.source_id == key)).scalar()
        return int(found) if found is not None else self.team(key)

    # reference data

    def team(self, key: str, name: str | None = None, *, region: str | None = None) -> int:
        return self._insert(Team.__table__, connection="config", source_id=key, name=name or key, region=region)

    def rep(self, email: str, *, team: str | None = None, active: bool = True, name: str | None = None) -> int:
        return self._insert(
            Rep.__table__,
            email=email.lower(),
            name=name or email.split("@")[0],
            active=active,
            team_id=self._team_id(team),
        )

    def move_rep(self, email: str, team: str | None) -> None:
        """The rep now belongs to ``team`` (membership is the current one)."""
        from sqlalchemy import update

        with self.db.write_connection() as connection:
            connection.execute(
                update(Rep.__table__).where(Rep.__table__.c.email == email.lower()).values(team_id=self._team_id(team))
            )

    def pipeline(self, name: str, stages: Iterable[tuple[str, float, bool, bool, str]] = DEFAULT_STAGES) -> int:
        pipeline_id = self._insert(Pipeline.__table__, **self._crm("pipeline"), name=name)
        for order, (stage, probability, closed, won, category) in enumerate(stages, start=1):
            stage_id = self._insert(
                Stage.__table__,
                **self._crm("stage"),
                pipeline_id=pipeline_id,
                name=stage,
                sort_order=order,
                probability=probability,
                is_closed=closed,
                is_won=won,
                forecast_category=category,
            )
            self.stages.setdefault(stage, stage_id)
            self._stage_info[stage_id] = (probability, closed, won)
        return pipeline_id

    def account(self, name: str | None = None, *, region: str | None = None, owner: str | None = None) -> int:
        return self._insert(
            Account.__table__, **self._crm("account"), name=name, region=region, owner_rep_id=self._rep_id(owner)
        )

    def product(self, name: str, *, sku: str | None = None) -> int:
        return self._insert(Product.__table__, **self._crm("product"), name=name, sku=sku)

    def cost(self, kind: str, start: DateLike, end: DateLike, amount: float, *, team: str | None = None) -> int:
        """A cost booked to ``[start, end)``."""
        return self._insert(
            Cost.__table__,
            connection="config",
            source_id=f"cost-{next(self._ids)}",
            kind=kind,
            period_start=as_date(start),
            period_end=as_date(end),
            team_id=self._team_id(team),
            amount_home=amount,
        )

    def quota(
        self,
        amount: float,
        start: DateLike,
        end: DateLike,
        *,
        rep: str | None = None,
        team: str | None = None,
        kpi: str = "revenue",
    ) -> int:
        """A quota for ``[start, end)``, of a rep (email) or a team (key)."""
        kind, scope_id = ("rep", self._rep_id(rep)) if rep else ("team", self._team_id(team))
        return self._insert(
            Quota.__table__,
            kpi=kpi,
            scope_kind=kind,
            scope_id=str(scope_id),
            period_start=as_date(start),
            period_end=as_date(end),
            amount=amount,
        )

    # CRM records

    def deal(
        self,
        *,
        owner: str | None = None,
        amount: float = 0.0,
        created: InstantLike = "2024-01-01 09:00",
        close: DateLike | None = None,
        status: str = "open",
        stage: str | None = None,
        amount_home: float | None = None,
        currency: str | None = None,
        probability: float | None = None,
        deal_type: str = "new_business",
        lead_source: str | None = None,
        account: int | None = None,
        closed_at: InstantLike | None = None,
        pipeline: int | None = None,
        forecast_category: str | None = None,
        deleted: bool = False,
    ) -> int:
        """A deal: ``status`` open, won or lost.  ``closed_at`` defaults to the end of the close date's
        local day; ``probability`` to the stage's."""
        stage_name = stage or {"won": "Closed Won", "lost": "Closed Lost"}.get(status, "Prospecting")
        stage_id = self.stages[stage_name]
        default_probability, _, _ = self._stage_info[stage_id]
        closed = status in ("won", "lost")
        closing = self.instant(closed_at) if closed_at else (self.end_of_day(close) if closed and close else None)
        return self._insert(
            Opportunity.__table__,
            **self._crm("deal"),
            owner_rep_id=self._rep_id(owner),
            pipeline_id=pipeline or self.pipeline_id,
            stage_id=stage_id,
            amount=amount,
            currency=currency,
            amount_home=amount if amount_home is None else amount_home,
            probability=default_probability if probability is None else probability,
            deal_type=deal_type,
            lead_source=lead_source,
            account_id=account,
            created_at=self.instant(created),
            close_date=as_date(close) if close else None,
            closed_at=closing,
            is_closed=closed,
            is_won=status == "won",
            forecast_category=forecast_category,
            is_deleted=deleted,
        )

    def stage_change(
        self,
        deal: int,
        stage: str,
        at: InstantLike,
        *,
        amount: float | None = None,
        probability: float | None = None,
        close: DateLike | None = None,
    ) -> int:
        """The deal entered ``stage`` at ``at`` (stage history)."""
        return self._insert(
            StageHistory.__table__,
            **self._crm("history"),
            opportunity_id=deal,
            stage_id=self.stages[stage],
            entered_at=self.instant(at),
            amount_home=amount,
            probability=probability,
            close_date=as_date(close) if close else None,
        )

    def activity(
        self,
        kind: str,
        *,
        owner: str | None = None,
        at: InstantLike | None = None,
        created: InstantLike | None = None,
        status: str = "completed",
        direction: str = "outbound",
        lead: int | None = None,
        contact: int | None = None,
        deal: int | None = None,
        account: int | None = None,
    ) -> int:
        """A call, email, meeting, demo or proposal at ``at`` (created then too, unless ``created``)."""
        return self._insert(
            Activity.__table__,
            **self._crm("activity"),
            kind=kind,
            status=status,
            direction=direction,
            owner_rep_id=self._rep_id(owner),
            occurred_at=self.instant(at),
            created_at=self.instant(created or at),
            lead_id=lead,
            contact_id=contact,
            opportunity_id=deal,
            account_id=account,
        )

    def lead(
        self,
        *,
        owner: str | None = None,
        created: InstantLike,
        lead_source: str | None = None,
        converted_at: InstantLike | None = None,
        converted_deal: int | None = None,
        converted_contact: int | None = None,
        mql: InstantLike | None = None,
        sql: InstantLike | None = None,
    ) -> int:
        return self._insert(
            Lead.__table__,
            **self._crm("lead"),
            owner_rep_id=self._rep_id(owner),
            created_at=self.instant(created),
            lead_source=lead_source,
            converted_at=self.instant(converted_at),
            converted_opportunity_id=converted_deal,
            converted_contact_id=converted_contact,
            mql_at=self.instant(mql),
            sql_at=self.instant(sql),
        )

    def contact(
        self,
        *,
        owner: str | None = None,
        account: int | None = None,
        mql: InstantLike | None = None,
        sql: InstantLike | None = None,
    ) -> int:
        return self._insert(
            Contact.__table__,
            **self._crm("contact"),
            owner_rep_id=self._rep_id(owner),
            account_id=account,
            mql_at=self.instant(mql),
            sql_at=self.instant(sql),
        )

    def contract(
        self,
        account: int,
        *,
        start: DateLike,
        end: DateLike | None = None,
        monthly: float = 0.0,
        cancelled: DateLike | None = None,
        owner: str | None = None,
        status: str = "Activated",
    ) -> int:
        """A contract running from ``start`` 00:00 to ``end`` + 1 day 00:00 (its last day is ``end``)."""
        return self._insert(
            Contract.__table__,
            **self._crm("contract"),
            account_id=account,
            owner_rep_id=self._rep_id(owner),
            start_date=as_date(start),
            end_date=as_date(end) if end else None,
            cancelled_date=as_date(cancelled) if cancelled else None,
            status=status,
            monthly_value_home=monthly,
        )

    def line_item(
        self,
        deal: int,
        *,
        product: int | None = None,
        product_name: str | None = None,
        quantity: float = 1.0,
        list_price: float,
        net_total: float,
        home_rate: float = 1.0,
    ) -> int:
        """A line: ``list_price`` per unit and ``net_total`` after all discounts, in the deal's currency;
        ``home_rate`` converts both to the home currency."""
        return self._insert(
            LineItem.__table__,
            **self._crm("line"),
            opportunity_id=deal,
            product_id=product,
            product_name=product_name,
            quantity=quantity,
            list_price=list_price,
            net_total=net_total,
            list_total_home=list_price * quantity * home_rate,
            net_total_home=net_total * home_rate,
        )


# --- assertions ------------------------------------------------------------------------------------


def period_start_of(period: DateLike) -> date:
    """``"2024-01"`` or ``"2024-01-01"`` or a date: the period's first day."""
    if isinstance(period, str) and len(period) == 7:
        return date.fromisoformat(period + "-01")
    return as_date(period)


def _scope(db: Database, scope: str) -> tuple[str, str]:
    if scope in ("org", "unassigned"):
        return scope, ""
    kind, _, name = scope.partition(":")
    with db.engine.connect() as connection:
        if kind == "rep":
            table = Rep.__table__
            found = connection.execute(select(table.c.id).where(func.lower(table.c.email) == name.lower())).scalar()
        elif kind == "team":
            table = Team.__table__
            found = connection.execute(select(table.c.id).where(table.c.source_id == name)).scalar()
        else:
            raise ValueError(f"scope {scope!r}: use 'org', 'unassigned', 'team:<key>' or 'rep:<email>'")
    if found is None:
        raise AssertionError(f"scope {scope!r} is not in the cache")
    return kind, str(found)


def kpi_rows(db: Database, key: str, period: DateLike, *, grain: str = "month") -> list[dict[str, Any]]:
    """Every stored row of a KPI for a period (for messages and ad-hoc checks)."""
    table = KpiValue.__table__
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(table).where(
                table.c.kpi == key, table.c.grain == grain, table.c.period_start == period_start_of(period)
            )
        ).mappings()
        return [dict(row) for row in rows]


def _close(actual: float | None, expected: float | None) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


def assert_kpi(
    db: Database,
    key: str,
    period: DateLike,
    scope: str,
    expected: float | None,
    *,
    numerator: float | None = _MISSING,
    denominator: float | None = _MISSING,
    grain: str = "month",
    dimension: str = "",
    dimension_value: str = "",
) -> None:
    """Assert the stored value of ``key`` for ``period`` and ``scope`` ('org', 'unassigned',
    'team:<key>', 'rep:<email>'), and its numerator and denominator when given (None: no value)."""
    kind, scope_id = _scope(db, scope)
    rows = kpi_rows(db, key, period, grain=grain)
    match = [
        row
        for row in rows
        if (row["scope_kind"], row["scope_id"], row["dimension"], row["dimension_value"])
        == (kind, scope_id, dimension, dimension_value)
    ]
    where = f"{key} {period_start_of(period)} {scope}" + (f" {dimension}={dimension_value}" if dimension else "")
    if not match:
        stored = sorted(f"{r['scope_kind']}:{r['scope_id']} {r['dimension']}={r['dimension_value']}" for r in rows)
        raise AssertionError(f"no value stored for {where}; stored rows: {stored or 'none'}")
    row = match[0]
    if row["status"] != "ok":
        raise AssertionError(f"{where} is {row['status']}: {row['error']}")
    checks: Mapping[str, float | None] = {"value": expected}
    if numerator is not _MISSING:
        checks = {**checks, "numerator": numerator}
    if denominator is not _MISSING:
        checks = {**checks, "denominator": denominator}
    wrong = {name: (row[name], want) for name, want in checks.items() if not _close(row[name], want)}
    if wrong:
        detail = ", ".join(f"{name} is {got!r}, expected {want!r}" for name, (got, want) in wrong.items())
        raise AssertionError(f"{where}: {detail}")


__all__ = [
    "KpiDataset",
    "assert_kpi",
    "kpi_config",
    "kpi_host",
    "kpi_rows",
    "period_start_of",
    "run_kpis",
]
