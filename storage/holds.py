"""Holds: typed, referenced reasons to keep a call's recording past its expiry (R5, R9).

A held call is never deleted, moved or purged, by the reaper or on request, whatever the disk says.
Several holds may cover one call; each is released explicitly, and every placement and release is
written to the retention log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session

from storage import retention_log
from storage.models import HOLD_KINDS, Call, Hold


class HoldError(Exception):
    pass


def is_held() -> ColumnElement[bool]:
    """SQL condition: the ``calls`` row in the query has at least one active hold."""
    return exists().where(and_(Hold.call_id == Call.id, Hold.released_at.is_(None)))


def place(
    session: Session,
    call_id: str,
    *,
    kind: str,
    reference: str,
    reason: str,
    by: str,
    at: dt.datetime,
) -> Hold:
    if kind not in HOLD_KINDS:
        raise HoldError(f"unknown hold kind {kind!r}; one of {', '.join(HOLD_KINDS)}")
    if not reference.strip() or not reason.strip() or not by.strip():
        raise HoldError("a hold needs a reference, a reason and who places it")
    # The call's row lock: a deletion claim (storage/erase.py) locks it before it reads the holds, so a
    # hold and a deletion of the same call never interleave, whichever process or node runs each.
    call = session.get(Call, call_id, with_for_update=True)
    if call is None:
        raise HoldError(f"no call {call_id!r}")
    hold = Hold(call_id=call_id, kind=kind, reference=reference, reason=reason, placed_by=by, placed_at=at)
    session.add(hold)
    call.held = True  # the search's flag (migration 0005), in the same transaction as the hold
    session.flush()  # the id, for the log and the operator
    retention_log.append(
        session,
        at=at,
        action="hold",
        actor=by,
        call_id=call_id,
        reference=reference,
        rule=f"hold {kind}",
        detail={
            "hold_id": hold.id,
            "kind": kind,
            "reason": reason,
            "audio_present": call.audio_path is not None,
        },
    )
    return hold


def release(session: Session, hold_id: int, *, by: str, reason: str, at: dt.datetime) -> Hold:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise HoldError(f"no hold {hold_id}")
    if hold.released_at is not None:
        raise HoldError(
            f"hold {hold_id} was already released on {hold.released_at:%Y-%m-%d} by {hold.released_by}"
        )
    if not reason.strip() or not by.strip():
        raise HoldError("a release needs a reason and who releases it")
    call = session.get(Call, hold.call_id, with_for_update=True)  # the same lock as place()
    hold.released_at, hold.released_by, hold.release_reason = at, by, reason
    session.flush()
    if call is not None:  # the flag stays while another hold still covers the call
        call.held = bool(active(session, [call.id]))
    retention_log.append(
        session,
        at=at,
        action="release",
        actor=by,
        call_id=hold.call_id,
        reference=hold.reference,
        rule=f"hold {hold.kind}",
        detail={"hold_id": hold.id, "kind": hold.kind, "reason": reason, "placed_at": hold.placed_at},
    )
    return hold


def active(session: Session, call_ids: Iterable[str]) -> list[Hold]:
    ids = list(call_ids)
    q = select(Hold).where(Hold.call_id.in_(ids), Hold.released_at.is_(None)).order_by(Hold.id)
    return list(session.scalars(q))


def listing(
    session: Session,
    *,
    include_released: bool = False,
    call_id: str | None = None,
    reference: str | None = None,
) -> list[Hold]:
    q = select(Hold)
    if not include_released:
        q = q.where(Hold.released_at.is_(None))
    if call_id is not None:
        q = q.where(Hold.call_id == call_id)
    if reference is not None:
        q = q.where(Hold.reference == reference)
    return list(session.scalars(q.order_by(Hold.id)))
