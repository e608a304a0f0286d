"""Ledger checkpoints without a person: signed on a timer and at shutdown, sent off the host.

Without them, deleting the newest ledger rows (or every row, or rewriting rows with recomputed
hashes) passes `ledger verify` unless someone happened to keep a checkpoint. The daemon signs one
every ``[ledger] checkpoint_interval_s`` and when it stops, publishes it retained on MQTT and into
each of ``[ledger] checkpoint_dirs``, and notes it in the ledger itself (in order, through the
metadata writer). A sick database or an unreachable directory skips one checkpoint with a warning
and an alert; it never stops the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.daemon.events import Events
from recorderd.daemon.metadata import MetadataWriter
from storage import checkpoints, ledger

log = structlog.get_logger("recorderd.checkpoints")

ACTOR = "recorderd"


class Checkpointer:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        writer: MetadataWriter,
        events: Events,
        *,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        """``leads``: timed checkpoints come from one recorder of those sharing the catalogue (the
        leader, recorderd/daemon/leader.py); each still signs one when it stops."""
        self.config = config
        self._leads = leads
        self._sessions = sessions
        self._writer = writer
        self._events = events
        self.taken = 0

    async def run(self) -> None:
        interval = self.config.ledger.checkpoint_interval_s
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            if self._leads():
                await self.take("timer")

    async def take(self, why: str) -> ledger.Checkpoint | None:
        """Sign and send one checkpoint; None (logged, alerted) when it could not be made."""
        try:
            cp = await asyncio.to_thread(self._sign)
        except Exception as exc:  # the database locked or unwritable, the key unreadable: next time
            log.warning("ledger_checkpoint_failed", why=why, error=str(exc)[:300])
            self._events.alert("ledger_checkpoint_failed", error=str(exc)[:200])
            return None
        published: list[str] = []
        problems: list[str] = []
        if self._events.publish_retained(checkpoints.MQTT_TOPIC, cp.to_json().encode("utf-8")):
            published.append("mqtt")
        for directory in self.config.ledger.checkpoint_dirs:
            try:
                path = await asyncio.to_thread(checkpoints.write_file, directory, cp)
                published.append(str(path))
            except OSError as exc:
                problems.append(f"{directory}: {exc.strerror or exc}")
        self._writer.note("checkpoint", seq=cp.seq, hash=cp.hash, at=cp.at, why=why, published=published)
        self.taken += 1
        log.info("ledger_checkpoint", seq=cp.seq, why=why, published=published)
        if problems:
            self._events.alert("ledger_checkpoint_failed", error="; ".join(problems)[:200])
        else:
            self._events.resolve("ledger_checkpoint_failed")
        return cp

    def _sign(self) -> ledger.Checkpoint:
        key = checkpoints.signing_key(self._sessions, self.config.signing_key_path, ACTOR)
        with self._sessions() as session:
            return ledger.make_checkpoint(session, key, self.config.municipality)
