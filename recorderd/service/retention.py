"""Holds, deletion requests, preservation and the retention views, through the door.

Each change is written to the retention log and the ledger in the same transaction as the change
itself (storage/retention_log.py), under the signed-in person's ID: a hold, a release, a deletion
cannot happen without its entry, and never under a name typed on the command line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from recorderd.dates import local_days
from recorderd.errors import AccessError
from recorderd.numbers import normalise
from recorderd.people.users import Actor
from recorderd.records.audio import call_path
from recorderd.retention.engine import Retention
from recorderd.retention.report import catalogue as catalogue_lines
from recorderd.retention.report import plan as plan_lines
from recorderd.retention.report import report as report_lines
from recorderd.retention.requester import RELATIONS, Requester
from recorderd.service.door import Service
from storage import erase, holds, retention_log
from storage.catalog import get_call, list_calls
from storage.db import immediate
from storage.models import Call, Hold, Preservation
from storage.preserve import Request, live_copies, preserve

__all__ = [
    "RELATIONS",
    "Deletion",
    "Preserved",
    "Requester",
    "add_holds",
    "catalogue",
    "confirm_clock",
    "delete",
    "list_holds",
    "plan",
    "preserve_call",
    "release_holds",
    "report",
]


def _call(s: Session, ident: str) -> Call:
    row = get_call(s, ident)
    if row is None:
        raise AccessError(f"no call {ident!r}")
    return row


# -- holds -----------------------------------------------------------------------------------------
def add_holds(
    svc: Service,
    who: Actor,
    *,
    calls: Sequence[str] = (),
    number: str | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
    kind: str,
    reference: str,
    reason: str,
) -> list[Hold]:
    """Hold the calls named, or every call with ``number`` between two local dates."""
    with svc.door(who, "holds.add"):
        now = svc.clock()
        with immediate(svc.sessions) as s:
            if number:
                wanted = normalise(number)
                if wanted is None or first is None or last is None or calls:
                    raise AccessError("a number needs a telephone number, --from and --to, and no call IDs")
                start, end = local_days(first, last, svc.config.zone)
                ids = [c.id for c in list_calls(s, start=start, end=end, number=wanted, limit=100_000)]
            elif calls:
                ids = [_call(s, i).id for i in calls]  # all found, or nothing is held
            else:
                raise AccessError("name the calls: IDs, or --number with --from and --to")
            return [
                holds.place(s, i, kind=kind, reference=reference, reason=reason, by=who.id, at=now)
                for i in ids
            ]


def release_holds(
    svc: Service, who: Actor, *, hold_ids: Sequence[int] = (), reference: str | None = None, reason: str
) -> list[Hold]:
    with svc.door(who, "holds.release"):
        now = svc.clock()
        with immediate(svc.sessions) as s:
            if reference:
                ids = [h.id for h in holds.listing(s, reference=reference)]
                if not ids:
                    raise AccessError(f"no active hold with reference {reference!r}")
            else:
                ids = list(hold_ids)
            if not ids:
                raise AccessError("name the holds: HOLD_ID..., or --ref REF")
            return [holds.release(s, int(i), by=who.id, reason=reason, at=now) for i in ids]


def list_holds(
    svc: Service,
    who: Actor,
    *,
    include_released: bool = False,
    call: str | None = None,
    reference: str | None = None,
) -> list[Hold]:
    with svc.door(who, "holds.list") as t:
        with svc.sessions() as s:
            call_id = _call(s, call).id if call else None
        detail = {"what": "holds", "released_too": include_released, "reference": reference}
        t.grant("viewed", call_id=call_id, detail=detail)
        with svc.sessions() as s:
            return holds.listing(s, include_released=include_released, call_id=call_id, reference=reference)


# -- deletion requests and preservation -----------------------------------------------------------
@dataclass(frozen=True)
class Deletion:
    call_id: str
    done: bool
    note: str  # why it was refused, or what the deletion noticed


def delete(
    svc: Service, who: Actor, call: str, *, request: str, reason: str, requester: Requester
) -> Deletion:
    """A caller's deletion request (Osaka 6-3): delete now unless a hold or a preservation applies.
    A refusal is itself logged (``deletion_refused``) with what stood in the way. Either way the entry
    names who asked (form 2's 申請者), as the signed-in person's is who acted."""
    with svc.door(who, "calls.delete"):
        if not request.strip() or not reason.strip():
            raise AccessError("a deletion needs the request's reference and a reason")
        asked_by = requester.validated().detail()
        now, zone = svc.clock(), svc.config.zone
        with svc.sessions() as s:
            row = _call(s, call)
            held = holds.active(s, [row.id])
            copies = live_copies(s, row.id)
        blocker: str | None = None
        if held:
            blocker = "held: " + "; ".join(
                f"#{h.id} {h.kind} {h.reference} ({h.reason}, by {h.placed_by} "
                f"{h.placed_at.astimezone(zone):%Y-%m-%d})"
                for h in held
            )
        elif copies:
            blocker = "preserved: " + "; ".join(f"entry {c.id} on {c.medium} ({c.reason})" for c in copies)
        elif row.audio_path is None:
            blocker = f"no audio to delete (deleted {row.audio_deleted_at or 'never recorded'})"
        if blocker is None and row.audio_path is not None:
            path = call_path(row, svc.config)  # another node's file out of reach: refused, named
            job = erase.Job(
                "delete",
                row.id,
                path,
                row.audio_path,
                "request_delete",
                who.id,
                rule=f"deletion request {request}",
                reference=request,
                detail={
                    "reason": reason,
                    "requester": asked_by,
                    "started_at": row.started_at,
                    "line": row.line,
                    "sha256": row.audio_sha256,
                    "bytes": row.audio_bytes,
                    "expires_at": row.expires_at,
                },
                node=svc.config.node,
            )
            [outcome] = erase.remove(svc.sessions, [job], now)
            if outcome.done:
                return Deletion(row.id, True, outcome.note or "")
            blocker = outcome.note or "not deleted"
        with immediate(svc.sessions) as s:
            retention_log.append(
                s,
                at=now,
                action="request_refused",
                actor=who.id,
                call_id=row.id,
                rule=f"deletion request {request}",
                reference=request,
                detail={"reason": reason, "requester": asked_by, "refused": blocker},
            )
        return Deletion(row.id, False, blocker or "not deleted")


@dataclass(frozen=True)
class Preserved:
    entry: Preservation
    medium: str
    until: dt.datetime


def preserve_call(
    svc: Service,
    who: Actor,
    call: str,
    *,
    reason: str,
    medium: str | None = None,
    reference: str | None = None,
) -> Preserved:
    """Copy a call, still encrypted, to the preservation store, with its catalogue entry."""
    with svc.door(who, "calls.preserve"):
        config = svc.config
        pres = config.retention.preservation
        if pres is None:
            raise AccessError("no preservation store configured ([retention.preservation] dir and policy)")
        now, zone = svc.clock(), config.zone
        with svc.sessions() as s:
            row = _call(s, call)
        # The copy's own clock; the call's own audio keeps its expiry (issue 11).
        until = Retention(config, svc.sessions).copy_expiry(row.started_at, now)
        assert until is not None  # a preservation store is configured
        # No party numbers: the catalogue line is also written, in clear, on the medium itself.
        end = f"-{row.ended_at.astimezone(zone):%H:%M}" if row.ended_at else ""
        started = row.started_at.astimezone(zone)
        content = f"{row.direction} call, line {row.line or '-'}, {started:%Y-%m-%d %H:%M}{end}"
        label = medium or pres.medium
        if not label:
            raise AccessError("name the medium: --medium LABEL (or [retention.preservation] medium)")
        req = Request(row.id, label, content, who.id, reason, reference, pres.policy, until)
        # The recording may be held by another node: its data directory as seen from here, or a
        # refusal naming that node.
        source = call_path(row, config) if row.audio_path is not None else None
        root = config.data_dir if source is None else config.node_data_dir(row.node) or config.data_dir
        entry = preserve(svc.sessions, req, data_dir=root, store_dir=pres.dir, now=now)
        return Preserved(entry, label, until)


# -- views -----------------------------------------------------------------------------------------
def plan(svc: Service, who: Actor, *, until: dt.date | None = None, calls: bool = False) -> list[str]:
    with svc.door(who, "retention.plan") as t:
        now = svc.clock()
        end = (
            dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), svc.config.zone)
            if until
            else now + dt.timedelta(days=31)
        )
        t.grant("viewed", detail={"what": "retention plan", "until": end.isoformat(), "calls": calls})
        with svc.sessions() as s:
            return plan_lines(svc.config, Retention(svc.config, svc.sessions), s, now, end, calls=calls)


def report(svc: Service, who: Actor, first: dt.date, last: dt.date, *, everything: bool = False) -> list[str]:
    with svc.door(who, "retention.report") as t:
        t.grant("viewed", detail={"what": "retention report", "from": str(first), "to": str(last)})
        start, end = local_days(first, last, svc.config.zone)
        with svc.sessions() as s:
            return report_lines(svc.config, s, start, end, everything=everything)


def catalogue(
    svc: Service, who: Actor, *, medium: str | None = None, destroyed_too: bool = False
) -> list[str]:
    with svc.door(who, "retention.catalogue") as t:
        t.grant("viewed", detail={"what": "preservation catalogue", "medium": medium})
        with svc.sessions() as s:
            q = s.query(Preservation).order_by(Preservation.id)
            if medium:
                q = q.filter(Preservation.medium == medium)
            if not destroyed_too:
                q = q.filter(Preservation.destroyed_at.is_(None))
            return catalogue_lines(svc.config, q.all())


def confirm_clock(svc: Service, who: Actor) -> dt.datetime:
    """After a clock-jump alert, once a person has checked the clock: the reaper deletes again."""
    with svc.door(who, "retention.confirm_clock"):
        now = svc.clock()
        with immediate(svc.sessions) as s:
            retention_log.set_time(s, "clock_confirmed_at", now)
            retention_log.append(
                s,
                at=now,
                action="clock_confirmed",
                actor=who.id,
                rule="operator",
                detail={"confirmed_at": now},
            )
        return now
