"""calls.held and an index on (held, started_at): held / not-held searches in date order (issue 13).

"Held only" used to read every call under an active hold and sort them (334 ms at p99 on 1,000,000
calls with 10,000 holds); "not held" tested the holds table once per call. With the flag beside
``started_at`` in one index, both walk the index newest first and stop after one page. The flag is
filled here from the holds table, then kept by storage/holds.py in the same transaction as each hold's
placement or release.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a constant default: no table copy on SQLite, quick on PostgreSQL.
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE calls SET held = EXISTS (SELECT 1 FROM holds"
        " WHERE holds.call_id = calls.id AND holds.released_at IS NULL)"
    )
    op.create_index("ix_calls_held_started_at", "calls", ["held", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_held_started_at", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("held")
