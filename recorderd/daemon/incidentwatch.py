"""The daemon's incident watch (Kawasaki 第7条): scheduled checks, and every incident onto MQTT.

- Every ``monitoring.verify_interval_s`` (default 6 h; the first a minute after start-up) the ledger chain and
  every recording file are verified, in a worker thread; a failure raises an incident. With several
  recorders on one catalogue each verifies the files it holds, and the leader alone the chain.
- A clock jump (the reaper's ``retention_clock_jump`` alert) raises an incident.
- Every incident in the ledger, whoever raised it (a lockout at ``recorderctl`` sign-in, a refusal
  streak, a person's report of a loss), is published once as the transient alert
  ``alerts/incident`` with its ID, kind and summary: the ledger is the queue, so incidents raised by
  other processes reach MQTT too. With several recorders, the leader publishes them (once).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.daemon.events import Events, utcnow
from recorderd.incidents import incidents, raise_incident
from recorderd.incidents.checks import run_checks
from storage import ledger
from storage.models import LedgerRow

log = structlog.get_logger("recorderd.incidents")

POLL_S = 5.0  # how soon an incident raised elsewhere reaches MQTT
STARTUP_DELAY_S = 60.0


class IncidentWatch:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        events: Events,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config, self.sessions, self.events, self.clock = config, sessions, events, clock
        self.leads = leads
        self.published: set[str] = set()
        self.stopping = threading.Event()  # set when the watch is cancelled: a file check in progress ends
        self.last_seq: int | None = None  # the ledger row read up to; None: not yet started

    def publish_new(self) -> list[str]:
        """Publish every incident raised since the last call; returns their IDs. The first call
        publishes the incidents still open from before (like open alerts after a reconnect); later
        calls read only the ledger rows added since (a primary-key range, cheap every few seconds
        even under a ledger of millions of rows)."""
        with self.sessions() as s:
            top = s.scalar(select(func.max(LedgerRow.seq))) or 0
            if self.last_seq is None:
                found = [i.raised for i in incidents(self.sessions, open_only=True)]
            else:
                found = ledger.entries(s, kinds=["incident_raised"], after=self.last_seq, through=top)
        self.last_seq = top
        fresh = []
        for e in found:
            if e.subject in self.published:
                continue
            self.published.add(str(e.subject))
            d = e.detail
            self.events.alert(
                "incident",
                transient=True,
                id=e.subject,
                incident_kind=d.get("kind"),
                summary=d.get("summary"),
                automatic=d.get("automatic"),
            )
            fresh.append(str(e.subject))
        return fresh

    def check_clock(self) -> None:
        jump = self.events.open_alerts.get("retention_clock_jump")
        if jump is not None:
            raise_incident(
                self.sessions,
                "clock_jump",
                "時計が最新の通話・前回の削除処理より大きく進んでいるため、自動削除を停止",
                key="clock_jump",
                at=self.clock(),
                facts={k: str(v) for k, v in jump.items() if k in ("now", "newest_known", "limit_h")},
            )

    def verify(self) -> list[str]:
        failed = run_checks(self.sessions, self.config.data_dir, at=self.clock(), node=self.config.node,
                            chain=self.leads(), stop=self.stopping.is_set)  # fmt: skip
        if failed:
            log.warning("scheduled_verify_failed", failed=failed)
        return failed

    async def run(self) -> None:
        interval = self.config.monitoring.verify_interval_s
        loop = asyncio.get_running_loop()
        # The first check a minute after start-up: starting calls come first.
        next_verify = loop.time() + min(STARTUP_DELAY_S, interval)
        while True:
            try:
                if loop.time() >= next_verify:
                    next_verify = loop.time() + interval
                    try:
                        await asyncio.to_thread(self.verify)
                    except asyncio.CancelledError:  # the thread goes on: tell it to stop at the next file
                        self.stopping.set()
                        raise
                await asyncio.to_thread(self.check_clock)
                if self.leads():
                    await asyncio.to_thread(self.publish_new)
                else:
                    self.last_seq = None  # when this node leads again: publish what is open then
            except Exception:  # one failed round never stops the daemon; the next one retries
                log.exception("incident_watch_failed")
            await asyncio.sleep(POLL_S)
