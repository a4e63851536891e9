"""Partial indexes for the sync's end-of-run passes: rows whose references are still unresolved, and rows
marked deleted.

The sync resolves a reference (``account_source_id`` → ``account_id``) in the INSERT that writes the row;
a row whose parent was not there yet keeps a null key until the end-of-run pass, and a row the CRM deleted
is marked until the purge at the end of the run.  Both passes scanned every row of every table once per
run (1.3 s of a 4 s incremental sync of a 100k-deal cache, and growing with the cache); these indexes hold
only the rows each pass is for, so a pass now costs what there is to do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A copy, not an import of agent.models: a migration must keep meaning what it meant when written.
UNRESOLVED_REFERENCES = (
    ("stage", "pipeline_id", "pipeline_source_id"),
    ("account", "owner_rep_id", "owner_source_id"),
    ("contact", "account_id", "account_source_id"),
    ("contact", "owner_rep_id", "owner_source_id"),
    ("lead", "owner_rep_id", "owner_source_id"),
    ("lead", "converted_contact_id", "converted_contact_source_id"),
    ("lead", "converted_opportunity_id", "converted_opportunity_source_id"),
    ("opportunity", "account_id", "account_source_id"),
    ("opportunity", "owner_rep_id", "owner_source_id"),
    ("opportunity", "pipeline_id", "pipeline_source_id"),
    ("opportunity", "stage_id", "stage_source_id"),
    ("line_item", "opportunity_id", "opportunity_source_id"),
    ("line_item", "product_id", "product_source_id"),
    ("stage_history", "opportunity_id", "opportunity_source_id"),
    ("stage_history", "stage_id", "stage_source_id"),
    ("activity", "owner_rep_id", "owner_source_id"),
    ("activity", "lead_id", "lead_source_id"),
    ("activity", "contact_id", "contact_source_id"),
    ("activity", "opportunity_id", "opportunity_source_id"),
    ("activity", "account_id", "account_source_id"),
    ("contract", "account_id", "account_source_id"),
    ("contract", "opportunity_id", "opportunity_source_id"),
)

MARKED_DELETED_TABLES = ("account", "contact", "opportunity", "line_item", "activity", "lead", "contract")


def upgrade() -> None:
    for table, id_column, source_column in UNRESOLVED_REFERENCES:
        condition = sa.text(f"{id_column} IS NULL AND {source_column} IS NOT NULL")
        op.create_index(f"ix_{table}_{id_column}_unresolved", table, ["connection"],
                        sqlite_where=condition, postgresql_where=condition)
    for table in MARKED_DELETED_TABLES:
        condition = sa.text("is_deleted = TRUE")
        op.create_index(f"ix_{table}_marked_deleted", table, ["connection"],
                        sqlite_where=condition, postgresql_where=condition)


def downgrade() -> None:
    for table in reversed(MARKED_DELETED_TABLES):
        op.drop_index(f"ix_{table}_marked_deleted", table_name=table)
    for table, id_column, _source_column in reversed(UNRESOLVED_REFERENCES):
        op.drop_index(f"ix_{table}_{id_column}_unresolved", table_name=table)
