"""Fixtures shared by the whole suite: a migrated cache on SQLite and on PostgreSQL.

PostgreSQL: the suite creates its own database on the server named by ``KPI_AGENT_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``, the maintenance database it connects to) and
drops it at the end; it never touches a database it did not create.  Without a server the PostgreSQL
variants are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server_url: URL) -> URL:
    """The session's PostgreSQL database, migrated once; tests empty its tables instead of re-migrating."""
    create_database(postgres_server_url.render_as_string(hide_password=False)).dispose()
    return postgres_server_url


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite cache file that each test copies, which is far quicker than migrating."""
    path = tmp_path_factory.mktemp("template") / "cache.sqlite"
    create_database(f"sqlite:///{path}").dispose()
    return path


def _empty_postgres_tables(url: URL) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        ).scalars().all()
        if tables:
            names = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, unmigrated database: a new SQLite file, or an emptied PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.sqlite'}"
        return
    url = request.getfixturevalue("postgres_server_url")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield url.render_as_string(hide_password=False)


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty cache, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "cache.sqlite"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        path.chmod(0o600)
        database = Database(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("migrated_postgres")
        _empty_postgres_tables(url)
        database = Database(url.render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
