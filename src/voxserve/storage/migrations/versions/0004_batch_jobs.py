"""Batch jobs (Mistral's Batch API) and their requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The job queue's own tables (procrastinate's) are not made here: ``voxserve.jobs.schema`` applies
them on PostgreSQL, the only backend that runs batch jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("input_files", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("total_requests", sa.Integer(), nullable=False),
        sa.Column("completed_requests", sa.Integer(), nullable=False),
        sa.Column("succeeded_requests", sa.Integer(), nullable=False),
        sa.Column("failed_requests", sa.Integer(), nullable=False),
        sa.Column("output_file", sa.String(64), nullable=True),
        sa.Column("error_file", sa.String(64), nullable=True),
        sa.Column("timeout_hours", sa.Integer(), nullable=False),
        sa.Column("queue_job_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("completed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batch_jobs"),
    )
    op.create_index("ix_batch_jobs_owner_id_created_at", "batch_jobs", ["owner_id", "created_at"])
    op.create_table(
        "batch_requests",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(512), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["batch_jobs.id"],
            name="fk_batch_requests_job_id_batch_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "index", name="pk_batch_requests"),
    )


def downgrade() -> None:
    op.drop_table("batch_requests")
    op.drop_index("ix_batch_jobs_owner_id_created_at", table_name="batch_jobs")
    op.drop_table("batch_jobs")
