"""calls: one row per call the PBX handed us, recorded or not.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pbx_uniqueid", sa.String(64)),
        sa.Column("pbx_linkedid", sa.String(64)),
        sa.Column("channel", sa.String(255)),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("line", sa.String(64)),
        sa.Column("local_number", sa.String(32)),
        sa.Column("remote_number", sa.String(32)),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("answered_at", UtcDateTime()),
        sa.Column("ended_at", UtcDateTime()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.String(64)),
        sa.Column("audio_path", sa.String(512)),
        sa.Column("audio_bytes", sa.Integer()),
        sa.Column("audio_sha256", sa.String(64)),
        sa.Column("audio_seconds", sa.Float()),
        sa.Column("announcement", sa.String(255)),
        sa.Column("announcement_started_at", UtcDateTime()),
        sa.Column("announcement_completed", sa.Boolean()),
        sa.Column("spy_status", sa.String(16)),
        sa.Column("agent_channel", sa.String(255)),
        sa.Column("hangup_cause", sa.Integer()),
        sa.Column("hangup_cause_text", sa.String(64)),
        sa.Column("notes", sa.Text()),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_status", "calls", ["status"])
    op.create_index("ix_calls_remote_number", "calls", ["remote_number"])
    op.create_index("ix_calls_pbx_uniqueid", "calls", ["pbx_uniqueid"])


def downgrade() -> None:
    op.drop_table("calls")
