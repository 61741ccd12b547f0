"""Indexes for the windowed numbers of `sous status`, /metrics and /api/queue/stats.

Revision ID: 0002_observability_indexes
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision = "0002_observability_indexes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Waits and claims over the last hour walk this instead of the whole table.
    op.execute(
        "CREATE INDEX IF NOT EXISTS ingredient_match_queue_started_idx "
        "ON ingredient_match_queue (processing_started_at) WHERE processing_started_at IS NOT NULL"
    )
    # Outcomes per window: when a row became terminal (resolved_at has its own index).
    op.execute(
        "CREATE INDEX IF NOT EXISTS ingredient_match_queue_finished_idx "
        "ON ingredient_match_queue (updated_at) WHERE status IN ('resolved', 'rejected', 'failed')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ingredient_match_queue_finished_idx")
    op.execute("DROP INDEX IF EXISTS ingredient_match_queue_started_idx")
