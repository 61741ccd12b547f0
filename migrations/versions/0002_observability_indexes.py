"""Indexes for the windowed numbers of `sous status`, /metrics and /api/queue/stats.

They are now part of the adoption plan of 0001_initial (core/adoption/spec.py INDEXES); this
revision stays so that databases stamped with it remain valid.

Revision ID: 0002_observability_indexes
Revises: 0001_initial
"""

from __future__ import annotations

revision = "0002_observability_indexes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
