from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import select

from agent import models
from agent.db import Database, DatabaseError, create_database, normalize_url
from agent.migrations import current_revision, head_revision, upgrade


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    database = create_database(db_url)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, models.SQLModel.metadata) == []
    assert current_revision(database) == head_revision() == "0006"
    # compare_metadata does not compare partial indexes' conditions: the migration's must be the models'
    name = models.unresolved_index_name("activity", "lead_id")
    query = ("SELECT indexdef FROM pg_indexes WHERE indexname = :name" if database.dialect == "postgresql"
             else "SELECT sql FROM sqlite_master WHERE name = :name")
    with database.engine.connect() as connection:
        definition = connection.execute(text(query), {"name": name}).scalar_one()
    assert "lead_id IS NULL" in definition and "lead_source_id IS NOT NULL" in definition
    with database.engine.connect() as connection:
        definition = connection.execute(text(query), {"name": "ix_contract_crm_names_deal"}).scalar_one()
    assert "<> 'deal'" in definition and "opportunity_source_id IS NOT NULL" in definition
    if database.dialect == "postgresql":  # compare_metadata does not compare storage parameters either
        with database.engine.connect() as connection:
            options = dict(connection.execute(text(
                "SELECT relname, reloptions FROM pg_class WHERE relname IN ('activity', 'stage_history')")).all())
        assert options == {"activity": ["fillfactor=90"], "stage_history": None}
    database.dispose()


def test_upgrading_a_populated_cache_keeps_its_data(db_url: str) -> None:
    database = Database(db_url)
    upgrade(database, "0001")
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with database.write_connection() as connection:
        connection.execute(text("INSERT INTO team (connection, source_id, name) VALUES ('config', 'emea', 'EMEA')"))
        connection.execute(
            text("INSERT INTO rep (email, name, active, team_id) VALUES ('ana@example.com', 'Ana', :t, 1)"),
            {"t": True},
        )
    with database.write_session() as session:
        session.add(
            models.Opportunity(
                connection="sf",
                source_id="006A",
                created_at=created,
                amount_home=1200.0,
                owner_rep_id=1,
                is_won=True,
                is_closed=True,
            )
        )
    upgrade(database)  # 0002 rebuilds the rep table on SQLite (batch mode)
    with database.session() as session:
        rep = session.exec(select(models.Rep)).one()
        assert (rep.email, rep.name, rep.team_id, rep.slack_user_id) == ("ana@example.com", "Ana", 1, None)
        deal = session.exec(select(models.Opportunity)).one()
        assert (deal.amount_home, deal.owner_rep_id, deal.created_at) == (1200.0, 1, created)
    assert current_revision(database) == head_revision()
    database.dispose()


def test_sqlite_cache_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    database = create_database(f"sqlite:///{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    database.dispose()


def test_sqlite_writer_takes_the_lock_up_front(tmp_path: Path) -> None:
    database = create_database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    other = Database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    with database.write_connection() as connection:
        connection.execute(text("SELECT 1"))  # no write yet, but BEGIN IMMEDIATE holds the lock
        raw = other.engine.raw_connection()
        raw.execute("PRAGMA busy_timeout = 0")
        with pytest.raises(Exception, match="locked"):
            raw.execute("BEGIN IMMEDIATE")
        raw.close()
    database.dispose()
    other.dispose()


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="timezone"), db.write_session() as session:
        session.add(models.Lead(connection="hs", source_id="1", created_at=datetime(2026, 1, 1)))


def test_url_normalisation_and_password_hiding() -> None:
    url = normalize_url("postgresql://kpi:s3cret@db.internal/kpi")
    assert url.drivername == "postgresql+psycopg"
    assert "s3cret" not in Database(url).display_url()
    with pytest.raises(DatabaseError, match="not a SQLAlchemy URL"):
        normalize_url("not a url")
