"""The one writer of call metadata: an ordered queue applied by one thread.

The call path never waits for the database. If SQLite is locked (a backup, an admin's long query)
or briefly unavailable, the audio keeps flowing and the rows are written once it answers again;
nothing is dropped, and the operator is told.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage import ledger
from storage.models import RECORDING, Call

log = structlog.get_logger("recorderd.metadata")

_BATCH = 256


@dataclass(frozen=True, slots=True)
class _Op:
    call_id: str
    fields: dict[str, Any]
    insert: bool
    event: str | None = None  # a ledger note about the daemon itself (config loaded); no call row


def _duration(row: Call) -> float | None:
    if row.ended_at is None:
        return None
    begin = row.answered_at or row.started_at
    return max(0.0, round((row.ended_at - begin).total_seconds(), 3))


class MetadataWriter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        node: str | None = None,
        on_stall: Callable[[str], None] | None = None,
    ):
        self._sessions = sessions
        # Every call row says which recorder holds its file (several may share one catalogue).
        self._node = {"node": node} if node is not None else {}
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._on_stall = on_stall
        self.stalled = False

    def insert(self, call_id: str, **fields: Any) -> None:
        self._put(_Op(call_id, fields, insert=True))

    def update(self, call_id: str, **fields: Any) -> None:
        if fields:
            self._put(_Op(call_id, fields, insert=False))

    def note(self, kind: str, **detail: Any) -> None:
        """A ledger entry about the daemon (e.g. config_loaded), in order with the call rows."""
        self._put(_Op("", detail, insert=False, event=kind))

    def _put(self, op: _Op) -> None:
        self._idle.clear()
        self._queue.put_nowait(op)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def flush(self) -> None:
        """Wait until everything enqueued so far is committed."""
        await self._idle.wait()

    async def run(self) -> None:
        delay = 0.05
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    await asyncio.to_thread(self._apply, batch)
                    break
                except (OperationalError, ledger.LedgerConflict) as exc:
                    # Locked or unavailable (or recorderctl appended to the ledger first): keep the
                    # batch, keep the order, try again.
                    if not self.stalled:
                        self.stalled = True
                        why = str(getattr(exc, "orig", exc))
                        log.warning("metadata_write_stalled", error=why, backlog=self.backlog)
                        if self._on_stall:
                            self._on_stall(why)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            if self.stalled:
                log.info("metadata_write_resumed", backlog=self.backlog)
                self.stalled = False
            delay = 0.05
            if self._queue.empty():
                self._idle.set()

    def _apply(self, batch: list[_Op]) -> None:
        with self._sessions.begin() as session:
            touched: set[str] = set()
            entries: list[ledger.NewEntry] = []  # in order, appended once: one tail read per batch
            for op in batch:
                if op.event is not None:
                    entries.append(ledger.NewEntry(op.event, "recorderd", detail=op.fields))
                    continue
                if op.insert:
                    session.add(Call(id=op.call_id, **self._node, **op.fields))
                    session.flush()
                else:
                    session.execute(update(Call).where(Call.id == op.call_id).values(**op.fields))
                entry = _ledger_entry(op, self._node)
                if entry is not None:
                    entries.append(entry)
                if {"ended_at", "answered_at"} & op.fields.keys():
                    touched.add(op.call_id)
            for call_id in touched:
                row = session.get(Call, call_id)
                if row is not None:
                    row.duration_s = _duration(row)
            ledger.append_many(session, entries)


def _ledger_entry(op: _Op, node: dict[str, str]) -> ledger.NewEntry | None:
    """Recording created / finalised go into the ledger in the same commit as the row they describe.
    No numbers: the call row holds them; the ledger holds what happened, and the ciphertext's hash."""
    f = op.fields
    if op.insert and f.get("status") == RECORDING:
        detail = {"direction": f.get("direction"), "line": f.get("line"), "audio_path": f.get("audio_path"),
                  **node}  # fmt: skip  # which recorder holds the file, when several share the ledger
        return ledger.NewEntry("recording_created", "recorderd", op.call_id, detail=detail)
    if "audio_sha256" in f:
        detail = {"status": f.get("status", "failed"), "sha256": f["audio_sha256"],
                  "bytes": f.get("audio_bytes"), "seconds": f.get("audio_seconds")}  # fmt: skip
        return ledger.NewEntry("recording_finalised", "recorderd", op.call_id, detail=detail)
    return None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
