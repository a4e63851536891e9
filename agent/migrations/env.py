"""Alembic environment: migrations run on the agent's own engine, never from an ini file."""

from __future__ import annotations

from alembic import context

from agent import models

target_metadata = models.SQLModel.metadata


def run_migrations() -> None:
    database = context.config.attributes["database"]
    with database.write_connection() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=database.dialect == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations()
