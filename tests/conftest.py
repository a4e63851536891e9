"""Fixtures shared by the whole suite: a migrated cache on SQLite and on PostgreSQL.

PostgreSQL: the suite creates its own database on the server named by ``KPI_AGENT_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``, the maintenance database it connects to) and
drops it at the end; it never touches a database it did not create.  Without a server the PostgreSQL
variants are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from agent.db import Database, create_database

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

PG_ADMIN_URL = os.environ.get(
    "KPI_AGENT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("sqlite", "postgresql")


def _pg_admin_url() -> URL:
    url = make_url(PG_ADMIN_URL)
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[URL]:
    """A database of our own on the PostgreSQL server, created for this test session and dropped after."""
    admin_url = _pg_admin_url()
    name = f"kpi_agent_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # no server, no psycopg, refused login: all mean "cannot test here"
        pytest.skip(
            f"PostgreSQL not reachable at {admin_url.render_as_string(hide_password=True)} ({error}); "
            "start it (.ci/run does) or set KPI_AGENT_TEST_PG_URL"
        )
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: URL) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, or a freshly emptied PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.sqlite'}"
        return
    url = request.getfixturevalue("postgres_server_url")
    _reset_postgres(url)
    yield url.render_as_string(hide_password=False)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated, empty cache, once on SQLite and once on PostgreSQL."""
    database = create_database(db_url)
    try:
        yield database
    finally:
        database.dispose()
