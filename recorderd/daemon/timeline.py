"""Where each batch of spy audio goes in the recording: the call's real timeline (sans-IO).

ChanSpy sends AudioSocket frames only while something is audible. A caller's phone or trunk with
silence suppression (DTX, also on hold) sends no RTP between talk spurts, and then ChanSpy sends no
frames at all. Written back to back, those frames would cut every pause out and move later speech
earlier. So a recording follows the media clock from the spy's first frame to hang-up: every
position is "seconds since the first frame", and a pause is stored as silence.

The daemon reads frames in batches (``SO_RCVLOWAT``: the kernel wakes it when ~200 ms are queued,
docs/PERFORMANCE.md), so one batch's arrival time says when its *last* frame was sent. Three rules
follow, all pure functions of the times passed in (the clock is the caller's):

* **Streaming**: a batch of n bytes arriving at ``now`` started at ``now - n``. If that is later
  than where the recording ends by more than ``gap_s`` (250 ms), the difference is a pause:
  silence first, then the batch. Smaller differences are network jitter (a late packet, then a
  burst that catches up: filling would push the speech that follows late, or drop it), ignored.
* **Quiet**: no batch for ``quiet_s`` (longer than one read batch). The up to nine frames the
  kernel still holds below the low-water mark belong *before* the pause, so the caller asks the
  socket to read promptly and reports how much was waiting (``backlog``): those bytes are placed
  end to end. Once they are in, the pause is filled with silence on every tick as it happens,
  ``jitter_s`` behind the clock; the first fresh frame (read promptly now) fills the rest exactly.
* **Behind is not quiet**: the event loop itself may serve a readable socket late (hundreds of
  milliseconds at thousands of calls). Frames then wait in the kernel, not at the PBX; taken for a
  pause, they would be placed after silence and then dropped as ahead of the clock. So before
  treating a spell without reads as a pause, and before each fill, the caller's ``behind()`` says
  whether the socket already holds what would wake the reader (and how much: ``behind()`` returns
  those audio bytes, 0 when not behind); if so, nothing happens until it has been read. Nor is that
  batch's late arrival taken as the time of its last frame: what was waiting at the tick ended
  by then, and only what came after it can have arrived later (``now`` becomes the tick's time plus
  the bytes that came since, at most the read's time). So a pause before the batch keeps its length
  and one after it is filled as it happens, to within a tick, below the gap threshold.
* **Never ahead**: the recording never runs ahead of the clock by more than the jitter allowance.
  Frames arriving faster than real time (a peer's clock running fast, a flood) are dropped beyond
  it, so a call's memory and disk work are bounded by its duration, whatever the peer sends.

Known limits: a pause shorter than ``gap_s`` inside a talk spurt is not kept (later speech is early
by at most that much, until the next pause of ``quiet_s`` or more puts it back in place to the
frame); one between ``gap_s`` and ``quiet_s`` plus a tick keeps its length, but the few frames the
kernel held back before it land just before the next spurt instead of just after the previous one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

BYTES_PER_SECOND = 16000  # slin16, 8 kHz, per channel
FRAME_BYTES = 320  # 20 ms, per channel
JITTER_S = 0.06  # how far ahead of the clock audio may run; how far behind it silence is filled
GAP_S = 0.25  # a shorter gap between batches while audio flows is jitter, not a pause
QUIET_S = 0.3  # > one read batch (200 ms, recording.READ_LOW_WATER) plus scheduling slack
TICK_S = 0.1

STREAMING, DRAINING, QUIET = "streaming", "draining", "quiet"


@dataclass(frozen=True, slots=True)
class Placement:
    """How to store one batch: its first ``head`` bytes, then ``silence`` zero bytes, then the
    next ``tail`` bytes of the batch; whatever follows is dropped (ahead of the clock)."""

    head: int
    silence: int
    tail: int
    batched: bool  # fresh audio after a quiet spell: the socket may batch its reads again

    @property
    def dropped_from(self) -> int:
        return self.head + self.tail


@dataclass(frozen=True, slots=True)
class Tick:
    silence: int  # zero bytes to append now
    read_promptly: bool  # ask the socket to hand over what it holds, then call ``backlog``


_NOTHING = Tick(0, False)


class Timeline:
    """``channels`` = 2 for ChanSpy's ``D`` stream: 640-byte frames of interleaved samples; every
    position, silence and cut then stays on a whole (left, right) pair, so neither side slips."""

    def __init__(self, *, jitter_s: float = JITTER_S, gap_s: float = GAP_S, quiet_s: float = QUIET_S,
                 channels: int = 1) -> None:  # fmt: skip
        if not 0 < jitter_s <= gap_s <= quiet_s:
            raise ValueError("need 0 < jitter_s <= gap_s <= quiet_s")
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        self._block = 2 * channels  # bytes per sample instant (all channels)
        self._frame = FRAME_BYTES * channels
        self._bps = bytes_per_second = BYTES_PER_SECOND * channels
        self._jitter = self._even(round(jitter_s * bytes_per_second))
        self._gap = self._even(round(gap_s * bytes_per_second))
        self.quiet_s = quiet_s
        self._t0: float | None = None  # clock time of sample 0
        self.position = 0  # bytes stored so far, silence included
        self.silence_bytes = 0
        self.dropped_bytes = 0
        self.state = STREAMING
        self._last = 0.0  # clock time of the last batch (or of entering DRAINING)
        self._backlog = 0  # bytes still due that belong before the current pause
        self._behind_at: float | None = None  # a tick found the socket readable and unread then,
        self._behind_bytes = 0  # ... with this much audio waiting: the next batch was read late

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def _even(self, n: int) -> int:
        """Down to whole sample instants (one sample per channel)."""
        return n - n % self._block

    def _frames(self, n: int) -> int:
        """Silence is added and late audio dropped in whole 20 ms frames (to the nearest frame): the
        stored audio stays on ChanSpy's frame grid, and the rounding (<= 10 ms) is below any jitter."""
        frame = self._frame
        return max(0, (n + frame // 2) // frame * frame)

    def _ideal(self, now: float) -> int:
        assert self._t0 is not None
        return self._even(int((now - self._t0) * self._bps))

    def audio(self, now: float, nbytes: int) -> Placement | None:
        """A batch of ``nbytes`` whose last frame arrived at ``now``; None: store it whole.

        None is the common case (audio flowing, the batch where the clock expects it), answered
        without building a ``Placement``: this runs for every read of every call."""
        t0 = self._t0
        ended = now
        if self._behind_at is not None:  # read late: when did its audio really end?
            ended = min(now, self._behind_at + max(0, nbytes - self._behind_bytes) / self._bps)
            self._behind_at = None
        if t0 is not None and self.state is STREAMING and ended == now:  # no backlog is pending
            ideal = int((now - t0) * self._bps) & ~1
            end = self.position + nbytes
            if ideal - end < self._gap and end <= ideal + self._jitter:
                self.position = end
                self._last = now
                return None
        return self._place(now, nbytes, ended)

    def _place(self, now: float, nbytes: int, ended: float) -> Placement:
        """``audio`` when the batch needs silence before it, dropping, or follows a quiet spell;
        ``ended``: when its last frame arrived (``now`` unless it was read late)."""
        if self._t0 is None:
            self._t0 = now - nbytes / self._bps
        fresh_after_quiet = self.state != STREAMING
        head = min(nbytes, self._backlog)
        self._backlog -= head
        rest = nbytes - head
        ideal = self._ideal(now)
        silence = 0
        if rest:
            deficit = self._ideal(ended) - rest - (self.position + head)
            # Read promptly after a quiet spell, the arrival time is exact: fill any real pause.
            threshold = self._frame if fresh_after_quiet else self._gap
            if deficit >= threshold:
                silence = self._frames(deficit)
        room = max(0, ideal + self._jitter - self.position)
        head = self._even(min(head, room))
        half = self._frame // 2
        silence = min(silence, self._frames(room - head - half))
        tail = rest if head + silence + rest <= room else self._frames(room - head - silence - half)
        tail = min(rest, tail)
        self.position += head + silence + tail
        self.silence_bytes += silence
        self.dropped_bytes += nbytes - head - tail
        self._last = now
        batched = False
        if rest and fresh_after_quiet:
            self.state, self._backlog, batched = STREAMING, 0, True
        return Placement(head, silence, tail, batched)

    def tick(self, now: float, behind: Callable[[], int] | None = None) -> Tick:
        """Called every ``TICK_S`` or so: notice a pause and fill it as it happens.

        ``behind()``: the audio bytes waiting in the socket if they already make it readable (the
        loop has not got to it yet), else 0. Asked only when a pause is suspected (a system call)."""
        if self._t0 is None or now - self._last < self.quiet_s:
            return _NOTHING
        if behind is not None and (waiting := behind()):
            if self._behind_at is None:  # the audio is in the kernel, the delay is ours: read it first
                self._behind_at, self._behind_bytes = now, waiting
            return _NOTHING
        if self.state == STREAMING:
            self.state, self._last = DRAINING, now
            return Tick(0, True)
        if self.state == DRAINING and self._backlog and now - self._last < 2 * self.quiet_s:
            return _NOTHING  # what the kernel held is on its way: place it before any silence
        self.state, self._backlog = QUIET, 0
        return Tick(self._fill_to(self._ideal(now) - self._jitter), False)

    def backlog(self, nbytes: int) -> None:
        """After ``read_promptly``: this many bytes were already waiting; they precede the pause."""
        if self.state == DRAINING:
            self._backlog = max(0, self._even(nbytes))

    def close(self, now: float) -> int:
        """Hang-up at ``now``: the silence that completes the recording up to it."""
        if self._t0 is None:
            return 0
        return self._fill_to(self._ideal(now))

    def _fill_to(self, target: int) -> int:
        silence = self._frames(target - self.position)
        self.position += silence
        self.silence_bytes += silence
        return silence
