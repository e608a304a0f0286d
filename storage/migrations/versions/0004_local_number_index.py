"""calls.local_number indexed: a search by number matches either party (the web console, issue 13).

Without it, ``remote_number = ? OR local_number = ?`` scans the whole catalogue (1,000,000 calls:
far over the console's 50 ms); with both columns indexed SQLite answers with a multi-index OR.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_calls_local_number", "calls", ["local_number"])


def downgrade() -> None:
    op.drop_index("ix_calls_local_number", table_name="calls")
