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
from typing import Any

from sqlalchemy import select
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
) -> RetentionEvent:
    """Add one entry inside the caller's transaction (so the entry and the change commit together)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown retention action {action!r}")
    entry = RetentionEvent(
        at=at,
        action=action,
        actor=actor,
        call_id=call_id,
        rule=rule,
        reference=reference,
        detail=dumps(detail or {}),
    )
    session.add(entry)
    # The same event in the hash-chained ledger, same transaction (issue 4: R4/R8 tamper evidence).
    ledger.retention_event(session, at=at, action=action, actor=actor, call_id=call_id, rule=rule,
                           reference=reference, detail=json.loads(entry.detail))  # fmt: skip
    return entry


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
