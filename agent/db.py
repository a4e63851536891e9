"""The cache database: engine set-up for SQLite (embedded default) and PostgreSQL, and sessions.

SQLite is set up for a long-running agent with a scheduler and manual commands writing at once: WAL
journal (checked, since some filesystems refuse it), a busy timeout, and writers that take the write
lock up front (``BEGIN IMMEDIATE``) so that two writers queue instead of failing half-way with
``database is locked``.  The cache file holds personal data (names, emails), so it is readable by its
owner only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "kpi_agent_sqlite_immediate"


class DatabaseError(Exception):
    """The cache database cannot be used as configured; the message says what to change."""


def normalize_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` gets the psycopg 3 driver this project installs."""
    try:
        parsed = make_url(os.path.expanduser(url) if url.startswith("sqlite") else url)
    except ArgumentError as error:
        msg = f"database_url {url!r} is not a SQLAlchemy URL ({error}); e.g. sqlite:///cache.sqlite"
        raise DatabaseError(msg) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(os.path.expanduser(parsed.database)).resolve()))
    return parsed


class Database:
    """One cache database.  ``session()`` reads; ``write_session()`` writes and commits."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = normalize_url(url) if isinstance(url, str) else url
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, echo)
            self._writer = self.engine.execution_options(**{_IMMEDIATE: True})
        else:
            self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True)
            self._writer = self.engine

    def session(self) -> Session:
        """A session for reading (and for writes that need no up-front lock)."""
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session that holds the write lock from its first statement and commits on success."""
        with Session(self._writer, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), for bulk writes."""
        with self._writer.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()

    def display_url(self) -> str:
        """The URL without its password, safe to print and log."""
        return self.url.render_as_string(hide_password=True)


def create_database(url: str | URL, *, echo: bool = False) -> Database:
    """Open the cache at ``url`` and bring its schema to the newest migration."""
    from agent.migrations import upgrade_to_head  # migrations import models; keep start-up light

    database = Database(url, echo=echo)
    upgrade_to_head(database)
    return database


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    if url.database not in (None, "", ":memory:"):
        _prepare_private_file(Path(url.database))
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _prepare_private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(descriptor)
    if stat.S_IMODE(path.stat().st_mode) != 0o600:
        path.chmod(0o600)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would BEGIN lazily (DEFERRED); we issue BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        database = cursor.execute("PRAGMA database_list").fetchone()[2]
    finally:
        cursor.close()
    if database and mode.lower() != "wal":
        msg = (
            f"SQLite refused WAL mode for {database} (journal_mode is {mode!r}); the cache needs it so "
            "readers never block the sync. Put the cache on a local disk, not a network filesystem."
        )
        raise DatabaseError(msg)


def _on_sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_IMMEDIATE):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")
