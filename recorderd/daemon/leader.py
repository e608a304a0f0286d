"""Which recorder runs the catalogue-wide jobs, when several share one PostgreSQL catalogue.

Each node records its own calls and reaps its own files. Some work concerns the whole catalogue and
must run once, not once per node: retention policy recomputation and expiries, the metadata purge,
timed ledger checkpoints, the scheduled ledger check, and incidents onto MQTT. The node holding the
leader lock (storage/election.py) runs them; the others try again every ``cluster.leader_retry_s``,
so when the leader stops, dies or loses its connection, another takes over within that interval.
A leader that finds its lock gone stops leading at once (the jobs ask ``leads`` before each round).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from sqlalchemy import Engine

from recorderd.config import Config
from storage.election import LeaderLock

log = structlog.get_logger("recorderd.leader")

CATALOGUE_WIDE = ("retention policy and expiries", "metadata purge", "ledger checkpoints",
                  "ledger check", "incidents to MQTT")  # fmt: skip


class Leadership:
    def __init__(self, config: Config, engine: Engine) -> None:
        self.node = config.node
        self.retry_s = config.cluster.leader_retry_s
        self._lock = LeaderLock(engine)
        self.leads = not self._lock.shared  # SQLite: one recorder, always the leader
        self.on_elected: Callable[[], None] | None = None  # e.g. wake the reaper for its share
        self._told_elsewhere = False

    def status(self) -> dict[str, object]:
        return {"node": self.node, "leader": self.leads, "shared": self._lock.shared}

    def step(self) -> None:
        """One try (blocking: run in a worker thread). Elected, kept, lost, or still elsewhere."""
        if self.leads:
            why = self._lock.check()
            if why is not None:
                self.leads = False
                note = f"another node takes the catalogue-wide jobs within {self.retry_s:g} s"
                log.warning("leadership_lost", node=self.node, reason=why, note=note)
            return
        try:
            got = self._lock.try_acquire()
        except Exception as exc:  # the database is away: try again next time, record meanwhile
            log.warning("leader_election_failed", node=self.node, error=str(exc).strip()[:200])
            return
        if got:
            self.leads, self._told_elsewhere = True, False
            log.info("leader_elected", node=self.node, jobs=list(CATALOGUE_WIDE))
        elif not self._told_elsewhere:
            self._told_elsewhere = True
            log.info("leader_elsewhere", node=self.node, retry_s=self.retry_s)

    async def start(self) -> None:
        """The first try, before the jobs start: a lone node leads from its first pass."""
        if self._lock.shared:
            await asyncio.to_thread(self.step)
        else:
            log.info("leader_elected", node=self.node, jobs=list(CATALOGUE_WIDE), why="single recorder")

    async def run(self) -> None:
        if not self._lock.shared:
            return
        try:
            while True:
                await asyncio.sleep(self.retry_s)
                before = self.leads
                await asyncio.to_thread(self.step)
                if self.leads and not before and self.on_elected is not None:
                    self.on_elected()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._lock.release)
            self.leads = False
