"""Alembic migrations of the cache schema, run by the agent itself at start-up.

Every schema change is a new revision in ``versions/``; a revision never edits an older one, so an
existing cache upgrades in place and keeps its data.  On SQLite, column changes go through Alembic's
batch mode (copy and swap the table), which SQLite needs for anything beyond ADD COLUMN.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from agent.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(database: Database) -> Config:
    """An Alembic config pointing at this package, bound to ``database``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database"] = database
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Upgrade the cache to ``revision`` (the newest by default), keeping its data."""
    command.upgrade(alembic_config(database), revision)


# Alembic keeps its migration context in module globals: two threads migrating at once (the scheduler's
# jobs both opening the cache on first run) would trample each other. One migration at a time.
_MIGRATION_LOCK = threading.Lock()


def upgrade_to_head(database: Database) -> None:
    with _MIGRATION_LOCK:
        if current_revision(database) != head_revision():
            upgrade(database)


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return script.get_current_head()
