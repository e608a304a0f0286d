"""Complaints about what peers send, one line per peer per interval.

A local process opening thousands of junk connections must not write thousands of log lines (each
one a journald write, and the real warnings drowned). The first complaint about a peer (host,
whatever its port) is logged at once; the next ones within ``interval`` are counted, and one line
at the end of the interval says how many there were and quotes the last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    start: float
    count: int = 0
    level: int = logging.INFO
    last: str = ""
    timer: asyncio.TimerHandle | None = None


def host_of(peer: str) -> str:
    """'127.0.0.1:50312' -> '127.0.0.1'; '[::1]:5' -> '[::1]'; anything else as it is."""
    host, sep, port = peer.rpartition(":")
    return host if sep and port.isdigit() else peer


class PeerLog:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._what = what  # "AGI", "AudioSocket"
        self.interval = interval
        self._clock = clock
        self._peers: dict[str, _Window] = {}

    def warning(self, peer: str, message: str, *args: object) -> None:
        self._report(logging.WARNING, peer, message, args)

    def info(self, peer: str, message: str, *args: object) -> None:
        self._report(logging.INFO, peer, message, args)

    def _report(self, level: int, peer: str, message: str, args: tuple[object, ...]) -> None:
        host, now = host_of(peer), self._clock()
        window = self._peers.get(host)
        if window is not None and now - window.start < self.interval:
            window.count += 1
            window.level = max(window.level, level)
            window.last = message % args
            if window.timer is None:
                with_loop = _running_loop()
                if with_loop is not None:
                    delay = max(0.0, window.start + self.interval - now)
                    window.timer = with_loop.call_later(delay, self._flush, host)
            return
        if window is not None:
            self._flush(host)
        self._peers[host] = _Window(start=now)
        self._log.log(level, f"{self._what} %s: {message}", peer, *args)

    def _flush(self, host: str) -> None:
        window = self._peers.pop(host, None)
        if window is None:
            return
        if window.timer is not None:
            window.timer.cancel()
        if window.count:
            self._log.log(
                window.level,
                "%s %s: %d more like this in %gs (the last: %s)",
                self._what, host, window.count, self.interval, window.last,
            )  # fmt: skip

    @property
    def counted(self) -> int:
        """Complaints counted and not yet written."""
        return sum(w.count for w in self._peers.values())

    def flush_all(self) -> None:
        """Say what is still counted (at shutdown)."""
        for host in list(self._peers):
            self._flush(host)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
