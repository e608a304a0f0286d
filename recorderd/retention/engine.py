"""The reaper's work, as bounded synchronous steps (each runs in a worker thread; see reaper.py).

No clock in here: every step takes ``now``. Order within a pass (reaper.py): policy change and
expiries for new rows, safety checks, then deletions, moves, preserved copies and the metadata purge,
each in batches of ``retention.batch_size`` with a keyset cursor (so a row that cannot be handled
now is not retried forever within the pass).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.retention.rules import fingerprint, line_policies
from storage import erase, retention_log
from storage.db import immediate
from storage.holds import is_held
from storage.models import RECORDING, Base, Call, Hold, Preservation
from storage.retention import PRIMARY, Policy, Schedule, describe_period, describe_policy, schedule

log = structlog.get_logger("recorderd.reaper")

REAPER = "reaper"
Cursor = tuple[dt.datetime, str] | None
CALL_COLUMNS = (
    Call.id,
    Call.line,
    Call.started_at,
    Call.audio_path,
    Call.audio_store,
    Call.audio_deleted_at,
    Call.preserved_at,
    Call.expires_at,
    Call.move_at,
    Call.retention_policy,
    Call.audio_sha256,
    Call.audio_bytes,
    Call.metadata_expires_at,
)
_METADATA = "\0metadata"  # the metadata period, cached like a policy
_T = Base.metadata.tables["calls"]
# One statement per batch (executemany), not one ORM flush per row: 100,000 rows in seconds.
_UPDATE = (
    update(_T)
    .where(_T.c.id == bindparam("b_id"))
    .values({k: bindparam(k) for k in ("retention_policy", "expires_at", "move_at", "metadata_expires_at")})
)


@dataclass
class PolicyChange:
    fingerprint: str
    document: str
    changed_at: dt.datetime
    before: dict[str, int]
    changed: int = 0
    earlier: int = 0
    later: int = 0
    deferred: int = 0  # made due sooner than the grace period allows: deferred to its end


@dataclass
class BatchResult:
    outcomes: list[erase.Outcome] = field(default_factory=list)
    cursor: Cursor = None
    more: bool = False
    skipped: int = 0  # due but not attempted (e.g. a store no longer configured)


class Retention:
    """Retention for one configuration: computes expiries and selects and applies due work."""

    def __init__(self, config: Config, sessions: sessionmaker[Session]) -> None:
        self.config = config
        self.sessions = sessions
        self.node = config.node  # deletions and moves: only the files this recorder holds
        self._lines = line_policies(config)
        self.batch = config.retention.batch_size
        ret = config.retention
        self._policies = {name: ret.policy(name) for name in ret.policies}
        if ret.metadata is not None:
            self._policies[_METADATA] = Policy(_METADATA, ret.metadata.period())
        self._cache: dict[tuple[str, dt.date, bool], Schedule] = {}

    # -- what a row's retention is -------------------------------------------------------------
    def policy_name(self, line: str | None) -> str | None:
        """The policy of a call's own audio. A preserved or exported copy is a separate object with
        its own expiry (``preservations.expires_at``, the export's ``keep_until``): it never changes
        this one (issue 11)."""
        return self._lines.get(line, self.config.retention.default)

    def rule_text(self, name: str | None) -> str:
        if not name:
            return "no retention policy: kept"
        if name not in self._policies:
            return f"policy {name} (no longer configured)"
        pol = self.config.retention.policies[name]
        since = "the preservation" if pol.anchor == "preservation" else "the recording"
        text = describe_policy(self._policies[name], since)
        return f"policy {name}: {text}" + (f" ({pol.basis})" if pol.basis else "")

    def _schedule(self, name: str, anchor: dt.datetime) -> Schedule:
        # Every rule depends on the anchor's local day only: compute once per policy and day.
        local = anchor.astimezone(self.config.zone)
        key = (name, local.date(), local.time() == dt.time())  # 00:00 counts its day (民法第140条)
        sched = self._cache.get(key)
        if sched is None:
            fy = self.config.retention.fiscal_year_start_month
            sched = schedule(self._policies[name], anchor, self.config.zone, fiscal_year_start_month=fy)
            self._cache[key] = sched
        return sched

    def copy_expiry(self, started_at: dt.datetime, made_at: dt.datetime) -> dt.datetime | None:
        """When a preserved copy made at ``made_at`` is due: its own clock, from the day it is made
        (``anchor = "preservation"``) or, if the profile says so, from the recording."""
        pres = self.config.retention.preservation
        if pres is None:
            return None
        anchor = (
            made_at if self.config.retention.policies[pres.policy].anchor == "preservation" else started_at
        )
        return self._schedule(pres.policy, anchor).expires_at

    def schedule_for(self, line: str | None, started_at: dt.datetime) -> Schedule | None:
        name = self._lines.get(line, self.config.retention.default)
        return self._schedule(name, started_at) if name else None

    def compute(self, r: Any) -> dict[str, Any]:
        """The retention columns for one call row (line, started_at, audio_*, preserved_at, expires_at)."""
        ret = self.config.retention
        name = self.policy_name(r.line)
        meta = self._schedule(_METADATA, r.started_at).expires_at if ret.metadata else None
        values: dict[str, Any] = {
            "retention_policy": name or "",
            "metadata_expires_at": meta,
            "expires_at": None,
            "move_at": None,
        }
        if r.audio_deleted_at is not None:
            values["expires_at"] = r.expires_at  # keep the expiry it was deleted under
            return values
        if not name or r.audio_path is None:
            return values
        sched = self._schedule(name, r.started_at)
        values["expires_at"] = sched.expires_at
        store = r.audio_store or PRIMARY
        if sched.move_after(store) is not None:
            values["move_at"] = sched.until_for(store)
        return values

    # -- safety --------------------------------------------------------------------------------
    def safety(self, now: dt.datetime) -> tuple[str, dict[str, Any]] | None:
        """Why deleting now would be unsafe (alert kind, details), or None."""
        with self.sessions() as s:
            newest = s.scalar(select(func.max(Call.started_at)))
            last_pass = retention_log.get_time(s, "last_pass_at")
            confirmed = retention_log.get_time(s, "clock_confirmed_at")
            mine = and_(Call.audio_path.is_not(None), Call.node == self.node)
            any_audio = s.scalar(select(Call.id).where(mine).limit(1))
        known = [t for t in (newest, last_pass, confirmed) if t is not None]
        if known:
            reference = max(known)
            limit = dt.timedelta(hours=self.config.retention.max_clock_jump_h)
            if now - reference > limit:
                return "retention_clock_jump", {
                    "now": now,
                    "newest_known": reference,
                    "limit_h": self.config.retention.max_clock_jump_h,
                    "fix": "check the clock; if it is right: recorderctl retention confirm-clock",
                }
        if any_audio is None and _any_file(self.config.data_dir / "recordings"):
            return "retention_catalogue_empty", {
                "data_dir": str(self.config.data_dir),
                "fix": "the database may have been replaced or lost; restore it before anything is deleted",
            }
        return None

    # -- policy changes and expiries -------------------------------------------------------------
    def begin_change(self, now: dt.datetime) -> PolicyChange | None:
        fp, doc = fingerprint(self.config)
        with immediate(self.sessions) as s:
            if retention_log.get_state(s, "policy_fingerprint") == fp:
                return None
            if retention_log.get_state(s, "policy_pending") != fp:  # else: resume an interrupted one
                retention_log.set_state(s, "policy_pending", fp)
                retention_log.set_time(s, "policy_changed_at", now)
            changed_at = retention_log.get_time(s, "policy_changed_at") or now
            return PolicyChange(fp, doc, changed_at, self._counts(s, now))

    def _counts(self, s: Session, now: dt.datetime) -> dict[str, int]:
        live = Call.audio_path.is_not(None)
        return {
            "with_audio": s.scalar(select(func.count()).where(live)) or 0,
            "due_now": s.scalar(select(func.count()).where(live, Call.expires_at <= now)) or 0,
            "kept_forever": s.scalar(select(func.count()).where(live, Call.retention_policy == "")) or 0,
        }

    def assign_batch(self, now: dt.datetime, after: str | None, change: PolicyChange | None) -> str | None:
        """Compute retention for one batch of rows (all rows when ``change``); returns the cursor."""
        q = select(*CALL_COLUMNS).where(Call.status != RECORDING).order_by(Call.id).limit(self.batch * 5)
        if change is None:
            q = q.where(Call.retention_policy.is_(None))
        if after is not None:
            q = q.where(Call.id > after)
        floor, grace = None, self.config.retention.policy_change_grace_h
        if change is not None and grace > 0:
            floor = change.changed_at + dt.timedelta(hours=grace)
        with immediate(self.sessions) as s:
            rows = s.execute(q).all()
            updates = []
            for r in rows:
                values = self.compute(r)
                if change is not None:
                    self._compare(change, r, values, floor)
                    if all(getattr(r, k) == v for k, v in values.items()):
                        continue  # unchanged: no write
                updates.append(values | {"b_id": r.id})
            if updates:
                s.execute(_UPDATE, updates)
        return rows[-1].id if rows else None

    @staticmethod
    def _compare(change: PolicyChange, r: Any, values: dict[str, Any], floor: dt.datetime | None) -> None:
        old, new = r.expires_at, values.get("expires_at", r.expires_at)
        if new is not None and floor is not None and (old is None or new < old):
            # A change (or a first policy) must not delete at once what it newly makes due: the
            # operator gets the grace period to see the alert and the plan, and to place holds.
            capped = max(new, floor if old is None else min(old, floor))
            if capped != new:
                change.deferred += 1
                values["expires_at"] = new = capped
        if new != old:
            change.changed += 1
            if old is not None and new is not None:
                change.earlier += new < old
                change.later += new > old

    def end_change(self, now: dt.datetime, change: PolicyChange) -> dict[str, Any]:
        with immediate(self.sessions) as s:
            after = self._counts(s, now)
            detail = {
                "fingerprint": change.fingerprint,
                "before": change.before,
                "after": after,
                "changed": change.changed,
                "earlier": change.earlier,
                "later": change.later,
                "deferred": change.deferred,
                "changed_at": change.changed_at,
                "grace_h": self.config.retention.policy_change_grace_h,
                "policies": change.document,
            }
            previous = retention_log.get_state(s, "policy_fingerprint")
            detail["previous_fingerprint"] = previous
            retention_log.append(
                s, at=now, action="policy_change", actor=REAPER, rule="configuration", detail=detail
            )
            retention_log.set_state(s, "policy_fingerprint", change.fingerprint)
            retention_log.set_state(s, "policy_pending", "")
        return detail

    # -- due work ----------------------------------------------------------------------------------
    def delete_batch(self, now: dt.datetime, cursor: Cursor) -> BatchResult:
        mine = and_(Call.audio_path.is_not(None), Call.node == self.node)
        live = and_(mine, Call.status != RECORDING, ~is_held())
        rows = self._due(Call.expires_at, live, now, cursor)
        jobs = []
        for r in rows:
            jobs.append(
                erase.Job(
                    "delete",
                    r.id,
                    self._abs(r.audio_path),
                    r.audio_path,
                    "delete",
                    REAPER,
                    rule=self.rule_text(r.retention_policy),
                    detail=_facts(r),
                    node=self.node,
                )
            )
        result = BatchResult(erase.remove(self.sessions, jobs, now) if jobs else [])
        return _advance(result, rows, "expires_at", self.batch)

    def move_batch(self, now: dt.datetime, cursor: Cursor) -> BatchResult:
        not_due = or_(Call.expires_at.is_(None), Call.expires_at > now)
        mine = and_(Call.audio_path.is_not(None), Call.node == self.node)
        live = and_(mine, Call.status != RECORDING, not_due, ~is_held())
        rows = self._due(Call.move_at, live, now, cursor)
        jobs, skipped = [], 0
        stores = self.config.retention.stores
        for r in rows:
            sched = self.schedule_for(r.line, r.started_at)
            nxt = sched.move_after(r.audio_store or PRIMARY) if sched else None
            src_root = self.config.retention.store_dir(r.audio_store, self.config.data_dir)
            src = self._abs(r.audio_path)
            if nxt is None or nxt.store not in stores or not src.is_relative_to(src_root):
                skipped += 1
                log.warning("move_skipped", call_id=r.id, store=r.audio_store, reason="no such tier or store")
                continue
            dst = stores[nxt.store] / src.relative_to(src_root)
            jobs.append(
                erase.Job(
                    "move",
                    r.id,
                    src,
                    r.audio_path,
                    "move",
                    REAPER,
                    rule=self.rule_text(r.retention_policy),
                    detail=_facts(r) | {"from": r.audio_store or PRIMARY, "store": nxt.store},
                    dst=dst,
                    store=nxt.store,
                    sha256=r.audio_sha256,
                    node=self.node,
                )
            )
        result = BatchResult(erase.move(self.sessions, jobs, now) if jobs else [], skipped=skipped)
        return _advance(result, rows, "move_at", self.batch)

    def copy_batch(self, now: dt.datetime) -> tuple[BatchResult, list[Preservation]]:
        """Preserved copies past their date: destroyed if the medium is mounted, else reported."""
        held = (
            select(Hold.id).where(Hold.call_id == Preservation.call_id, Hold.released_at.is_(None)).exists()
        )
        q = (
            select(Preservation)
            .where(Preservation.destroyed_at.is_(None), Preservation.expires_at <= now, ~held)
            .order_by(Preservation.expires_at, Preservation.id)
            .limit(1000)
        )
        with self.sessions() as s:
            copies = list(s.scalars(q))
            s.expunge_all()
        present = [c for c in copies if Path(c.path).exists()]
        jobs = [
            erase.Job(
                "destroy_copy",
                c.call_id,
                Path(c.path),
                c.path,
                "destroy_copy",
                REAPER,
                rule=f"preservation {c.medium}: kept until {c.expires_at:%Y-%m-%d %H:%M}Z",
                detail={"medium": c.medium, "sha256": c.sha256, "entry": c.id},
                preservation_id=c.id,
                node=self.node,
            )
            for c in present
        ]
        result = BatchResult(erase.remove(self.sessions, jobs, now) if jobs else [])
        return result, [c for c in copies if c not in present]

    def purge_batch(self, now: dt.datetime, cursor: Cursor) -> tuple[list[str], Cursor, bool]:
        live = and_(Call.audio_path.is_(None), Call.status != RECORDING, ~is_held())
        rows = self._due(
            Call.metadata_expires_at, live, now, cursor, columns=(Call.id, Call.metadata_expires_at)
        )
        purged = erase.purge_rows(
            self.sessions,
            [r.id for r in rows],
            now,
            actor=REAPER,
            rule="metadata retention: " + self._metadata_rule(),
        )
        last = (rows[-1].metadata_expires_at, rows[-1].id) if rows else cursor
        return purged, last, len(rows) == self.batch

    def _metadata_rule(self) -> str:
        meta = self.config.retention.metadata
        return describe_period(meta.period()) if meta else "kept"

    def _due(
        self, column: Any, live: Any, now: dt.datetime, cursor: Cursor, columns: Sequence[Any] = CALL_COLUMNS
    ) -> Sequence[Any]:
        with self.sessions() as s:
            return s.execute(due_query(column, live, now, cursor, self.batch, columns)).all()

    def _abs(self, audio_path: str) -> Path:
        return self.config.data_dir / audio_path  # an absolute path (secondary store) stays as it is

    def held_past_expiry(self, now: dt.datetime) -> int:
        with self.sessions() as s:
            q = select(func.count()).where(Call.audio_path.is_not(None), Call.expires_at <= now, is_held())
            return s.scalar(q) or 0

    def finish_pass(self, now: dt.datetime) -> None:
        with immediate(self.sessions) as s:
            retention_log.set_time(s, "last_pass_at", now)


def due_query(
    column: Any,
    live: Any,
    now: dt.datetime,
    cursor: Cursor,
    limit: int,
    columns: Sequence[Any] = CALL_COLUMNS,
) -> Select[Any]:
    """The next ``limit`` rows due by ``column`` after ``cursor``, in (column, id) order."""
    q = select(*columns).where(live, column <= now).order_by(column, Call.id).limit(limit)
    if cursor is not None:
        # Keyset: (column, id) > cursor, spelt as a range on the column plus a tie-break, so that
        # SQLite walks the column's index in order and stops at the limit. The plain OR form made it
        # collect and sort every due row after the cursor, for every batch: quadratic, 100,000 due
        # among 1,000,000 calls took minutes (docs/PERFORMANCE.md, retention at scale).
        q = q.where(column >= cursor[0], or_(column > cursor[0], Call.id > cursor[1]))
    return q


def _facts(r: Any) -> dict[str, Any]:
    return {
        "expires_at": r.expires_at,
        "started_at": r.started_at,
        "line": r.line,
        "policy": r.retention_policy,
        "sha256": r.audio_sha256,
        "bytes": r.audio_bytes,
        "store": r.audio_store or PRIMARY,
    }


def _advance(result: BatchResult, rows: Sequence[Any], column: str, batch: int) -> BatchResult:
    if rows:
        result.cursor = (getattr(rows[-1], column), rows[-1].id)
    result.more = len(rows) == batch
    return result


def _any_file(directory: Path) -> bool:
    """Whether a finished recording (``*.age``) exists below ``directory`` (stops at the first).

    A ``.part`` is a recording in progress, whose row may still be on its way to the database.
    """
    if not directory.is_dir():
        return False
    return any(any(f.endswith(".age") for f in files) for _root, _dirs, files in os.walk(directory))
