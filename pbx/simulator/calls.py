"""One simulated call from arrival to the last Hangup event, and the PBX-wide state it shares.

Timeline of an inbound call (``SimCall`` fields in brackets)::

    ring, answer -> AGI (the daemon's commands; STREAM FILE plays into the call) -> AGI closed
    -> conversation [caller_audio, then agent_audio] -> hang-up -> ChanSpyStop, Hangup, spy FIN

A caller hang-up [hangup_after_agi_s] cuts this short; if the AGI is still running the channel
then stays "dead" until the daemon closes the AGI socket, as in the captures.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import random
from dataclasses import dataclass, field

from pbx.simulator.agi import AgiSession
from pbx.simulator.apps import exec_app
from pbx.simulator.channel import UP, Channel, Events
from pbx.simulator.clock import SimClock
from pbx.simulator.legs import Legs, build_legs
from pbx.simulator.media import FRAME_SAMPLES, RATE, SoundLibrary, Source, Timeline
from pbx.simulator.model import CallResult, SimCall
from pbx.simulator.spy import CallMedia, Spy
from pbx.simulator.variables import read_variable

__all__ = ["CallRun", "PbxState"]


@dataclass
class PbxState:
    """What all calls of one simulated Asterisk share; rebuilt on every (re)start."""

    clock: SimClock
    events: Events
    sounds: SoundLibrary
    agi_host: str
    agi_port: int
    calls: set[CallRun] = field(default_factory=set)
    _uid: itertools.count[int] = field(default_factory=itertools.count)
    _sip: itertools.count[int] = field(default_factory=itertools.count)
    _local: itertools.count[int] = field(default_factory=itertools.count)

    def uniqueid(self) -> str:
        return f"{int(self.clock.wall())}.{next(self._uid)}"

    def next_sip(self) -> int:
        return next(self._sip)

    def next_local(self) -> int:
        return next(self._local)

    def live_channels(self) -> list[Channel]:
        return [ch for c in self.calls if not c.dead for ch in c.legs.channels()]


class CallRun:
    def __init__(self, pbx: PbxState, call: SimCall) -> None:
        self.pbx, self.call, self.events = pbx, call, pbx.events
        script = "inbound" if call.direction == "inbound" else "outbound"
        self.agi_url = f"agi://{pbx.agi_host}:{pbx.agi_port}/{script}"
        self.legs: Legs = build_legs(
            pbx.events,
            call,
            agi_url=self.agi_url,
            uniqueid=pbx.uniqueid,
            sip_index=pbx.next_sip() if call.tech == "SIP" else 0,
            local_index=pbx.next_local,
        )
        self.channel = self.legs.main
        continuous = call.tech == "SIP" and not call.silence_suppression
        self.media = CallMedia(pbx.clock, pbx.clock.mono(), Timeline(), continuous=continuous,
                               suppress_silence=call.silence_suppression)  # fmt: skip
        self.legs.call_ms = lambda: round(self.media.frame_now() * 20)
        self.result = CallResult(self.channel.uniqueid, self.channel.linkedid, self.channel.name)
        self.spies: list[Spy] = []
        self._hangup = asyncio.Event()
        self._reason = "normal"
        self._agi: AgiSession | None = None
        self._agi_start = 0  # sample index
        self._plays: list[tuple[str, int]] = []
        self._timers: list[asyncio.Task[None]] = []
        self.finished = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> CallResult:
        self.pbx.calls.add(self)
        try:
            self.legs.arrive()
            if self.channel.state == UP:
                self.media.up_frame = 0
            await self._run_agi()
            if not self.dead:
                self.legs.after_agi(self.result.agi_status)
                self._mark_up()
                await self._converse()
            for spy in self.spies:
                if spy.media is self.media:  # let it catch up on every frame due before the end
                    await spy.streamed_to_end()
            self._teardown()
            for spy in self.spies:
                await spy.finish()
        finally:
            self.pbx.calls.discard(self)
            for spy in self.spies:
                spy.hang_up()  # a no-op unless we got here through an exception
            for t in self._timers:
                t.cancel()
            await asyncio.gather(*self._timers, return_exceptions=True)
            self.finished.set()
        self._collect()
        return self.result

    async def _run_agi(self) -> None:
        self._agi_start = math.ceil(self.media.frame_now()) * FRAME_SAMPLES
        if self.call.hangup_after_agi_s is not None:
            at = self._agi_start + round(self.call.hangup_after_agi_s * RATE)
            frame = math.ceil(at / FRAME_SAMPLES)
            self._plan_end(frame)
            self._timers.append(asyncio.create_task(self._caller_hangs_up(frame)))
        self._agi = AgiSession(self, self.pbx.clock, self._env(), self.result.agi_commands)
        status = await self._agi.run(self.pbx.agi_host, self.pbx.agi_port)
        self.result.agi_status = status
        self.result.agi_closed_by_daemon = self._agi.closed_by_server
        self.events.varset(self.channel, "AGISTATUS", status)

    async def _converse(self) -> None:
        """Caller speaks, then the agent / prompt answers; then the PBX hangs up."""
        start = self.media.next_free_frame() * FRAME_SAMPLES
        caller = Source("caller", start, self.call.caller_audio, from_channel=True)
        agent = Source("agent", caller.end, self.call.agent_audio)
        for src in (caller, agent):
            if src.pcm:
                self.media.timeline.add(src)
        end = math.ceil(agent.end / FRAME_SAMPLES)
        self._plan_end(end)
        if await self.wait_until_sample(agent.end):
            self._hang_up("normal", end)

    def _teardown(self) -> None:
        def spy_stop() -> None:
            for spy in self.spies:
                spy.stop()

        self.legs.end(self._reason, spy_stop)
        for spy in self.spies:
            spy.hang_up()

    def _collect(self) -> None:
        streamed = [s for s in self.spies if s.streamed]
        spy = streamed[-1] if streamed else (self.spies[-1] if self.spies else None)
        if spy is not None:
            self.result.spy_uuid, self.result.spy_pcm = spy.uuid, bytes(spy.pcm)
            self.result.spy_first_frame = spy.frames[0] if spy.frames else None
            self.result.spy_closed_at = spy.closed_at
        self.result.sources = [(src.name, src.start, src.end) for src in self.media.timeline.sources]
        self.result.end_frame = self.media.end_frame
        for name, start in self._plays:
            if spy is not None and spy.frames:
                first = spy.frames[0] * FRAME_SAMPLES
                if start < first:
                    offset = start - first
                else:  # count only frames really sent: Local channels skip silent ones
                    k = bisect.bisect_left(spy.frames, start // FRAME_SAMPLES)
                    offset = k * FRAME_SAMPLES + start % FRAME_SAMPLES
            else:
                offset = start - self._agi_start
            self.result.played.append((name, offset / RATE))
        self.result.originate_status = self.channel.variables.get("ORIGINATE_STATUS")

    # -- hang-ups ------------------------------------------------------------------------------

    @property
    def dead(self) -> bool:
        return self._hangup.is_set()

    @property
    def hangup_event(self) -> asyncio.Event:
        return self._hangup

    def _plan_end(self, frame: int) -> None:
        """Tell the spies, in advance, the frame at which the call hangs up.

        Timers fire a little late (a millisecond is 2.5 frames at speed 50); spies render each
        frame on time, so they must know the end beforehand to never stream past it.
        """
        if self.media.end_frame is None or frame < self.media.end_frame:
            self.media.end_frame = frame

    async def _caller_hangs_up(self, frame: int) -> None:
        await SimClock.sleep_until(self.media.frame_time(frame))
        self._hang_up("caller", frame)

    def _hang_up(self, reason: str, frame: int) -> None:
        if self.dead:
            return
        self._reason = reason
        self._plan_end(frame)
        if reason == "caller":
            self.result.hung_up_by_caller = True
            if self.call.tech == "SIP":
                self.events.rtp_qos(self.channel, bye=True)  # chan_sip reports QoS at the BYE
            self.events.hangup_request(self.channel, None)
        elif reason == "agi":  # AGI HANGUP: ast_softhangup() on our own channel
            self.events.soft_hangup_request(self.channel, 16)
        self._hangup.set()

    def shutdown(self) -> None:
        """``core stop now``: a soft hang-up (cause 4) on every channel, the spies' included."""
        if self.dead:
            return
        for spy in self.spies:
            spy.soft_hangup(4)
        for ch in self.legs.channels():
            self.events.soft_hangup_request(ch, 4)
        self._hang_up("shutdown", math.ceil(self.media.frame_now()))
        self.legs.shutdown_now()

    def abort_agi(self) -> None:
        if self._agi is not None:
            self._agi.abort()

    async def wait_until_sample(self, sample: int) -> bool:
        """Sleep until call time ``sample``; False if the call hung up first."""
        delay = self.media.t0 + self.pbx.clock.real(sample / RATE) - self.pbx.clock.mono()
        if self.dead:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hangup.wait(), max(0.0, delay))
        return not self.dead

    # -- AgiHost: what the AGI commands do -----------------------------------------------------

    def _env(self) -> list[tuple[str, str]]:
        c, ch = self.call, self.channel
        sip = c.tech == "SIP"
        script = "inbound" if c.direction == "inbound" else "outbound"
        return [
            ("agi_network", "yes"),
            ("agi_network_script", script),
            ("agi_request", self.agi_url),
            ("agi_channel", ch.name),
            ("agi_language", "en"),
            ("agi_type", c.tech),
            ("agi_uniqueid", ch.uniqueid),
            ("agi_version", "20.20.1"),
            ("agi_callerid", c.caller or "unknown"),
            ("agi_calleridname", c.caller_name or "unknown"),
            ("agi_callingpres", "0"),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", c.dialled if sip else "unknown"),  # Local/Originate calls have no DNID
            ("agi_rdnis", "unknown"),
            ("agi_context", ch.context),
            ("agi_extension", c.dialled),
            ("agi_priority", "3" if c.direction == "inbound" else "1"),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""),
            ("agi_threadid", str(random.randrange(139_900_000_000_000, 140_200_000_000_000))),
        ]

    def read(self, name: str) -> str | None:
        return read_variable(self.call, self.channel, self.pbx.clock, name)

    def set_var(self, name: str, value: str) -> None:
        self.events.varset(self.channel, name, value)
        self.result.variables[name] = value

    def find_channel(self, name: str) -> Channel | None:
        return next((ch for ch in self.pbx.live_channels() if ch.name == name), None)

    def answer(self) -> None:
        self.legs.answer()
        self._mark_up()

    def _mark_up(self) -> None:
        if self.media.up_frame is None and self.channel.state == UP:
            self.media.up_frame = self.media.next_free_frame()

    def hangup_from_agi(self) -> None:
        self._hang_up("agi", math.ceil(self.media.frame_now()))

    async def stream_file(self, name: str) -> tuple[int, int] | None:
        """STREAM FILE: (0 | -1 on hang-up, samples played), or None if it cannot be opened."""
        played = await self.play(name)
        if played is not None:
            status = "SUCCESS" if played[0] == 0 else "FAILED"
            self.events.varset(self.channel, "PLAYBACKSTATUS", status)
        return played

    async def play(self, name: str) -> tuple[int, int] | None:
        """Play a sound into the call from the next free frame, in (scaled) real time."""
        pcm = self.pbx.sounds.load(name)
        if pcm is None:
            return None
        src = Source(name, self.media.next_free_frame() * FRAME_SAMPLES, pcm, played=True)
        self.media.timeline.add(src)
        self._plays.append((name, src.start))
        await self.wait_until_sample(src.end)
        end = self.media.end_frame
        if end is not None and end * FRAME_SAMPLES < src.end:  # decided on the frame grid
            return -1, max(0, end * FRAME_SAMPLES - src.start)
        return 0, src.end - src.start

    async def exec_app(self, app: str, data: str) -> int | None:
        return await exec_app(self, app, data)
