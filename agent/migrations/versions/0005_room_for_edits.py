"""PostgreSQL: leave a tenth of each page free in the tables whose rows CRM users edit.

An incremental sync rewrites the rows users changed.  With full pages (fillfactor 100, the default), every
rewritten row goes to another page and gets a new entry in each of its table's indexes (thirteen for an
activity), which the update pays for and which bloats the indexes until vacuum.  With room on the page, an
edit that changes no indexed column (a subject, an amount, a quantity) is a HOT update: the new version stays
on its page and no index changes.  The setting applies to pages written from now on; SQLite updates rows in
place and has no such setting.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A copy, not an import of agent.models: a migration must keep meaning what it meant when written.
EDITED_TABLES = ("account", "contact", "lead", "opportunity", "line_item", "activity", "contract")
FILLFACTOR = 90


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in EDITED_TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in EDITED_TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
