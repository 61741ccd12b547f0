"""Runs the adoption plan again: a database made by an earlier sous (stamped 0002) gets what
the plan has since grown (the undo log, sous_user_plans, Supabase's grants...); on a database
0001 just adopted it finds nothing to do. Its downgrade undoes only its own steps.

Revision ID: 0003_adopt_again
Revises: 0002_observability_indexes
"""

from __future__ import annotations

from alembic import op

from core.adoption import apply

revision = "0003_adopt_again"
down_revision = "0002_observability_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply.upgrade(op.get_bind(), revision)


def downgrade() -> None:
    apply.downgrade(op.get_bind(), revision)
