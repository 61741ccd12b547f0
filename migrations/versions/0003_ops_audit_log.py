"""The operators' audit log: every action taken from the dashboard or the ops API.

Revision ID: 0003_ops_audit_log
Revises: 0002_observability_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0003_ops_audit_log"
down_revision = "0002_observability_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS ops_audit_log (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          at timestamptz NOT NULL DEFAULT now(),
          actor text NOT NULL,
          action text NOT NULL,
          row_ids bigint[] NOT NULL DEFAULT '{}',
          changed_ids bigint[] NOT NULL DEFAULT '{}',
          details jsonb NOT NULL DEFAULT '{}'::jsonb
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS ops_audit_log_at_idx ON ops_audit_log (at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ops_audit_log")
