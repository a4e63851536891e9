"""Indexes the KPI queries need: meetings booked by creation time, leads followed to what they became.

Measured in bench/bench_kpis.py: without ix_activity_kind_created SQLite scanned every activity once per
period for "meetings booked" (call_to_meeting), the slowest batch of the engine.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_activity_kind_created", "activity", ["kind", "created_at"])
    op.create_index("ix_lead_converted_opportunity", "lead", ["converted_opportunity_id"])
    op.create_index("ix_lead_converted_contact", "lead", ["converted_contact_id"])


def downgrade() -> None:
    op.drop_index("ix_lead_converted_contact", table_name="lead")
    op.drop_index("ix_lead_converted_opportunity", table_name="lead")
    op.drop_index("ix_activity_kind_created", table_name="activity")
