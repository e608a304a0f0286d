"""Disk pressure: warn early, refuse new recordings past a threshold, never delete anything early.

Some recorders delete "retained" recordings when the disk fills; a regulation's retention period is
a minimum as much as a maximum, so recorderd never does. Below ``disk_warn_free_percent`` it logs a
warning (the monitoring section's ``disk_low`` alert covers MQTT); below ``disk_refuse_free_mb`` it
refuses new recordings, loudly: an open ``recordings_refused_disk_full`` alert, and an error line
and a ``failed`` row (``disk_full``) for every call that should have been recorded.
The call path reads ``refusal()``: a cached answer, no system call per call.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import structlog

from recorderd.config.retention import RetentionConfig

log = structlog.get_logger("recorderd.diskguard")

State = Literal["ok", "low", "full"]
FULL_ALERT = "recordings_refused_disk_full"


class Usage(NamedTuple):
    total: int
    used: int
    free: int


class EventSink(Protocol):
    """What the daemon's events publisher offers (recorderd/events.py): alerts and events."""

    def alert(self, kind: str, *, transient: bool = False, **fields: object) -> None: ...
    def resolve(self, kind: str, **fields: object) -> None: ...
    def event(self, kind: str, **fields: object) -> None: ...


class NoEvents:
    def alert(self, kind: str, *, transient: bool = False, **fields: object) -> None:
        pass

    def resolve(self, kind: str, **fields: object) -> None:
        pass

    def event(self, kind: str, **fields: object) -> None:
        pass


class DiskGuard:
    def __init__(
        self,
        path: Path,
        config: RetentionConfig,
        events: EventSink,
        *,
        usage: Callable[[Path], Usage] = lambda p: Usage(*shutil.disk_usage(p)),
    ) -> None:
        self.path = path
        self.config = config
        self.events = events
        self.usage = usage  # replaceable in tests
        self.state: State = "ok"

    def refusal(self) -> str | None:
        """Why a new recording must not start now (a short code for the call row), or None."""
        return "disk_full" if self.state == "full" else None

    def check(self) -> State:
        try:
            u = self.usage(self.path)
        except OSError as exc:
            log.error("disk_check_failed", path=str(self.path), error=str(exc))
            return self.state
        free_mb = u.free / 2**20
        percent = 100.0 * u.free / u.total if u.total else 0.0
        new: State = "ok"
        if free_mb < self.config.disk_refuse_free_mb:
            new = "full"
        elif percent < self.config.disk_warn_free_percent:
            new = "low"
        if new != self.state:
            self._transition(self.state, new, round(free_mb), round(percent, 1))
        self.state = new
        return new

    def _transition(self, old: State, new: State, free_mb: int, percent: float) -> None:
        facts: dict[str, Any] = {"path": str(self.path), "free_mb": free_mb, "free_percent": percent}
        if new == "full":
            log.error(
                "recordings_refused_disk_full",
                **facts,
                threshold_mb=self.config.disk_refuse_free_mb,
                note="new calls are NOT recorded until space is freed; nothing is deleted early",
            )
            self.events.alert(FULL_ALERT, **facts, threshold_mb=self.config.disk_refuse_free_mb)
            return
        if old == "full":
            log.warning("recordings_accepted_again", **facts)
            self.events.resolve(FULL_ALERT, **facts)
        if new == "low":
            log.warning(
                "disk_filling",
                **facts,
                threshold_percent=self.config.disk_warn_free_percent,
                note="recordings are never deleted early to make room: add space",
            )
        elif old == "low":
            log.info("disk_space_ok", **facts)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # a bug here must not stop the daemon (it is in the daemon's TaskGroup)
                log.exception("disk_check_crashed")
            await asyncio.sleep(self.config.disk_check_s)
