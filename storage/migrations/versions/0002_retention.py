"""retention: expiry columns on calls; holds, the retention log, deletion intents, preservations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CALL_COLUMNS = (
    ("retention_policy", sa.String(64)),
    ("expires_at", UtcDateTime()),
    ("move_at", UtcDateTime()),
    ("metadata_expires_at", UtcDateTime()),
    ("audio_store", sa.String(64)),
    ("audio_deleted_at", UtcDateTime()),
    ("preserved_at", UtcDateTime()),
)
_CALL_INDEXES = ("expires_at", "move_at", "metadata_expires_at", "retention_policy")


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy), so upgrading a large catalogue is quick. New columns are
    # NULL: the reaper computes expiries for every such row on its first pass.
    with op.batch_alter_table("calls") as batch:
        for name, type_ in _CALL_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    for name in _CALL_INDEXES:
        op.create_index(f"ix_calls_{name}", "calls", [name])

    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(64), nullable=False),
        sa.Column("placed_at", UtcDateTime(), nullable=False),
        sa.Column("released_at", UtcDateTime()),
        sa.Column("released_by", sa.String(64)),
        sa.Column("release_reason", sa.Text()),
    )
    op.create_index("ix_holds_call_id", "holds", ["call_id"])
    op.create_index("ix_holds_reference", "holds", ["reference"])

    op.create_table(
        "retention_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("call_id", sa.String(36)),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("rule", sa.Text()),
        sa.Column("reference", sa.String(128)),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_retention_log_at", "retention_log", ["at"])
    op.create_index("ix_retention_log_call_id", "retention_log", ["call_id"])
    op.create_index("ix_retention_log_action", "retention_log", ["action"])

    op.create_table(
        "retention_intents",
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("dst", sa.String(1024)),
        sa.Column("store", sa.String(64)),
        sa.Column("preservation_id", sa.Integer()),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("rule", sa.Text()),
        sa.Column("reference", sa.String(128)),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )

    op.create_table(
        "preservations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("medium", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("call_started_at", UtcDateTime(), nullable=False),
        sa.Column("call_ended_at", UtcDateTime()),
        sa.Column("preserved_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("preserved_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(128)),
        sa.Column("destroyed_at", UtcDateTime()),
    )
    op.create_index("ix_preservations_call_id", "preservations", ["call_id"])

    op.create_table(
        "retention_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("retention_state", "preservations", "retention_intents", "retention_log", "holds"):
        op.drop_table(table)
    for name in _CALL_INDEXES:
        op.drop_index(f"ix_calls_{name}", "calls")
    with op.batch_alter_table("calls") as batch:
        for name, _type in reversed(_CALL_COLUMNS):
            batch.drop_column(name)
