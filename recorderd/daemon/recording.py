"""One recording: AudioSocket frames in, an age-encrypted Sun AU file out.

The event loop only appends each 20 ms frame to a buffer; every FLUSH_BYTES the buffer goes to the
disk pool, which byte-swaps it to AU's big-endian samples, encrypts and fsyncs. Nothing but
ciphertext ever touches the disk.

Stereo (ChanSpy ``D``): each frame is 640 bytes of interleaved samples, left = the spied channel,
right = its peer. The file is a 2-channel AU with the counterpart (the caller, or whom an outbound
call reached) on the left and the city side on the right: an outbound call's spied channel is the
city side, so its pairs are swapped on the disk thread.

With a media clock (the daemon always gives one) the recording keeps the call's real timeline:
pauses in which ChanSpy sends nothing are stored as silence, as they happen (``tick``), and frames
ahead of the clock are dropped; recorderd/daemon/timeline.py decides, this module only applies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from pbx.audiosocket.server import AudioSocketPeer
from recorderd.daemon.diskpool import DiskPool, loop_caller
from recorderd.daemon.timeline import Timeline
from storage.audio import au_header, slin_to_au_payload, swap_pairs
from storage.files import private_dir
from storage.vault import AgeWriter

log = structlog.get_logger("recorderd.recording")

FLUSH_BYTES = 64 * 1024  # one age STREAM chunk of plaintext: about 4 s of 8 kHz audio
BYTES_PER_SECOND = 16000  # slin16, 8 kHz, mono
# The AudioSocket listener wakes for a call once 10 frames (200 ms, 3 + 320 bytes each) wait in
# the kernel, not for every 20 ms frame: one recv() and one handler call for ten frames. Audio is
# durable in ~4 s steps (FLUSH_BYTES) anyway; see docs/PERFORMANCE.md for what it buys.
READ_LOW_WATER = 10 * (3 + 320)
_ZEROS = memoryview(bytes(FLUSH_BYTES))


@dataclass(frozen=True, slots=True)
class RecordingResult:
    path: Path  # the final .age file, or the .part left behind on failure
    sealed: bool
    ciphertext_bytes: int | None
    sha256: str | None
    audio_seconds: float
    error: str | None  # None: the peer hung up normally; else why the recording ended badly
    silence_seconds: float = 0.0  # pauses without frames, stored as silence (the real timeline)
    dropped_seconds: float = 0.0  # audio that came faster than real time, beyond the allowance


class Recording:
    """An AudioSocket handler (see pbx.audiosocket.server) that stores what it hears."""

    def __init__(
        self,
        call_id: str,
        final_path: Path,
        recipients: list[str],
        pool: DiskPool,
        *,
        call_log: structlog.typing.FilteringBoundLogger | None = None,  # bound: call id, masked numbers
        clock: Callable[[], float] | None = None,  # media clock (seconds); None: frames end to end
        peer: AudioSocketPeer | None = None,  # to read promptly during a pause
        channels: int = 1,  # 2: ChanSpy's interleaved stereo frames
        swap: bool = False,  # stereo: store the spied channel on the right (outbound calls)
    ) -> None:
        self.call_id = call_id
        self._log = call_log or log.bind(call_id=call_id)
        self.final_path = final_path
        self._pool = pool
        self._buf = bytearray()
        self.audio_bytes = 0
        self._error: str | None = None
        self._disk_error: str | None = None
        self._closed = False
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._caller = loop_caller(loop)
        self.first_frame: asyncio.Future[float] = loop.create_future()
        self.done: asyncio.Future[RecordingResult] = loop.create_future()
        self._writer: AgeWriter | None = None
        self._clock = clock
        self._peer = peer
        self.channels = channels
        self._bps = BYTES_PER_SECOND * channels
        self._swap = swap and channels == 2
        self._carry = b""  # stereo: the start of a sample pair a batch cut in two (never on the wire)
        self.timeline = Timeline(channels=channels) if clock is not None else None
        private_dir(final_path.parent)
        self._last: concurrent.futures.Future[None] = pool.submit(call_id, lambda: self._open(recipients))

    # -- disk thread ---------------------------------------------------------------------------
    def _open(self, recipients: list[str]) -> None:
        try:
            self._writer = AgeWriter(self.final_path, recipients)
            self._writer.write(au_header(channels=self.channels))
        except OSError as exc:
            self._disk_error = f"disk: {exc.strerror or exc}"
            raise

    def _write(self, pcm_le: bytes | bytearray) -> None:
        if self._writer is None or self._disk_error is not None:
            return
        try:
            self._writer.write(swap_pairs(pcm_le) if self._swap else slin_to_au_payload(pcm_le))
        except OSError as exc:
            self._disk_error = f"disk: {exc.strerror or exc}"
            raise

    def _seal(self) -> RecordingResult:
        seconds = self.audio_bytes / self._bps
        writer = self._writer
        if writer is None:
            return RecordingResult(self.final_path, False, None, None, 0.0, self._disk_error or "not opened")
        if self._disk_error is not None:
            writer.abort()
            return RecordingResult(_part(self.final_path), False, None, None, seconds, self._disk_error)
        sealed = writer.close()
        tl = self.timeline
        gaps = (tl.silence_bytes / self._bps, tl.dropped_bytes / self._bps) if tl else (0.0, 0.0)
        return RecordingResult(sealed.path, True, sealed.size, sealed.sha256, seconds, self._error, *gaps)

    # -- event loop ----------------------------------------------------------------------------
    def audio_received(self, payload: bytes) -> None:
        if self._closed:
            return
        if not self.first_frame.done():
            self.first_frame.set_result(time.monotonic())
        if self.channels == 2 and (self._carry or len(payload) % 4):
            payload = self._carry + payload
            cut = len(payload) - len(payload) % 4
            payload, self._carry = payload[:cut], payload[cut:]
        timeline = self.timeline
        if timeline is None:
            self._buf += payload
            self.audio_bytes += len(payload)
        else:
            assert self._clock is not None
            place = timeline.audio(self._clock(), len(payload))
            if place is None:  # the common case: in place, whole
                self._buf += payload
            else:
                if place.silence or place.dropped_from < len(payload):
                    view = memoryview(payload)
                    self._buf += view[: place.head]
                    self._silence(place.silence)
                    self._buf += view[place.head : place.dropped_from]
                else:
                    self._buf += payload
                if place.batched and self._peer is not None:
                    self._peer.read_batched()
            self.audio_bytes = timeline.position
        if len(self._buf) >= FLUSH_BYTES:
            self._flush()

    def tick(self, now: float) -> None:
        """The media clock moved on (every ~100 ms): fill a pause with silence as it happens."""
        timeline = self.timeline
        if timeline is None or self._closed:
            return
        step = timeline.tick(now, self._peer.behind if self._peer is not None else None)
        if step.read_promptly:
            timeline.backlog(self._peer.read_promptly() if self._peer is not None else 0)
        if step.silence:
            self._silence(step.silence)
            self.audio_bytes = timeline.position
            if len(self._buf) >= FLUSH_BYTES:
                self._flush()

    def _silence(self, nbytes: int) -> None:
        while nbytes > 0:
            n = min(nbytes, FLUSH_BYTES)
            self._buf += _ZEROS[:n]
            nbytes -= n
            if len(self._buf) >= FLUSH_BYTES:
                self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        # Hand the buffer itself over (the loop never touches it again) rather than a copy of it.
        data, self._buf = self._buf, bytearray()
        self._last = self._pool.submit(self.call_id, lambda: self._write(data))
        self._last.add_done_callback(self._check_write)

    def _check_write(self, fut: concurrent.futures.Future[None]) -> None:
        exc = fut.exception()
        if exc is not None:
            # Called from the disk thread: log there, the seal step reports it to the call.
            self._log.error("recording_write_failed", error=str(exc))

    def connection_closed(self, error: str | None) -> None:
        """The spy ended: orderly EOF (``None``) or an error. Seal in the background."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        if self.timeline is not None and self._clock is not None:
            # The call lasted until now, whatever was audible at its end.
            self._silence(self.timeline.close(self._clock()))
            self.audio_bytes = self.timeline.position
        if not self.first_frame.done():
            self.first_frame.set_exception(ConnectionError(error or "spy closed before any audio"))
            self.first_frame.exception()  # mark retrieved: the caller may have stopped waiting
        self._flush()
        fut = self._pool.submit(self.call_id, self._seal)
        fut.add_done_callback(self._sealed)

    def _sealed(self, fut: concurrent.futures.Future[RecordingResult]) -> None:
        exc = fut.exception()
        if exc is None:
            result = fut.result()
        else:
            result = RecordingResult(_part(self.final_path), False, None, None, 0.0, f"seal failed: {exc}")
        self._caller.call(self._resolve, result)  # batched: see LoopCaller

    def _resolve(self, result: RecordingResult) -> None:
        if not self.done.done():
            self.done.set_result(result)


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")
