"""Deleting and moving recording files so that a crash at any instant leaves every recording either
fully present or fully gone *and logged*.

Per batch of files:
  1. one transaction writes an intent per file, re-checking each under the write lock: the call still
     points at this file, no active hold, no other operation on it;
  2. the files are unlinked (a move: copied, fsynced, renamed and checked against the catalogue hash);
  3. every directory touched is fsynced, so the change survives a power cut;
  4. one transaction updates the call rows, appends the retention log entries, removes the intents.
After a crash, ``recover`` settles each leftover intent by looking at the disk: the file is still
there → nothing happened, roll back; it is gone → finish 3-4. A move whose row already points at the
copy is finished (the original unlinked), otherwise rolled back (the partial copy removed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage import holds, retention_log
from storage.db import immediate
from storage.files import fsync_dir
from storage.models import RECORDING, Call, Preservation, RetentionIntent
from storage.nodes import default_node

Op = Literal["delete", "move", "destroy_copy"]
_COPY_SUFFIX = ".copying"


@dataclass(frozen=True, slots=True)
class Job:
    op: Op
    call_id: str
    path: Path  # the file removed (delete, destroy_copy) or moved (move), absolute
    expected: str  # what the catalogue says: calls.audio_path, or preservations.path
    action: str  # the retention_log action once done
    actor: str
    rule: str | None = None
    reference: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    dst: Path | None = None  # move: where to
    store: str | None = None  # move: the store dst belongs to
    sha256: str | None = None  # move: the hash the copy must have (the catalogue's)
    preservation_id: int | None = None  # destroy_copy
    node: str | None = None  # the recorder doing it, on whose disk ``path`` is (None: this host's name)


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    done: bool
    note: str | None = None  # why not done, or what was odd ("file was already missing")


def makedirs_durable(directory: Path) -> None:
    """mkdir -p, fsyncing each new directory's parent so the new entries survive a power cut."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)
            os.chmod(d, 0o700)
        fsync_dir(d.parent)


def copy_durably(src: Path, dst: Path) -> tuple[int, str]:
    """Copy byte for byte via ``dst.copying``, fsync, rename, fsync the directory: (size, sha256)."""
    makedirs_durable(dst.parent)
    tmp = dst.with_name(dst.name + _COPY_SUFFIX)
    digest, size = hashlib.sha256(), 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with src.open("rb") as f, os.fdopen(fd, "wb") as g:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            g.write(chunk)
            size += len(chunk)
        g.flush()
        os.fsync(g.fileno())
    os.replace(tmp, dst)
    fsync_dir(dst.parent)
    return size, digest.hexdigest()


def unlink_if_present(path: Path) -> bool:
    """Remove a file; False when it was not there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


# -- 1. claim ----------------------------------------------------------------------------------
def _blockers(s: Session, jobs: Sequence[Job], now: dt.datetime) -> list[str | None]:
    """Why each job may not go ahead (None: it may), read in a few queries for the whole batch."""
    paths = [str(j.path) for j in jobs]
    ids = {j.call_id for j in jobs}
    # Lock the calls' rows before reading their holds: a hold placed by another process or node locks
    # the same row (holds.place), so on PostgreSQL the two serialise and a hold committed first is
    # seen here (READ COMMITTED re-reads after the wait). SQLite has one writer (BEGIN IMMEDIATE above);
    # SQLAlchemy renders no FOR UPDATE there. Ordered by id, so two claimers never deadlock.
    cols = (Call.id, Call.audio_path, Call.status, Call.expires_at, Call.move_at)
    locked = select(*cols).where(Call.id.in_(ids)).order_by(Call.id).with_for_update()
    rows = {r.id: r for r in s.execute(locked)}
    busy = set(s.scalars(select(RetentionIntent.path).where(RetentionIntent.path.in_(paths))))
    held: dict[str, list[str]] = {}
    for h in holds.active(s, ids):
        held.setdefault(h.call_id, []).append(f"#{h.id} {h.kind} {h.reference}")
    copy_ids = [j.preservation_id for j in jobs if j.preservation_id is not None]
    pcols = (Preservation.id, Preservation.path, Preservation.destroyed_at)
    copies = {p.id: p for p in s.execute(select(*pcols).where(Preservation.id.in_(copy_ids)))}
    out: list[str | None] = []
    for job, path in zip(jobs, paths, strict=True):
        out.append(_blocker(job, now, path in busy, held.get(job.call_id), rows.get(job.call_id), copies))
        busy.add(path)  # the same file twice in one batch: the second waits
    return out


def _blocker(
    job: Job, now: dt.datetime, busy: bool, held: list[str] | None, row: Any, copies: dict[int, Any]
) -> str | None:
    if busy:
        return "busy: another operation on this file is in progress"
    if held:
        return "held: " + ", ".join(held)
    if job.op == "destroy_copy":
        copy = copies.get(job.preservation_id or -1)
        if copy is None or copy.destroyed_at is not None or copy.path != job.expected:
            return "the preserved copy is already destroyed"
        return None
    if row is None or row.audio_path is None or row.audio_path != job.expected:
        return "the call no longer points at this file"
    if row.status == RECORDING:
        return "still recording"
    # The reaper chose this file from a snapshot: recheck that it is still due (preserved since?).
    if job.action == "delete" and (row.expires_at is None or row.expires_at > now):
        return "no longer due"
    if job.op == "move" and (row.move_at is None or row.move_at > now):
        return "no longer due to move"
    return None


def _claim_once(
    sessions: sessionmaker[Session], jobs: Sequence[Job], now: dt.datetime
) -> tuple[list[Job], list[Outcome]]:
    claimed, refused, intents = [], [], []
    with immediate(sessions) as s:
        for job, blocker in zip(jobs, _blockers(s, jobs, now), strict=True):
            if blocker is not None:
                refused.append(Outcome(job, False, blocker))
                continue
            intents.append(
                {
                    "path": str(job.path),
                    "call_id": job.call_id,
                    "op": job.op,
                    "state": "started",
                    "dst": str(job.dst) if job.dst else None,
                    "store": job.store,
                    "preservation_id": job.preservation_id,
                    "action": job.action,
                    "actor": job.actor,
                    "rule": job.rule,
                    "reference": job.reference,
                    "detail": retention_log.dumps(dict(job.detail)),
                    "created_at": now,
                    "node": job.node or default_node(),
                }
            )
            claimed.append(job)
        if intents:
            s.execute(insert(RetentionIntent), intents)
    return claimed, refused


def claim(
    sessions: sessionmaker[Session], jobs: Sequence[Job], now: dt.datetime
) -> tuple[list[Job], list[Outcome]]:
    try:
        return _claim_once(sessions, jobs, now)
    except IntegrityError:  # another process claimed one of these files between our read and write
        claimed, refused = [], []
        for job in jobs:
            try:
                c, r = _claim_once(sessions, [job], now)
            except IntegrityError:
                c, r = [], [Outcome(job, False, "busy: another operation on this file is in progress")]
            claimed += c
            refused += r
        return claimed, refused


# -- 4. finish -----------------------------------------------------------------------------------
_INTENT = (
    RetentionIntent.path,
    RetentionIntent.call_id,
    RetentionIntent.op,
    RetentionIntent.dst,
    RetentionIntent.store,
    RetentionIntent.preservation_id,
    RetentionIntent.action,
    RetentionIntent.actor,
    RetentionIntent.rule,
    RetentionIntent.reference,
    RetentionIntent.detail,
)


def _apply(s: Session, done: Sequence[tuple[Any, str | None]], now: dt.datetime) -> None:
    """Record finished operations: the rows they change, and one retention log entry each."""
    deleted, moved, destroyed = [], [], []
    events: list[retention_log.Event] = []
    for it, note in done:
        detail = json.loads(it.detail) | {"path": it.path}
        if note:
            detail["note"] = note
        if it.op == "delete":
            deleted.append(
                {
                    "id": it.call_id,
                    "audio_path": None,
                    "audio_store": None,
                    "move_at": None,
                    "audio_deleted_at": now,
                }
            )
        elif it.op == "destroy_copy":
            destroyed.append({"id": it.preservation_id, "destroyed_at": now})
        else:  # move, step 4a: the row now points at the copy; the original goes next
            # retention_policy None: the reaper recomputes the next move for the new store.
            moved.append(
                {
                    "id": it.call_id,
                    "audio_path": it.dst,
                    "audio_store": it.store,
                    "move_at": None,
                    "retention_policy": None,
                }
            )
            detail["to"] = it.dst
        event = retention_log.Event(now, it.action, it.actor, it.call_id, it.rule, it.reference, detail)
        events.append(event)
    retention_log.append_many(s, events)
    for model, values in ((Call, deleted), (Call, moved), (Preservation, destroyed)):
        if values:
            s.execute(update(model), values)  # by primary key, one statement per batch


def _settle(sessions: sessionmaker[Session], outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    with immediate(sessions) as s:
        paths = [str(o.job.path) for o in outcomes]
        intents = {r.path: r for r in s.execute(select(*_INTENT).where(RetentionIntent.path.in_(paths)))}
        done: list[tuple[Any, str | None]] = []
        copied: list[str] = []
        dropped: list[str] = []
        for o in outcomes:
            it = intents.get(str(o.job.path))
            if it is None:
                continue
            if o.done:
                done.append((it, o.note))
            (copied if o.done and it.op == "move" else dropped).append(it.path)
        _apply(s, done, now)
        if copied:
            s.execute(update(RetentionIntent).where(RetentionIntent.path.in_(copied)).values(state="copied"))
        if dropped:
            s.execute(delete(RetentionIntent).where(RetentionIntent.path.in_(dropped)))


# -- the two operations --------------------------------------------------------------------------
def remove(sessions: sessionmaker[Session], jobs: Sequence[Job], now: dt.datetime) -> list[Outcome]:
    """Delete files (op delete or destroy_copy) under the intent protocol; one outcome per job."""
    claimed, outcomes = claim(sessions, jobs, now)
    results, dirs = [], set()
    for job in claimed:
        try:
            present = unlink_if_present(job.path)
        except OSError as exc:
            results.append(Outcome(job, False, f"cannot delete: {exc.strerror or exc}"))
            continue
        results.append(Outcome(job, True, None if present else "file was already missing"))
        dirs.add(job.path.parent)
    for d in sorted(dirs):
        fsync_dir(d)
    _settle(sessions, results, now)
    return outcomes + results


def move(sessions: sessionmaker[Session], jobs: Sequence[Job], now: dt.datetime) -> list[Outcome]:
    """Move files to another store (copy, verify, switch the row, unlink); one outcome per job."""
    claimed, outcomes = claim(sessions, jobs, now)
    results = []
    for job in claimed:
        assert job.dst is not None
        try:
            _size, digest = copy_durably(job.path, job.dst)
            if job.sha256 is not None and digest != job.sha256:
                unlink_if_present(job.dst)
                results.append(Outcome(job, False, "the file differs from its catalogue hash: not moved"))
                continue
        except OSError as exc:
            unlink_if_present(job.dst.with_name(job.dst.name + _COPY_SUFFIX))
            results.append(Outcome(job, False, f"cannot copy: {exc.strerror or exc}"))
            continue
        results.append(Outcome(job, True))
    _settle(sessions, results, now)
    _drop_originals(sessions, [o.job for o in results if o.done])
    return outcomes + results


def _drop_originals(sessions: sessionmaker[Session], jobs: Sequence[Job]) -> None:
    """Move, step 5: the rows point at the copies; unlink the originals, then forget the intents."""
    dirs = set()
    for job in jobs:
        unlink_if_present(job.path)
        dirs.add(job.path.parent)
    for d in sorted(dirs):
        fsync_dir(d)
    with immediate(sessions) as s:
        for job in jobs:
            intent = s.get(RetentionIntent, str(job.path))
            if intent is not None:
                s.delete(intent)


# -- after a crash -------------------------------------------------------------------------------
def recover(
    sessions: sessionmaker[Session],
    now: dt.datetime,
    *,
    older_than: dt.datetime | None = None,
    node: str | None = None,
) -> list[tuple[RetentionIntent, str]]:
    """Settle the intents an interrupted process left: (intent, what was done) for each.

    At start-up every intent is settled; later only those created before ``older_than`` (an
    operation takes milliseconds, so an old intent belongs to a process that died, e.g. a killed
    ``recorderctl calls delete``; a young one may be another process at work right now).
    ``node``: only the intents this recorder wrote; another node's paths are on its own disk, where
    a file "missing" here says nothing.
    """
    q = select(RetentionIntent).order_by(RetentionIntent.created_at)
    if node is not None:
        q = q.where(RetentionIntent.node == node)
    if older_than is not None:
        q = q.where(RetentionIntent.created_at < older_than)
    with sessions() as s:
        intents = list(s.scalars(q))
        s.expunge_all()
    settled = []
    for it in intents:
        path = Path(it.path)
        if it.op == "move":
            if it.state == "copied":
                unlink_if_present(path)
                _fsync_if_dir(path.parent)
                verdict = "move finished: original removed"
            else:
                assert it.dst is not None
                dst = Path(it.dst)
                unlink_if_present(dst)
                unlink_if_present(dst.with_name(dst.name + _COPY_SUFFIX))
                _fsync_if_dir(dst.parent)
                verdict = "move rolled back: partial copy removed, original kept"
            with immediate(sessions) as s:
                _forget(s, it.path)
        elif path.exists():
            verdict = "rolled back: the file was never removed"
            with immediate(sessions) as s:
                _forget(s, it.path)
        else:
            _fsync_if_dir(path.parent)
            verdict = "finished: the file was removed before the interruption"
            with immediate(sessions) as s:
                intent = s.get(RetentionIntent, it.path)
                if intent is not None:
                    _apply(s, [(intent, "completed at start-up after an interruption")], now)
                    s.delete(intent)
        settled.append((it, verdict))
    return settled


def _forget(s: Session, path: str) -> None:
    intent = s.get(RetentionIntent, path)
    if intent is not None:
        s.delete(intent)


def _fsync_if_dir(directory: Path) -> None:
    if directory.is_dir():
        fsync_dir(directory)


def purge_rows(
    sessions: sessionmaker[Session], call_ids: Sequence[str], now: dt.datetime, *, actor: str, rule: str
) -> list[str]:
    """Delete call rows whose metadata retention ended (audio already gone, nothing held).

    Each row is re-checked under the write lock, all in a few queries per batch (a policy change can
    make a year of rows due at once)."""
    with immediate(sessions) as s:
        cols = (Call.id, Call.audio_path, Call.status, Call.started_at, Call.line, Call.direction,
                Call.audio_deleted_at, Call.metadata_expires_at)  # fmt: skip
        rows = {r.id: r for r in s.execute(select(*cols).where(Call.id.in_(call_ids)))}
        held = {h.call_id for h in holds.active(s, rows)}
        busy = set(s.scalars(select(RetentionIntent.call_id).where(RetentionIntent.call_id.in_(rows))))
        purged, events = [], []
        for call_id in call_ids:
            row = rows.get(call_id)
            if row is None or row.audio_path is not None or row.status == RECORDING:
                continue
            if call_id in held or call_id in busy:
                continue
            # No party numbers in the log: the point of purging is that they are gone.
            detail = {
                "started_at": row.started_at,
                "line": row.line,
                "direction": row.direction,
                "status": row.status,
                "audio_deleted_at": row.audio_deleted_at,
                "metadata_expires_at": row.metadata_expires_at,
            }
            events.append(retention_log.Event(now, "purge_metadata", actor, call_id, rule, None, detail))
            purged.append(call_id)
        retention_log.append_many(s, events)
        if purged:
            s.execute(delete(Call).where(Call.id.in_(purged)))
    return purged
