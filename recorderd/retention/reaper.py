"""The retention reaper: an in-process task that deletes and moves recordings when their rules say so.

It runs a pass at start-up and every ``retention.interval_s``. Live recording never waits for it:
every step of a pass (one batch of at most ``batch_size`` files or a few hundred rows) runs in a
worker thread, and the event loop only awaits it. Deletions and moves follow the intent protocol of
``storage.erase``, so a SIGKILL at any instant leaves each recording fully present or fully deleted
and logged; the next start settles what was in flight before anything else.

Before deleting anything a pass checks that deleting is safe: a clock far past the newest call or
the last pass, or an empty catalogue beside recording files, stops the pass with an alert (one NVR
wiped its recordings when its database went missing). The disk guard runs beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass

import structlog
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.retention.diskguard import DiskGuard, EventSink, NoEvents
from recorderd.retention.engine import BatchResult, Cursor, Retention
from storage import erase

log = structlog.get_logger("recorderd.reaper")

STALE_INTENT = dt.timedelta(hours=1)  # an intent this old belongs to a process that died
# Between two batches the worker thread lets go of the GIL for this long, so a long pass leaves the
# event loop (every live frame) a share of the interpreter instead of contending with it for seconds.
BREATHE_S = 0.005
SAFETY_ALERTS = ("retention_clock_jump", "retention_catalogue_empty")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class PassReport:
    at: dt.datetime
    refused: str | None = None
    settled: int = 0  # intents of an interrupted run, finished or rolled back
    assigned_batches: int = 0
    deleted: int = 0
    moved: int = 0
    copies_destroyed: int = 0
    copies_offline: int = 0  # due preserved copies on a medium that is not mounted
    purged: int = 0
    failed: int = 0
    skipped: int = 0
    held_past_expiry: int = 0
    policy_changed: bool = False
    deferred: int = 0


class Reaper:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        events: EventSink | None = None,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        """``leads``: whether this recorder runs the catalogue-wide share of a pass (policy and
        expiries, the metadata purge) this time; several recorders on one catalogue elect one
        (recorderd/daemon/leader.py). Each deletes and moves only its own files either way."""
        self.config = config
        self.leads = leads
        self.sessions = sessions
        self.clock = clock
        self.events: EventSink = events or NoEvents()
        self.disk = DiskGuard(config.data_dir, config.retention, self.events)
        self.retention = Retention(config, sessions)
        self.last: PassReport | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._recovered = False
        self._waiters: list[asyncio.Future[PassReport]] = []

    def wake(self) -> None:
        """Start a pass now (e.g. this node just became the leader: its share is due)."""
        self._wake.set()

    def reconfigure(self, config: Config) -> None:
        """A reload: the next pass (started now) applies the new policy and logs the change."""
        self.config = config
        self.retention = Retention(config, self.sessions)
        self.disk.config = config.retention
        self._wake.set()

    async def run(self) -> None:
        if not self.config.retention.policies:
            log.warning("retention_not_configured", note="no [retention] policy: recordings are kept forever")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.disk.run(), name="disk-guard")
            tg.create_task(self._loop(), name="reaper-passes")

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_pass()
            except Exception as exc:  # one bad pass must not end retention for good: retry next time
                log.exception("reaper_pass_failed")
                self.events.alert("retention_reaper_failed", transient=True, error=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.retention.interval_s):
                    await self._wake.wait()

    async def run_pass(self) -> PassReport:
        """One whole pass; passes never overlap. Tests call this directly with a controlled clock."""
        async with self._lock:
            report = await self._pass(self.clock())
        self.last = report
        log.info("retention_pass", **{k: v for k, v in asdict(report).items() if v})
        self.events.event("reaper_run", **{k: v for k, v in asdict(report).items() if k != "at"})
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(report)
        return report

    async def next_pass(self) -> PassReport:
        """The report of the next pass to finish (e.g. the one a reload starts)."""
        fut: asyncio.Future[PassReport] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return await fut

    async def _pass(self, now: dt.datetime) -> PassReport:
        report = PassReport(now)
        stale = None if not self._recovered else now - STALE_INTENT
        node = self.config.node
        for intent, verdict in await asyncio.to_thread(
            erase.recover, self.sessions, now, older_than=stale, node=node
        ):
            log.warning(
                "retention_intent_settled",
                call_id=intent.call_id,
                op=intent.op,
                path=intent.path,
                verdict=verdict,
            )
            report.settled += 1
        self._recovered = True

        leads = self.leads()
        if leads:
            await self._assign(report, now)
        await self._reap(report, now, leads)
        return report

    async def _assign(self, report: PassReport, now: dt.datetime) -> None:
        """The leader's share: a policy change, and expiries for every node's new rows."""
        ret = self.retention
        change = await asyncio.to_thread(ret.begin_change, now)
        cursor: str | None = None
        while True:  # expiries: for new rows, or for every row after a policy change
            cursor = await asyncio.to_thread(ret.assign_batch, now, cursor, change)
            await asyncio.sleep(BREATHE_S)
            report.assigned_batches += 1
            if cursor is None:
                break
        if change is not None:
            detail = await asyncio.to_thread(ret.end_change, now, change)
            self._policy_changed(detail)
            report.policy_changed, report.deferred = True, change.deferred

    async def _reap(self, report: PassReport, now: dt.datetime, leads: bool) -> None:
        """Deletions and moves of this node's files, copies on media mounted here; the purge if leading."""
        ret = self.retention
        unsafe = await asyncio.to_thread(ret.safety, now)
        if unsafe is not None:
            kind, facts = unsafe
            log.error("retention_refused", reason=kind, **facts, note="nothing deleted or moved in this pass")
            self.events.alert(kind, **facts)
            report.refused = kind
            return
        for kind in SAFETY_ALERTS:
            self.events.resolve(kind)

        await self._batches(report, ret.delete_batch, now, "deleted")
        await self._batches(report, ret.move_batch, now, "moved")
        copies, offline = await asyncio.to_thread(ret.copy_batch, now)
        report.copies_destroyed += self._outcomes(copies.outcomes)  # a handful: fine on the loop
        report.copies_offline = len(offline)
        for c in offline:
            log.warning(
                "preserved_copy_due_but_offline",
                call_id=c.call_id,
                medium=c.medium,
                path=c.path,
                due=c.expires_at.isoformat(),
                note="mount the medium, or destroy it and record that",
            )
        purge_cursor: Cursor = None
        while leads:  # rows only, no file: once for the catalogue
            purged, purge_cursor, more = await asyncio.to_thread(ret.purge_batch, now, purge_cursor)
            await asyncio.sleep(BREATHE_S)
            report.purged += len(purged)
            for call_id in purged:
                log.info("call_metadata_purged", call_id=call_id)
            if not more:
                break
        report.held_past_expiry = await asyncio.to_thread(ret.held_past_expiry, now)
        await asyncio.to_thread(ret.finish_pass, now)

    async def _batches(
        self,
        report: PassReport,
        step: Callable[[dt.datetime, Cursor], BatchResult],
        now: dt.datetime,
        field: str,
    ) -> None:
        def one(cursor: Cursor) -> tuple[BatchResult, int]:
            result = step(now, cursor)
            return result, self._outcomes(result.outcomes)  # log in the worker: the loop stays free

        cursor: Cursor = None
        while True:
            result, done = await asyncio.to_thread(one, cursor)
            await asyncio.sleep(BREATHE_S)
            setattr(report, field, getattr(report, field) + done)
            report.skipped += result.skipped
            report.failed += sum(1 for o in result.outcomes if not o.done and not _benign(o))
            cursor = result.cursor
            if not result.more:
                return

    def _outcomes(self, outcomes: list[erase.Outcome]) -> int:
        done = 0
        for o in outcomes:
            j = o.job
            if o.done:
                done += 1
                event = {
                    "delete": "recording_deleted",
                    "move": "recording_moved",
                    "destroy_copy": "preserved_copy_destroyed",
                }[j.op]
                log.info(
                    event,
                    call_id=j.call_id,
                    rule=j.rule,
                    path=str(j.path),
                    to=str(j.dst) if j.dst else None,
                    note=o.note,
                )
                if o.note:  # e.g. the file was already missing: someone removed it outside recorderd
                    log.error("recording_missing_at_deletion", call_id=j.call_id, path=str(j.path))
            elif _benign(o):
                log.info("retention_skipped", call_id=j.call_id, op=j.op, reason=o.note)
            else:
                log.error("retention_failed", call_id=j.call_id, op=j.op, path=str(j.path), reason=o.note)
                self.events.alert(
                    "retention_failed", transient=True, call_id=j.call_id, op=j.op, reason=o.note
                )
        return done

    def _policy_changed(self, detail: dict[str, object]) -> None:
        facts = {k: detail[k] for k in ("before", "after", "changed", "earlier", "later", "deferred")}
        # A first policy on an empty catalogue (a new installation) is news, not a warning.
        quiet = detail["previous_fingerprint"] is None and not detail["changed"]
        (log.info if quiet else log.warning)(
            "retention_policy_changed",
            **facts,
            fingerprint=detail["fingerprint"],
            previous=detail["previous_fingerprint"],
        )
        if detail["deferred"]:
            self.events.alert(
                "retention_policy_change_deferred",
                transient=True,
                deferred=detail["deferred"],
                grace_h=detail["grace_h"],
                note="see: recorderctl retention plan",
            )


def _benign(o: erase.Outcome) -> bool:
    """Not done, but nothing is wrong: held, busy elsewhere, or no longer due."""
    return o.note is not None and o.note.startswith(
        ("held", "busy", "no longer", "the call no longer", "still")
    )
