"""Time for the simulated PBX: real monotonic time for pacing, a scaled clock for what it reports.

With ``speed`` 20 a 10 s call takes 0.5 s, and every time the PBX *reports* (AMI ``Timestamp``,
Uniqueid epochs) runs 20 times faster too, so durations computed from AMI events still read 10 s.
"""

from __future__ import annotations

import asyncio
import time

from pbx.errors import UsageError

__all__ = ["SimClock"]


class SimClock:
    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise UsageError(f"speed must be > 0, not {speed!r}")
        self.speed = speed
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    @staticmethod
    def mono() -> float:
        return time.monotonic()  # the clock asyncio's default event loop uses

    def wall(self) -> float:
        """The PBX clock (epoch seconds), running ``speed`` times faster than real time."""
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    def real(self, pbx_seconds: float) -> float:
        """How long ``pbx_seconds`` of simulated time last in real time."""
        return pbx_seconds / self.speed

    async def sleep(self, pbx_seconds: float) -> None:
        await asyncio.sleep(max(0.0, pbx_seconds) / self.speed)

    @staticmethod
    async def sleep_until(deadline: float) -> None:
        """Sleep until the monotonic ``deadline``: schedules built on this never drift."""
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def timestamp(self) -> str:
        return f"{self.wall():.6f}"

    def event_tv(self) -> str:
        """``EventTV``/``SessionTV`` format: 2026-11-22T04:53:00.130+0000."""
        now = self.wall()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000"
