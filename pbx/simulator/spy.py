"""One ``AudioSocket/<host>:<port>/<uuid>/c(slin)`` spy channel running ChanSpy on a call.

Wire behaviour, from ``audiosocket/*.json`` and the README: ``01 00 10 <uuid>`` as soon as TCP
connects, ChanSpy attaches ``spy_attach_delay_s`` later (earlier audio is lost), then one
``10 01 40 <320 bytes>`` message per 20 ms frame, and finally a plain FIN, never ``0x00``. With
ChanSpy's ``D`` option (stereo, measured on 20.20.1) a ``10 02 80 <640 bytes>`` message every 20 ms
from the attach on, interleaved (spied channel, peer), zeros when nobody speaks.
A ``0x00``/``0xff`` message or EOF from the server ends the spy channel only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass

from pbx.simulator.channel import Channel, Events
from pbx.simulator.clock import SimClock
from pbx.simulator.media import FRAME_BYTES, FRAME_SECONDS, Timeline, ulaw_encode

__all__ = ["CallMedia", "Spy"]

_KIND_HANGUP, _KIND_ERROR, _KIND_SLIN = 0x00, 0xFF, 0x10
_MIN_SLEEP_S = 0.002  # real seconds


@dataclass
class CallMedia:
    """The call-side state a spy renders from (owned and updated by the call)."""

    clock: SimClock
    t0: float  # monotonic time of sample 0
    timeline: Timeline
    continuous: bool  # RTP channels deliver frames through silence; Local channels do not
    suppress_silence: bool = False  # DTX: no frame for an all-zero (silent) frame either
    up_frame: int | None = None  # frames flow through silence only once the channel is Up
    # The spied channel hangs up at this frame, maybe still in the future: no frame from here.
    end_frame: int | None = None

    def frame_time(self, frame: int) -> float:
        return self.t0 + self.clock.real(frame * FRAME_SECONDS)

    def frame_now(self) -> float:
        return (self.clock.mono() - self.t0) * self.clock.speed / FRAME_SECONDS

    def next_free_frame(self) -> int:
        """The first frame that is both in the future and not yet streamed."""
        return max(math.ceil(self.frame_now()), self.timeline.rendered_upto)


class Spy:
    def __init__(
        self,
        *,
        media: CallMedia,
        events: Events,
        channel: Channel,
        target: Channel | None,
        spy_uuid: str,
        codec: str,
        only_from_channel: bool,
        stereo: bool = False,
        on_attach: Callable[[], None] | None,
        attach_delay_s: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.uuid = spy_uuid
        self.channel = channel
        self.media = media  # the spied call's audio (usually, but not always, the originating call's)
        self.pcm = bytearray()
        self.frames: list[int] = []  # frame index of every streamed frame, for `played` offsets
        self._events = events
        self._target = target
        self._ulaw = codec == "ulaw"
        self._only_from_channel = only_from_channel
        self._stereo = stereo  # ChanSpy D: interleaved (spied, peer) frames, sent even when silent
        self._on_attach = on_attach
        self._reader = reader
        self._writer = writer
        self._attach_frame = math.ceil(media.frame_now() + attach_delay_s / FRAME_SECONDS)
        self._spying = False
        self._hung_up = False
        self.closed_at: float | None = None  # call frame (fractional) at which the spy hung up
        self._peer_gone = asyncio.Event()
        writer.write(bytes([0x01, 0x00, 0x10]) + uuidlib.UUID(spy_uuid).bytes)
        self._tasks = [asyncio.create_task(self._stream()), asyncio.create_task(self._read())]

    @property
    def streamed(self) -> bool:
        return bool(self.frames)

    async def _stream(self) -> None:
        media = self.media
        if self._target is None:  # ChanSpy(...,u) on an unknown uniqueid exits at once
            self.hang_up()
            return
        if not await self._wait(media.frame_time(self._attach_frame)):
            return
        if media.end_frame is not None and media.end_frame <= self._attach_frame:
            return  # the target hung up before ChanSpy attached: ChanSpy(E) has nothing to do
        self._events.chanspy(True, self.channel, self._target)
        self._spying = True
        if self._on_attach is not None:
            self._on_attach()
        n = self._attach_frame
        while media.end_frame is None or n < media.end_frame:
            if not await self._wait(media.frame_time(n)):
                return
            if media.end_frame is not None and n >= media.end_frame:
                break
            payload = self._render(n)
            if payload is not None and not self._hung_up:
                wire = ulaw_encode(payload) if self._ulaw else payload
                self._writer.write(bytes([_KIND_SLIN]) + len(wire).to_bytes(2, "big") + wire)
                self.pcm += wire
                self.frames.append(n)
                try:
                    await self._writer.drain()
                except ConnectionError:
                    self._peer_gone.set()
                    self.stop()
                    self.hang_up()
                    return
            n += 1

    def _render(self, n: int) -> bytes | None:
        media = self.media
        if self._stereo:
            return media.timeline.render_stereo(n)
        payload = media.timeline.render(n, self._only_from_channel)
        silent = payload is not None and media.suppress_silence and not any(payload)
        if silent and not media.timeline.pbx_playing(n):
            payload = None  # nobody's RTP carries this frame: ChanSpy has nothing to send
        if payload is None and media.continuous and media.up_frame is not None and n >= media.up_frame:
            payload = bytes(FRAME_BYTES)
        return payload

    async def _wait(self, deadline: float) -> bool:
        """Sleep until ``deadline``; False when the AudioSocket server went away meanwhile."""
        if self._peer_gone.is_set():
            self.stop()
            self.hang_up()
            return False
        delay = deadline - SimClock.mono()
        if delay > 0:
            # At high speed a frame lasts well under a millisecond: wake at most every
            # _MIN_SLEEP_S and send every frame due by then (never one before its time).
            await asyncio.sleep(max(delay, _MIN_SLEEP_S))
        return True

    async def _read(self) -> None:
        """Watch what the server sends: 0x00 (hangup), 0xff (error) or EOF end the spy."""
        try:
            while True:
                head = await self._reader.readexactly(3)
                await self._reader.readexactly(int.from_bytes(head[1:], "big"))
                if head[0] in (_KIND_HANGUP, _KIND_ERROR):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self._peer_gone.set()

    def stop(self) -> None:
        """ChanSpy ends (the spied channel is going away, or the server hung up)."""
        if self._spying:
            self._spying = False
            self._events.chanspy(False, self.channel, self._target or self.channel)

    def hang_up(self) -> None:
        """The AudioSocket channel is destroyed: Hangup event, then FIN (never a 0x00)."""
        if not self._hung_up:
            self._hung_up = True
            self.closed_at = self.media.frame_now()
            self._events.hangup(self.channel, 0)
            self._events.device_state(self.channel.device, "UNKNOWN")
            self._writer.close()

    def soft_hangup(self, cause: int) -> None:
        if not self._hung_up:
            self._events.soft_hangup_request(self.channel, cause)

    async def streamed_to_end(self) -> None:
        """Wait until every frame before the call's ``end_frame`` was sent (or the spy ended).

        Frames are due in the past by then, so this is quick; without it a loaded event loop
        could close the socket while the spy still owes the last frames.
        """
        await asyncio.gather(self._tasks[0], return_exceptions=True)

    async def finish(self) -> None:
        """Wait for streaming to end (the call set ``end_frame``), then stop reading."""
        await asyncio.gather(self._tasks[0], return_exceptions=True)
        self._tasks[1].cancel()
        await asyncio.gather(self._tasks[1], return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
