"""Initial cache schema: CRM records, reference data, KPI values, sync state.

Revision ID: 0001
Revises: 
Create Date: 2026-12-01 14:11:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connection')),
    sa.UniqueConstraint('name', name=op.f('uq_connection_name'))
    )
    op.create_table('currency_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('iso_code', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('is_corporate', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_currency_rate')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_currency_rate_connection_source_id')
    )
    with op.batch_alter_table('currency_rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_currency_rate_iso_code'), ['iso_code'], unique=False)

    op.create_table('forecast_snapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grain', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('scope_kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('scope_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('taken_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('rebuilt', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forecast_snapshot')),
    sa.UniqueConstraint('grain', 'period_start', 'scope_kind', 'scope_id', name='uq_forecast_snapshot_key')
    )
    op.create_table('kpi_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('failed_kpis', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_run'))
    )
    op.create_table('period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grain', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('start_utc', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('end_utc', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('fiscal_start_month', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period')),
    sa.UniqueConstraint('grain', 'start_date', name='uq_period_grain_start')
    )
    with op.batch_alter_table('period', schema=None) as batch_op:
        batch_op.create_index('ix_period_grain_utc', ['grain', 'start_utc'], unique=False)

    op.create_table('pipeline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('display_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_pipeline_connection_source_id')
    )
    op.create_table('product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('family', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_product_connection_source_id')
    )
    op.create_table('quarantined_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('object', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('first_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantined_record')),
    sa.UniqueConstraint('connection', 'object', 'source_id', name='uq_quarantined_record_key')
    )
    op.create_table('quota',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kpi', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('scope_kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('scope_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota')),
    sa.UniqueConstraint('kpi', 'scope_kind', 'scope_id', 'period_start', 'period_end', name='uq_quota_scope')
    )
    op.create_table('setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_setting'))
    )
    op.create_table('sync_cursor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('object', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('stamp', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('initial_load_done', sa.Boolean(), nullable=False),
    sa.Column('initial_load_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('initial_last_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('bulk_job_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('bulk_locator', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_reconciled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('lease_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_run_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('records_synced', sa.Integer(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_cursor')),
    sa.UniqueConstraint('connection', 'object', name='uq_sync_cursor_object')
    )
    op.create_table('sync_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('object', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_run'))
    )
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.create_index('ix_sync_run_object', ['connection', 'object', 'started_at'], unique=False)

    op.create_table('team',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('manager_rep_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_team_connection_source_id')
    )
    op.create_table('cost',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('amount_home', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_cost_product_id_product')),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_cost_team_id_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cost')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_cost_connection_source_id')
    )
    op.create_table('kpi_value',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kpi', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('grain', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('scope_kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('scope_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('dimension', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('dimension_value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('numerator', sa.Float(), nullable=True),
    sa.Column('denominator', sa.Float(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('computed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['kpi_run.id'], name=op.f('fk_kpi_value_run_id_kpi_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_value')),
    sa.UniqueConstraint('kpi', 'grain', 'period_start', 'scope_kind', 'scope_id', 'dimension', 'dimension_value', name='uq_kpi_value_key')
    )
    with op.batch_alter_table('kpi_value', schema=None) as batch_op:
        batch_op.create_index('ix_kpi_value_period', ['grain', 'period_start', 'kpi'], unique=False)

    op.create_table('rep',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('manager_rep_id', sa.Integer(), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_rep_team_id_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rep')),
    sa.UniqueConstraint('email', name=op.f('uq_rep_email'))
    )
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rep_team_id'), ['team_id'], unique=False)

    op.create_table('stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=True),
    sa.Column('pipeline_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Float(), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.Column('forecast_category', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipeline.id'], name=op.f('fk_stage_pipeline_id_pipeline')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_stage_connection_source_id')
    )
    with op.batch_alter_table('stage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stage_pipeline_id'), ['pipeline_id'], unique=False)

    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('owner_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('industry', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['rep.id'], name=op.f('fk_account_owner_rep_id_rep')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_account_connection_source_id')
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_owner_rep_id'), ['owner_rep_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_region'), ['region'], unique=False)

    op.create_table('crm_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('rep_id', sa.Integer(), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('team_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['rep_id'], ['rep.id'], name=op.f('fk_crm_user_rep_id_rep')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_user')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_crm_user_connection_source_id')
    )
    with op.batch_alter_table('crm_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_user_rep_id'), ['rep_id'], unique=False)

    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('account_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('owner_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('lead_source', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('lifecycle_stage', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('mql_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sql_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('customer_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_contact_account_id_account')),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['rep.id'], name=op.f('fk_contact_owner_rep_id_rep')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_contact_connection_source_id')
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_owner_rep_id'), ['owner_rep_id'], unique=False)

    op.create_table('opportunity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('account_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('owner_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('pipeline_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('pipeline_id', sa.Integer(), nullable=True),
    sa.Column('stage_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('stage_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('amount_home', sa.Float(), nullable=True),
    sa.Column('probability', sa.Float(), nullable=True),
    sa.Column('forecast_category', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('deal_type', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('deal_type_raw', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('lead_source', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('record_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_opportunity_account_id_account')),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['rep.id'], name=op.f('fk_opportunity_owner_rep_id_rep')),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipeline.id'], name=op.f('fk_opportunity_pipeline_id_pipeline')),
    sa.ForeignKeyConstraint(['stage_id'], ['stage.id'], name=op.f('fk_opportunity_stage_id_stage')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_opportunity_connection_source_id')
    )
    with op.batch_alter_table('opportunity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_opportunity_created', ['created_at'], unique=False)
        batch_op.create_index('ix_opportunity_open', ['is_closed', 'created_at'], unique=False)
        batch_op.create_index('ix_opportunity_owner_close', ['owner_rep_id', 'close_date'], unique=False)
        batch_op.create_index('ix_opportunity_won_close', ['is_won', 'close_date'], unique=False)

    op.create_table('contract',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('account_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('opportunity_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('cancelled_date', sa.Date(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('term_months', sa.Integer(), nullable=True),
    sa.Column('monthly_value_home', sa.Float(), nullable=False),
    sa.Column('derived_from', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_contract_account_id_account')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_contract_opportunity_id_opportunity')),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['rep.id'], name=op.f('fk_contract_owner_rep_id_rep')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_contract_connection_source_id')
    )
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_contract_span', ['start_date', 'end_date'], unique=False)

    op.create_table('lead',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('owner_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('company', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('lead_source', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('mql_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sql_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('converted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('converted_contact_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('converted_contact_id', sa.Integer(), nullable=True),
    sa.Column('converted_opportunity_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('converted_opportunity_id', sa.Integer(), nullable=True),
    sa.Column('converted_account_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['converted_contact_id'], ['contact.id'], name=op.f('fk_lead_converted_contact_id_contact')),
    sa.ForeignKeyConstraint(['converted_opportunity_id'], ['opportunity.id'], name=op.f('fk_lead_converted_opportunity_id_opportunity')),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['rep.id'], name=op.f('fk_lead_owner_rep_id_rep')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_lead_connection_source_id')
    )
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.create_index('ix_lead_created', ['created_at'], unique=False)
        batch_op.create_index('ix_lead_mql', ['mql_at'], unique=False)
        batch_op.create_index('ix_lead_owner_created', ['owner_rep_id', 'created_at'], unique=False)

    op.create_table('line_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('opportunity_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('product_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('product_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('list_price', sa.Float(), nullable=True),
    sa.Column('unit_price', sa.Float(), nullable=True),
    sa.Column('net_total', sa.Float(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('list_total_home', sa.Float(), nullable=True),
    sa.Column('net_total_home', sa.Float(), nullable=True),
    sa.Column('recurring_term_months', sa.Integer(), nullable=True),
    sa.Column('billing_frequency', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('monthly_value_home', sa.Float(), nullable=True),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_line_item_opportunity_id_opportunity')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_line_item_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_item')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_line_item_connection_source_id')
    )
    with op.batch_alter_table('line_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_item_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_item_product_id'), ['product_id'], unique=False)

    op.create_table('pipeline_snapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('taken_for', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('taken_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('stage_id', sa.Integer(), nullable=True),
    sa.Column('amount_home', sa.Float(), nullable=True),
    sa.Column('probability', sa.Float(), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('rebuilt', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_pipeline_snapshot_opportunity_id_opportunity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_snapshot')),
    sa.UniqueConstraint('taken_for', 'opportunity_id', name='uq_pipeline_snapshot_deal')
    )
    with op.batch_alter_table('pipeline_snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_pipeline_snapshot_taken', ['taken_for'], unique=False)

    op.create_table('stage_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('opportunity_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('stage_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('stage_id', sa.Integer(), nullable=True),
    sa.Column('entered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('amount_home', sa.Float(), nullable=True),
    sa.Column('probability', sa.Float(), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_stage_history_opportunity_id_opportunity')),
    sa.ForeignKeyConstraint(['stage_id'], ['stage.id'], name=op.f('fk_stage_history_stage_id_stage')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_history')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_stage_history_connection_source_id')
    )
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.create_index('ix_stage_history_opportunity_entered', ['opportunity_id', 'entered_at'], unique=False)

    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('kind_raw', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('owner_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lead_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('contact_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('opportunity_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('account_source_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('last_modified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_activity_account_id_account')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_activity_contact_id_contact')),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_activity_lead_id_lead')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_activity_opportunity_id_opportunity')),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['rep.id'], name=op.f('fk_activity_owner_rep_id_rep')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity')),
    sa.UniqueConstraint('connection', 'source_id', name='uq_activity_connection_source_id')
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_contact', ['contact_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_activity_kind_occurred', ['kind', 'occurred_at'], unique=False)
        batch_op.create_index('ix_activity_lead', ['lead_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_activity_opportunity', ['opportunity_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_activity_owner_occurred', ['owner_rep_id', 'occurred_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_owner_occurred')
        batch_op.drop_index('ix_activity_opportunity')
        batch_op.drop_index('ix_activity_lead')
        batch_op.drop_index('ix_activity_kind_occurred')
        batch_op.drop_index('ix_activity_contact')

    op.drop_table('activity')
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_history_opportunity_entered')

    op.drop_table('stage_history')
    with op.batch_alter_table('pipeline_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_pipeline_snapshot_taken')

    op.drop_table('pipeline_snapshot')
    with op.batch_alter_table('line_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_item_product_id'))
        batch_op.drop_index(batch_op.f('ix_line_item_opportunity_id'))

    op.drop_table('line_item')
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_owner_created')
        batch_op.drop_index('ix_lead_mql')
        batch_op.drop_index('ix_lead_created')

    op.drop_table('lead')
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_index('ix_contract_span')
        batch_op.drop_index(batch_op.f('ix_contract_account_id'))

    op.drop_table('contract')
    with op.batch_alter_table('opportunity', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunity_won_close')
        batch_op.drop_index('ix_opportunity_owner_close')
        batch_op.drop_index('ix_opportunity_open')
        batch_op.drop_index('ix_opportunity_created')
        batch_op.drop_index(batch_op.f('ix_opportunity_account_id'))

    op.drop_table('opportunity')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_owner_rep_id'))
        batch_op.drop_index(batch_op.f('ix_contact_account_id'))

    op.drop_table('contact')
    with op.batch_alter_table('crm_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_user_rep_id'))

    op.drop_table('crm_user')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_region'))
        batch_op.drop_index(batch_op.f('ix_account_owner_rep_id'))

    op.drop_table('account')
    with op.batch_alter_table('stage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stage_pipeline_id'))

    op.drop_table('stage')
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rep_team_id'))

    op.drop_table('rep')
    with op.batch_alter_table('kpi_value', schema=None) as batch_op:
        batch_op.drop_index('ix_kpi_value_period')

    op.drop_table('kpi_value')
    op.drop_table('cost')
    op.drop_table('team')
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_run_object')

    op.drop_table('sync_run')
    op.drop_table('sync_cursor')
    op.drop_table('setting')
    op.drop_table('quota')
    op.drop_table('quarantined_record')
    op.drop_table('product')
    op.drop_table('pipeline')
    with op.batch_alter_table('period', schema=None) as batch_op:
        batch_op.drop_index('ix_period_grain_utc')

    op.drop_table('period')
    op.drop_table('kpi_run')
    op.drop_table('forecast_snapshot')
    with op.batch_alter_table('currency_rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_currency_rate_iso_code'))

    op.drop_table('currency_rate')
    op.drop_table('connection')
