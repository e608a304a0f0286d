"""Call metadata tables (SQLAlchemy 2.x typed ORM).

Times are stored in UTC, always aware; local calendar arithmetic happens elsewhere.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


# Status values. "failed" rows carry the reason in `failure_reason`.
RECORDING = "recording"
COMPLETED = "completed"
EXCLUDED = "excluded"
FAILED = "failed"
INCOMPLETE = "incomplete"
STATUSES = (RECORDING, COMPLETED, EXCLUDED, FAILED, INCOMPLETE)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # also the AudioSocket UUID
    pbx_uniqueid: Mapped[str | None] = mapped_column(String(64))
    pbx_linkedid: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(8))
    line: Mapped[str | None] = mapped_column(String(64))
    local_number: Mapped[str | None] = mapped_column(String(32))  # city side
    remote_number: Mapped[str | None] = mapped_column(String(32))  # counterpart
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    audio_path: Mapped[str | None] = mapped_column(String(512))  # relative to the data directory
    audio_bytes: Mapped[int | None] = mapped_column(Integer)  # ciphertext size
    audio_sha256: Mapped[str | None] = mapped_column(String(64))  # of the ciphertext
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    announcement: Mapped[str | None] = mapped_column(String(255))
    announcement_started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    announcement_completed: Mapped[bool | None] = mapped_column()
    spy_status: Mapped[str | None] = mapped_column(String(16))
    agent_channel: Mapped[str | None] = mapped_column(String(255))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)  # what is missing and why, for humans

    __table_args__ = (
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_status", "status"),
        Index("ix_calls_remote_number", "remote_number"),
        Index("ix_calls_pbx_uniqueid", "pbx_uniqueid"),
    )
