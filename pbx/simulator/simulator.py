"""The public face of the simulator: one fake Asterisk 20.20.1 for demos and end-to-end tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbx.errors import UsageError
from pbx.simulator.ami import AmiServer
from pbx.simulator.calls import CallRun, PbxState
from pbx.simulator.channel import Events
from pbx.simulator.clock import SimClock
from pbx.simulator.media import SoundLibrary
from pbx.simulator.model import CallResult, SimCall

__all__ = ["PbxSimulator"]


class PbxSimulator:
    """A PBX that dials into the daemon's FastAGI server and serves AMI, as the captures show.

    ``speed`` scales simulated time: 1.0 is real time (a frame every 20 ms), 20.0 runs twenty
    times faster, AMI timestamps included.
    """

    def __init__(
        self,
        *,
        agi_host: str,
        agi_port: int,
        ami_username: str = "recorder",
        ami_secret: str = "recorder-secret",
        sounds_dir: Path | None = None,
        speed: float = 1.0,
        ami_read: str = "all",
    ) -> None:
        """``ami_read``: the AMI user's ``read =`` classes ("call,agent" in config/asterisk/manager.conf)."""
        self._clock = SimClock(speed)
        self._agi = (agi_host, agi_port)
        self._sounds = SoundLibrary(sounds_dir)
        read = None if ami_read == "all" else frozenset(c.strip() for c in ami_read.split(",") if c.strip())
        self._ami = AmiServer(self._clock, ami_username, ami_secret, lambda: len(self._pbx.calls), read)
        self._pbx = self._new_state()
        self._running = False

    def _new_state(self) -> PbxState:
        # A (re)started Asterisk numbers channels and Uniqueids from zero again.
        return PbxState(self._clock, Events(self._ami), self._sounds, *self._agi)

    async def start(self, ami_host: str = "127.0.0.1", ami_port: int = 0) -> None:
        """Listen for AMI clients. May be called again after :meth:`shutdown` ("Asterisk is
        back"), typically with ``ami_port=sim.ami_port`` so the daemon can reconnect."""
        if self._running:
            raise UsageError("the simulator is already running")
        self._pbx = self._new_state()
        await self._ami.start(ami_host, ami_port)
        self._running = True

    @property
    def ami_port(self) -> int:
        return self._ami.port

    @property
    def ami_actions(self) -> list[str]:
        """The AMI actions clients sent so far, in order (Login, Ping, Originate, …)."""
        return list(self._ami.actions)

    @property
    def live_results(self) -> list[CallResult]:
        """What each call in progress has gathered so far (the variables its AGI set, ...)."""
        return [run.result for run in self._pbx.calls]

    @property
    def speed(self) -> float:
        return self._clock.speed

    def set_agi_target(self, host: str, port: int) -> None:
        """Where later calls' ``AGI(agi://host:port/...)`` connects, like editing the dialplan.

        The daemon learns the AMI port from us before it can tell its own AGI port, so tests
        build the simulator with a placeholder and point it at the daemon afterwards.
        """
        self._agi = (host, port)
        self._pbx.agi_host, self._pbx.agi_port = host, port

    async def run_call(self, call: SimCall) -> CallResult:
        """Offer one call to the daemon and return once its last channel is gone.

        Safe to run many concurrently.
        """
        if not self._running:
            raise UsageError("start() the simulator before running calls")
        result = await CallRun(self._pbx, call).run()
        self._ami.processed_calls += 1
        return result

    async def shutdown(self, *, grace_s: float = 5.0) -> None:
        """``core stop now``: hang every call up (cause 4), wait for the AGIs to be closed by the
        daemon (at most ``grace_s`` real seconds, then close them ourselves), then send
        ``Event: Shutdown`` to logged-in AMI clients and FIN to every AMI connection."""
        self._running = False  # no new calls while stopping
        calls = list(self._pbx.calls)
        for call in calls:
            call.shutdown()
        if calls:
            waiters = [asyncio.create_task(c.finished.wait()) for c in calls]
            await asyncio.wait(waiters, timeout=grace_s)
            for call in calls:
                call.abort_agi()
            await asyncio.gather(*waiters)
        await self._ami.shutdown()

    async def close(self) -> None:
        """Stop without ceremony (test teardown): AMI connections closed, no Shutdown event."""
        for call in list(self._pbx.calls):
            call.shutdown()
            call.abort_agi()
        self._running = False
        await self._ami.close()

    async def __aenter__(self) -> PbxSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
