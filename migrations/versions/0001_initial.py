"""The whole data model of DESIGN.md, adopted in place: tables, columns, indexes, triggers,
the claim/requeue functions, and (with Supabase's schema present) RLS, realtime and grants.

On an empty database everything is created; on the app's database only what is missing is
added (core/adoption). Each change is recorded with its undo, and the downgrade gives the
database back as it was.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

from alembic import op

from core.adoption import apply

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply.upgrade(op.get_bind(), revision)


def downgrade() -> None:
    apply.downgrade(op.get_bind())
