"""The retention log: one append-only row per deletion, move, hold, release, preservation, policy change.

It is what ``recorderctl retention report`` prints (R5: "every deletion is logged with what, when and
which rule"). Rows are never updated or deleted and carry everything they describe (no foreign
keys), so they outlive the call rows; the ledger (storage/ledger.py) can chain them in ``id`` order.
Also here: the reaper's few persistent facts (``retention_state``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from storage import ledger
from storage.models import RetentionEvent, RetentionState

# What ends a recording's audio; the report lists these by default.
DELETIONS = ("delete", "request_delete", "destroy_copy", "purge_metadata")
ACTIONS = (
    *DELETIONS,
    "move",
    "hold",
    "release",
    "preserve",
    "request_refused",
    "policy_change",
    "clock_confirmed",
)


def dumps(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, default=_plain)


def _plain(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


@dataclass(frozen=True)
class Event:
    """One entry to log (``append_many``)."""

    at: dt.datetime
    action: str
    actor: str
    call_id: str | None = None
    rule: str | None = None
    reference: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def append(
    session: Session,
    *,
    at: dt.datetime,
    action: str,
    actor: str,
    call_id: str | None = None,
    rule: str | None = None,
    reference: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one entry inside the caller's transaction (so the entry and the change commit together)."""
    append_many(session, [Event(at, action, actor, call_id, rule, reference, dict(detail or {}))])


def append_many(session: Session, events: Sequence[Event]) -> None:
    """Add entries in order inside the caller's transaction, each also chained into the ledger
    (issue 4: R4/R8 tamper evidence): one INSERT for each table, however many entries."""
    for e in events:
        if e.action not in ACTIONS:
            raise ValueError(f"unknown retention action {e.action!r}")
    if not events:
        return
    rows, chained = [], []
    for e in events:
        text = dumps(e.detail)
        where = {k: v for k, v in vars(e).items() if k != "detail"}  # the columns besides detail
        rows.append(where | {"detail": text})
        # The ledger hashes the detail as stored (datetimes as ISO text), so it reads back the same.
        chained.append(ledger.retention_entry(**where, detail=json.loads(text)))
    session.execute(insert(RetentionEvent), rows)
    ledger.append_many(session, chained)


def entries(
    session: Session,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    actions: Sequence[str] | None = None,
    call_id: str | None = None,
) -> list[RetentionEvent]:
    """Entries with ``start <= at < end``, oldest first."""
    q = select(RetentionEvent)
    if start is not None:
        q = q.where(RetentionEvent.at >= start)
    if end is not None:
        q = q.where(RetentionEvent.at < end)
    if actions is not None:
        q = q.where(RetentionEvent.action.in_(actions))
    if call_id is not None:
        q = q.where(RetentionEvent.call_id == call_id)
    return list(session.scalars(q.order_by(RetentionEvent.id)))


def get_state(session: Session, key: str) -> str | None:
    row = session.get(RetentionState, key)
    return row.value if row is not None else None


def set_state(session: Session, key: str, value: str) -> None:
    row = session.get(RetentionState, key)
    if row is None:
        session.add(RetentionState(key=key, value=value))
    else:
        row.value = value


def get_time(session: Session, key: str) -> dt.datetime | None:
    value = get_state(session, key)
    return dt.datetime.fromisoformat(value) if value else None


def set_time(session: Session, key: str, value: dt.datetime) -> None:
    set_state(session, key, value.astimezone(dt.UTC).isoformat())
