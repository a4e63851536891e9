"""The engine's contract: isolation of failures, duplicate keys, the recompute window, snapshots."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import literal_column, select, text, update

from agent.db import Database
from agent.hookspecs import hookimpl
from agent.kpi import Aggregate, Condition, Custom, Direction, KpiDefinition, Unit, collect_kpis, eq
from agent.models import KpiRun, Opportunity
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, kpi_host, kpi_rows, run_kpis

JAN, FEB = "2024-01", "2024-02"


def _definition(key: str, compute: object) -> KpiDefinition:
    return KpiDefinition(
        key=key,
        title=key,
        unit=Unit.COUNT,
        direction=Direction.UP,
        description="test",
        compute=compute,  # type: ignore[arg-type]
    )


class _Plugin:
    def __init__(self, *definitions: KpiDefinition, fail: bool = False) -> None:
        self.definitions, self.fail = definitions, fail

    @hookimpl
    def register_kpis(self, register: Callable[[KpiDefinition], None]) -> None:
        if self.fail:
            raise RuntimeError("boom")
        for definition in self.definitions:
            register(definition)


def _broken_select(ctx: object) -> object:
    missing = literal_column("missing.no_such_column")
    return select(missing.label("period_start"), missing.label("rep_id"), missing.label("value")).select_from(
        text("no_such_table AS missing")
    )


def test_a_broken_kpi_fails_alone_and_is_recorded(db: Database) -> None:
    data = KpiDataset(db)
    data.rep("ana@example.com")
    data.deal(owner="ana@example.com", amount=100, close="2024-01-10", status="won")
    broken = _Plugin(
        # fails while its batch (opportunities by close date, with revenue's) is built: the batch is retried
        _definition(
            "bad_filter", Aggregate("opportunities", "amount", (Condition("amount", "in", 5),), at="close_date")
        ),
        _definition("bad_sql", Custom("broken", _broken_select)),
        _definition("good_count", Aggregate("opportunities", None, (eq("is_won", True),), at="close_date")),
    )
    result = run_kpis(db, kpi_config(kpis={"history_periods": 2}), at="2024-02-10", host=kpi_host(("broken", broken)))
    assert set(result.failed) == {"bad_filter", "bad_sql"}
    assert result.status == "partial"
    assert_kpi(db, "revenue", JAN, "org", 100)
    assert_kpi(db, "good_count", JAN, "rep:ana@example.com", 1)
    failed = kpi_rows(db, "bad_sql", JAN)
    assert [(row["scope_kind"], row["status"]) for row in failed] == [("org", "failed")]
    assert "no_such" in failed[0]["error"]
    with db.engine.connect() as connection:
        run = connection.execute(
            select(KpiRun.__table__).where(KpiRun.__table__.c.id == result.run_id)
        ).mappings().one()
    assert run["status"] == "partial" and set(json.loads(run["failed_kpis"])) == {"bad_filter", "bad_sql"}


def test_duplicate_keys_disable_both_unless_config_names_an_owner() -> None:
    mine = _Plugin(_definition("revenue", Aggregate("opportunities", "amount", (eq("is_won", True),), at="close_date")))
    host = kpi_host(("mine", mine))
    registry = collect_kpis(host, kpi_config())
    assert "revenue" not in registry.definitions
    [error] = [e for e in registry.errors if e.key == "revenue"]
    assert error.kind == "duplicate" and set(error.plugins) == {"revenue", "mine"}
    assert "kpi_owner" in error.message and "'mine'" in error.message
    owned = collect_kpis(host, kpi_config(plugins={"kpi_owner": {"revenue": "mine"}}))
    assert owned.owners()["revenue"] == "mine"
    assert "avg_deal_size" in owned.definitions


def test_invalid_definitions_and_failing_plugins_are_reported_by_name() -> None:
    host = kpi_host(
        ("typo", _Plugin(_definition("typo_kpi", Aggregate("opportunity", "amount", at="close_date")))),
        ("crashing", _Plugin(fail=True)),
        builtins=False,
    )
    registry = collect_kpis(host, None)
    messages = {error.kind: error.message for error in registry.errors}
    assert "no source 'opportunity'" in messages["invalid"] and "'typo'" in messages["invalid"]
    assert "RuntimeError: boom" in messages["register_failed"]
    assert registry.definitions == {}


def test_only_recent_periods_are_recomputed_unless_asked(db: Database) -> None:
    data = KpiDataset(db)
    deal = data.deal(amount=100, close="2023-11-10", status="won")
    config = kpi_config(kpis={"history_periods": 4, "recompute_periods": 1})
    run_kpis(db, config, at="2024-02-10")
    assert_kpi(db, "revenue", "2023-11", "org", 100)
    with db.write_connection() as connection:
        connection.execute(
            update(Opportunity.__table__).where(Opportunity.__table__.c.id == deal).values(amount_home=150)
        )
    result = run_kpis(db, config, at="2024-02-11")
    assert result.periods == (datetime(2024, 1, 1).date(), datetime(2024, 2, 1).date())  # January and February only
    assert_kpi(db, "revenue", "2023-11", "org", 100)  # November stays as stored
    run_kpis(db, config, at="2024-02-11", recompute_all=True)
    assert_kpi(db, "revenue", "2023-11", "org", 150)


def test_disabled_input_still_feeds_a_derived_kpi(db: Database) -> None:
    data = KpiDataset(db)
    account = data.account("A")
    data.contract(account, start="2023-01-01", end="2024-01-10", monthly=10)
    run_kpis(db, kpi_config(kpis={"history_periods": 1, "disabled": ["churn_rate", "mrr"]}), at="2024-01-31")
    assert kpi_rows(db, "churn_rate", JAN) == []
    assert_kpi(db, "retention_rate", JAN, "org", 0, numerator=0, denominator=1)


def test_a_live_pipeline_snapshot_keeps_what_the_crm_forgets(db: Database) -> None:
    data = KpiDataset(db)
    deal = data.deal(amount=1000, created="2024-01-05 10:00", close="2024-03-01", stage="Proposal")
    config = kpi_config(kpis={"history_periods": 2})
    # Run on 1 Feb at 06:00: the snapshot of the pipeline at 1 Feb 00:00 (January's end) is taken live.
    run_kpis(db, config, at=datetime(2024, 2, 1, 6, tzinfo=UTC))
    assert_kpi(db, "pipeline_value", JAN, "org", 1000)
    # The amount changes later with no stage history entry: January's end must not move.
    with db.write_connection() as connection:
        connection.execute(
            update(Opportunity.__table__).where(Opportunity.__table__.c.id == deal).values(amount_home=5000)
        )
    run_kpis(db, config, at="2024-02-20")
    assert_kpi(db, "pipeline_value", JAN, "org", 1000)
    assert_kpi(db, "pipeline_value", FEB, "org", 5000)  # February's end is still ahead: the live state


def test_values_cover_every_team_and_active_rep_and_slices_on_request(db: Database) -> None:
    data = KpiDataset(db)
    data.team("north")
    data.rep("ana@example.com", team="north")
    data.rep("old@example.com", active=False)
    data.deal(owner="ana@example.com", amount=10, close="2024-01-10", status="won", lead_source="web")
    run_kpis(db, kpi_config(kpis={"history_periods": 1}), at="2024-01-31", dimensions=("lead_source",))
    scopes = {(row["scope_kind"], row["dimension_value"]) for row in kpi_rows(db, "calls", JAN)}
    assert scopes == {("org", ""), ("team", ""), ("rep", "")}  # the inactive rep without data has no row
    assert_kpi(db, "calls", JAN, "team:north", 0)
    assert_kpi(db, "win_rate", JAN, "rep:ana@example.com", 100, dimension="lead_source", dimension_value="web")


@pytest.mark.parametrize("grain,start", [("quarter", "2024-01-01"), ("week", "2024-01-08")])
def test_other_grains(db: Database, grain: str, start: str) -> None:
    data = KpiDataset(db)
    data.deal(amount=10, close="2024-01-10", status="won")
    data.deal(amount=20, close="2024-03-10", status="won")
    run_kpis(
        db, kpi_config(kpis={"history_periods": 1}), at="2024-01-14" if grain == "week" else "2024-03-31", grain=grain
    )
    assert_kpi(db, "revenue", start, "org", 30 if grain == "quarter" else 10, grain=grain)


def test_day_grain_buckets_many_windows_in_the_org_timezone(db: Database) -> None:
    """Ten day windows (the engine splits its period expression in halves beyond a few): each day's
    revenue is its own; calls either side of local midnight in Jakarta (UTC+7) land on their local day."""
    data = KpiDataset(db, timezone="Asia/Jakarta")
    data.rep("ana@example.com")
    for day in range(1, 11):
        data.deal(owner="ana@example.com", amount=day, close=f"2024-01-{day:02d}", status="won")
    data.activity("call", owner="ana@example.com", at=datetime(2024, 1, 4, 16, 59, 59, tzinfo=UTC))  # 4 Jan 23:59:59
    data.activity("call", owner="ana@example.com", at=datetime(2024, 1, 4, 17, 0, tzinfo=UTC))  # 5 Jan 00:00 local
    data.activity("call", owner="ana@example.com", at=datetime(2024, 1, 9, 17, 0, tzinfo=UTC))  # 10 Jan 00:00 local
    data.activity("call", owner="ana@example.com", at=datetime(2023, 12, 31, 16, 59, tzinfo=UTC))  # 31 Dec: before
    config = kpi_config("Asia/Jakarta", kpis={"history_periods": 10})
    run_kpis(db, config, at="2024-01-10", grain="day")
    for day in range(1, 11):
        assert_kpi(db, "revenue", f"2024-01-{day:02d}", "org", day, grain="day")
    expected_calls = {1: 0, 3: 0, 4: 1, 5: 1, 6: 0, 9: 0, 10: 1}
    for day, calls in expected_calls.items():
        assert_kpi(db, "calls", f"2024-01-{day:02d}", "rep:ana@example.com", calls, grain="day")


def test_a_recomputed_gap_in_history_takes_only_its_own_rows(db: Database) -> None:
    """Periods computed with a gap between them (a lost month in history and the recent ones): each
    takes only rows of its own span, and growth compares with the month before each."""
    data = KpiDataset(db)
    data.rep("ana@example.com")
    for month, amount in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320)):
        data.deal(owner="ana@example.com", amount=amount, close=f"2024-{month:02d}-15", status="won")
    data.deal(owner="ana@example.com", amount=1, close="2024-02-29", status="won")  # February's last day
    data.deal(owner="ana@example.com", amount=2, close="2024-03-01", status="won")  # March's first
    config = kpi_config(kpis={"history_periods": 6, "recompute_periods": 1})
    run_kpis(db, config, at="2024-06-20")
    with db.write_connection() as connection:
        connection.execute(text("DELETE FROM kpi_value WHERE period_start = :start"), {"start": "2024-02-01"})
    data.deal(owner="ana@example.com", amount=1000, close="2024-04-10", status="won")  # April is not recomputed
    result = run_kpis(db, config, at="2024-06-20")
    assert result.periods == tuple(datetime(2024, m, 1).date() for m in (2, 5, 6))
    assert_kpi(db, "revenue", "2024-02", "org", 21)
    assert_kpi(db, "revenue", "2024-03", "org", 42)  # stored by the first run
    assert_kpi(db, "revenue", "2024-04", "org", 80)  # not recomputed: the new April deal is not in it
    assert_kpi(db, "revenue", "2024-05", "org", 160)
    assert_kpi(db, "revenue", "2024-06", "org", 320)
    # February against January (10): +110 %; May against April, now 1080: (160 − 1080) ÷ 1080.
    assert_kpi(db, "sales_growth", "2024-02", "org", 110, numerator=11, denominator=10)
    assert_kpi(db, "sales_growth", "2024-05", "org", (160 - 1080) / 1080 * 100, numerator=-920, denominator=1080)


def test_stored_rows_carry_their_period_end_run_and_time(db: Database) -> None:
    """Values are written in bulk (SQLite: plain tuples; PostgreSQL: COPY): what SQLAlchemy reads back is
    what it would have written itself."""
    data = KpiDataset(db)
    data.rep("ana@example.com")
    data.deal(owner="ana@example.com", amount=10, close="2024-01-31", status="won")
    before = datetime.now(UTC)
    result = run_kpis(db, kpi_config(kpis={"history_periods": 1}), at="2024-01-31")
    [row] = [r for r in kpi_rows(db, "revenue", JAN) if r["scope_kind"] == "rep"]
    assert row["period_end"] == datetime(2024, 2, 1).date()
    assert (row["value"], row["numerator"], row["denominator"]) == (10, 10, None)
    assert row["run_id"] == result.run_id and row["status"] == "ok" and row["error"] is None
    assert before <= row["computed_at"] <= datetime.now(UTC)
    assert (row["dimension"], row["dimension_value"]) == ("", "")


def test_a_rebuilt_snapshot_in_the_recompute_window_follows_late_changes(db: Database) -> None:
    """Rebuilt snapshots are refreshed by difference: a changed deal is rewritten, a deleted one leaves,
    a new one enters, an unchanged one stays as it was written."""
    from agent.models import PipelineSnapshot

    data = KpiDataset(db)
    a = data.deal(amount=100, created="2024-01-05 10:00", close="2024-06-01", stage="Proposal")
    b = data.deal(amount=200, created="2024-01-10 10:00", close="2024-06-01", stage="Proposal")
    data.deal(amount=10, created="2024-01-02 10:00", close="2024-06-01", stage="Proposal")
    config = kpi_config(kpis={"history_periods": 3, "recompute_periods": 1})
    run_kpis(db, config, at="2024-03-20")  # every boundary is weeks past: all snapshots are rebuilt
    assert_kpi(db, "pipeline_value", FEB, "org", 310)
    data.stage_change(a, "Proposal", "2024-01-20 09:00", amount=150)  # history that arrived late
    with db.write_connection() as connection:
        connection.execute(update(Opportunity.__table__).where(Opportunity.__table__.c.id == b).values(is_deleted=True))
    data.deal(amount=50, created="2024-02-15 10:00", close="2024-06-01", stage="Proposal")
    run_kpis(db, config, at="2024-03-20")
    assert_kpi(db, "pipeline_value", FEB, "org", 150 + 10 + 50)  # at 1 March
    table = PipelineSnapshot.__table__
    with db.engine.connect() as connection:
        end_of_january = connection.execute(
            select(table.c.amount_home, table.c.rebuilt).where(table.c.taken_for == datetime(2024, 2, 1, tzinfo=UTC))
        ).all()
    assert sorted(end_of_january) == [(10, True), (150, True)]  # B left, A follows its history, C came later


def test_snapshots_are_kept_when_a_kpi_may_read_them(db: Database) -> None:
    """A run of event KPIs only takes no snapshot; one with every KPI takes the pipeline at each passed
    period boundary (1 January and 1 February; 1 March is still ahead) and revenue_forecast at the start
    of each started period (January and February): 4."""
    from agent.kpi import compute_kpis
    from agent.models import PipelineSnapshot

    data = KpiDataset(db)
    data.deal(amount=100, created="2023-12-05 10:00", close="2024-06-01", stage="Proposal")
    config, host = kpi_config(kpis={"history_periods": 2}), kpi_host()
    events_only = collect_kpis(host, config)
    events_only.definitions = {
        key: entry for key, entry in events_only.definitions.items() if key in ("revenue", "calls")
    }
    result = compute_kpis(db, config, host, at=datetime(2024, 2, 20, tzinfo=UTC), registry=events_only)
    assert result.snapshots_taken == 0
    with db.engine.connect() as connection:
        assert connection.execute(select(PipelineSnapshot.__table__.c.id)).first() is None
    result = run_kpis(db, config, at="2024-02-20")
    assert result.snapshots_taken == 2 + 2
    assert_kpi(db, "pipeline_value", JAN, "org", 100)
