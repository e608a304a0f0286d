"""Call metadata tables (SQLAlchemy 2.x typed ORM).

Times are stored in UTC, always aware; local calendar arithmetic happens elsewhere.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, Index, Integer, String, Text, TypeDecorator, false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.nodes import default_node


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
# Recorded and sealed, but the PBX's own event stream (AMI) did not confirm the call: its channel
# and our spy attaching to it. Whatever sent the audio, we cannot say it was that call.
UNVERIFIED = "unverified"
STATUSES = (RECORDING, COMPLETED, EXCLUDED, FAILED, INCOMPLETE, UNVERIFIED)


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
    # Retention (docs/retention.md): computed by the reaper from started_at and the line's policy.
    retention_policy: Mapped[str | None] = mapped_column(String(64))  # None: not yet computed; "": none
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())  # audio due for deletion
    move_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())  # due to move to the next tier
    metadata_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())  # row due to go
    # None: audio_path is relative to data_dir; else a [retention.stores] name and an absolute path.
    audio_store: Mapped[str | None] = mapped_column(String(64))
    audio_deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())  # audio_path is then None
    preserved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # Whether an active hold covers the call: kept by storage/holds.py in the transaction that places or
    # releases one (migration 0005), so "held / not held" searches walk an index in date order instead
    # of testing the holds table per call. The holds table stays the truth for every deletion decision.
    held: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The recorder that holds the audio file (storage/nodes.py, migration 0006): only it deletes,
    # moves or recovers the file. The daemon always sets it; the default serves rows made elsewhere.
    node: Mapped[str] = mapped_column(String(64), default=default_node)

    __table_args__ = (
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_held_started_at", "held", "started_at"),
        Index("ix_calls_status", "status"),
        Index("ix_calls_remote_number", "remote_number"),
        Index("ix_calls_local_number", "local_number"),
        Index("ix_calls_pbx_uniqueid", "pbx_uniqueid"),
        Index("ix_calls_expires_at", "expires_at"),
        Index("ix_calls_move_at", "move_at"),
        Index("ix_calls_metadata_expires_at", "metadata_expires_at"),
        Index("ix_calls_retention_policy", "retention_policy"),
    )


class Person(Base):
    """Someone who may sign in to ``recorderctl`` (R6). Key copies live in the keyring, not here."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the personal ID they type
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    password_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    must_change: Mapped[bool] = mapped_column(default=True)  # set by whoever chose the password
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    locked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class LedgerRow(Base):
    """One hash-chained ledger entry (storage/ledger.py). Append-only by convention and by proof."""

    __tablename__ = "ledger"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Text, not a DateTime column: the hashed bytes must survive any driver's round trip unchanged.
    at: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(36))
    subject: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # one successor per entry: no forks
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_ledger_call_id", "call_id"),
        Index("ix_ledger_kind", "kind"),
        Index("ix_ledger_subject", "subject"),
    )


# -- retention: holds, the retention log, deletion intents, preservation (migration 0002) ---------
HOLD_KINDS = ("disclosure", "police_legal", "harassment", "manager_order")


class Hold(Base):
    """A reason to keep one call's recording past its expiry, until explicitly released."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(24))  # one of HOLD_KINDS
    reference: Mapped[str] = mapped_column(String(128))  # the request's or order's number
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    released_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    released_by: Mapped[str | None] = mapped_column(String(64))
    release_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_holds_call_id", "call_id"), Index("ix_holds_reference", "reference"))


class RetentionEvent(Base):
    """Append-only record of every deletion, move, hold, release, preservation and policy change.

    Never updated or deleted by recorderd; rows are self-contained (no foreign keys) so they outlive
    the call rows they describe, and the ledger (storage/ledger.py) can take them in ``id`` order.
    """

    __tablename__ = "retention_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    action: Mapped[str] = mapped_column(String(24))
    call_id: Mapped[str | None] = mapped_column(String(36))
    actor: Mapped[str] = mapped_column(String(64))  # "reaper" or the person
    rule: Mapped[str | None] = mapped_column(Text)  # which policy or request, in words
    reference: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)  # JSON object

    __table_args__ = (
        Index("ix_retention_log_at", "at"),
        Index("ix_retention_log_call_id", "call_id"),
        Index("ix_retention_log_action", "action"),
    )


class RetentionIntent(Base):
    """A file operation in progress: written before the file is touched, removed once it is logged."""

    __tablename__ = "retention_intents"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)  # the file removed or moved
    call_id: Mapped[str] = mapped_column(String(36))
    op: Mapped[str] = mapped_column(String(16))  # delete | move | destroy_copy
    state: Mapped[str] = mapped_column(String(16))  # started | copied (move: row points at dst)
    dst: Mapped[str | None] = mapped_column(String(1024))
    store: Mapped[str | None] = mapped_column(String(64))
    preservation_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))  # the retention_log action once done
    actor: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)  # JSON, copied into the log entry
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    node: Mapped[str] = mapped_column(String(64), default=default_node)  # whose disk `path` is on


class Preservation(Base):
    """A still-encrypted copy on a preservation medium, and its catalogue entry (Osaka form 4)."""

    __tablename__ = "preservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(36))
    medium: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)  # what the copy is, in words, for the catalogue
    call_started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    call_ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    preserved_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    preserved_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(128))
    destroyed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_preservations_call_id", "call_id"),)


class RetentionState(Base):
    """Small facts the reaper keeps between runs (the applied policy, the last pass)."""

    __tablename__ = "retention_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
