"""The recording's timeline (recorderd/daemon/timeline.py), driven by a model of the socket.

``Link`` models what sits between ChanSpy and the Timeline: frames queue in the kernel, which
wakes the reader only once 10 frames are queued (SO_RCVLOWAT, as the daemon runs it) unless the
reader asked to read promptly; the daemon ticks every 100 ms. Each frame's stored position is then
compared with when ChanSpy sent it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import pytest

from recorderd.daemon.timeline import FRAME_BYTES, QUIET, Placement, Timeline

F = FRAME_BYTES
LOW_WATER = 10  # frames
TICK = 0.1


class Link:
    """``late(t)``: how long after the kernel makes the socket readable at ``t`` the event loop gets
    to it (a loop busy with thousands of calls); meanwhile frames keep queueing, and ticks run."""

    def __init__(self, timeline: Timeline, late: Callable[[float], float] | None = None) -> None:
        self.tl = timeline
        self.late = late or (lambda _t: 0.0)
        self.wake_at: float | None = None  # the loop will serve the readable socket then
        self.queue: list[float] = []  # send times of frames waiting in the kernel
        self.prompt = False
        self.first_read_done = False  # the mark is set after the first frame, as the server does
        self.stored: list[tuple[float, int]] = []  # (send time, byte offset in the recording)
        self.silence_at: list[tuple[float, int]] = []  # (clock time, bytes) of tick fills

    def _deliver(self, now: float) -> None:
        frames, self.queue = self.queue, []
        self.wake_at = None
        place = self.tl.audio(now, len(frames) * F) or Placement(0, 0, len(frames) * F, False)
        start = self.tl.position - place.head - place.silence - place.tail
        for k, sent in enumerate(frames):
            off = k * F
            if off < place.head:
                self.stored.append((sent, start + off))
            elif off < place.head + place.tail:
                self.stored.append((sent, start + place.silence + off))
        if place.batched:
            self.prompt = False
        self.first_read_done = True

    def run(self, sends: list[float], end: float) -> None:
        events: list[tuple[float, int, str]] = [(t, 0, "send") for t in sends]
        first = min(sends)
        events += [(first + TICK * (k + 1), 1, "tick") for k in range(int((end - first) / TICK) + 1)]
        heapq.heapify(events)
        while events:
            now, _, kind = heapq.heappop(events)
            if now > end:
                break
            if kind == "send":
                self.queue.append(now)
                self._readable(now, events)
            elif kind == "wake":
                if self.wake_at == now and self.queue:
                    self._deliver(now)
            else:
                step = self.tl.tick(now, self.behind)
                if step.read_promptly:
                    self.prompt = True
                    self.tl.backlog(len(self.queue) * F)
                    self._readable(now, events)  # lowering the mark wakes the reader at once
                if step.silence:
                    self.silence_at.append((now, step.silence))
        if self.queue:  # FIN delivers the rest
            self._deliver(end)
        self.tl.close(end)

    def behind(self) -> int:
        """What the server's ``behind()`` reports: the socket is readable, the loop not there yet."""
        return len(self.queue) * F if self.wake_at is not None else 0

    def _readable(self, now: float, events: list[tuple[float, int, str]]) -> None:
        if not self.queue or self.wake_at is not None:
            return
        if self.prompt or not self.first_read_done or len(self.queue) >= LOW_WATER:
            delay = self.late(now)
            if delay <= 0:
                self._deliver(now)
            else:
                self.wake_at = now + delay
                heapq.heappush(events, (self.wake_at, 2, "wake"))

    def errors(self) -> list[float]:
        t0 = self.stored[0][0] - F / 16000
        return [off / 16000 - (sent - F / 16000 - t0) for sent, off in self.stored]


def spurts(*spans: tuple[float, float]) -> list[float]:
    """Send times (end of each 20 ms frame) of frames covering each [start, end) span."""
    out: list[float] = []
    for a, b in spans:
        n = round((b - a) / 0.02)
        out += [a + 0.02 * (k + 1) for k in range(n)]
    return out


def test_continuous_audio_is_stored_end_to_end_without_silence() -> None:
    tl = Timeline()
    link = Link(tl)
    sends = spurts((10.0, 40.0))
    link.run(sends, 40.0)
    assert tl.silence_bytes == 0 and tl.dropped_bytes == 0
    assert tl.position == len(sends) * F
    assert max(abs(e) for e in link.errors()) < 0.001


def test_pauses_without_frames_become_silence_and_speech_stays_in_place() -> None:
    tl = Timeline()
    link = Link(tl)
    # caller 1.06 s, 2.5 s of nothing, agent 0.9 s, 1.5 s of nothing, caller 0.5 s, hang-up 1 s later
    sends = spurts((5.0, 6.06), (8.56, 9.46), (10.96, 11.46))
    link.run(sends, 12.46)
    errors = link.errors()
    assert len(errors) == len(sends)  # nothing dropped
    assert max(abs(e) for e in errors) <= 0.02, max(errors, key=abs)
    assert tl.position == round((12.46 - 5.0) / 0.02) * F  # first frame to hang-up
    assert tl.silence_bytes == tl.position - len(sends) * F


def test_a_long_pause_is_filled_as_it_happens_not_at_the_end() -> None:
    tl = Timeline()
    link = Link(tl)
    link.run(spurts((0.0, 1.0)), 60.0)  # then a minute on hold, nothing sent
    assert tl.state == QUIET
    # Every tick after the first ~0.5 s adds the time since the last: the gap never runs far behind.
    fills = link.silence_at
    assert len(fills) > 500
    assert all(n <= 2 * TICK * 16000 for _t, n in fills[1:])
    assert tl.position == 60 * 16000


def test_jitter_below_the_allowance_adds_nothing() -> None:
    tl = Timeline()
    base = spurts((0.0, 20.0))
    # every tenth frame 40 ms late (network jitter): delivered late, in order
    sends = sorted(t + (0.04 if k % 10 == 3 else 0.0) for k, t in enumerate(base))
    link = Link(tl)
    link.run(sends, 20.0)
    assert tl.silence_bytes == 0 and tl.dropped_bytes == 0


def test_frames_faster_than_real_time_are_dropped_beyond_the_allowance() -> None:
    tl = Timeline()
    now = 100.0
    for _ in range(1000):  # a flood: 10 frames every 20 ms, 10x real time, for 20 s
        tl.audio(now, 10 * F)
        now += 0.02
        assert tl.position <= (now - 100.0) * 16000 + 0.06 * 16000 + 10 * F
    # the clock started with the first batch's first frame, 200 ms before it arrived
    assert tl.position == pytest.approx((now - 0.02 - 100.0 + 0.2) * 16000, abs=0.08 * 16000)
    assert tl.dropped_bytes == 1000 * 10 * F - tl.position


def test_a_jitter_spike_and_its_catch_up_lose_nothing_and_move_nothing() -> None:
    tl = Timeline()
    base = spurts((0.0, 10.0))
    # 200 ms of frames held up in the network, then delivered in one burst with the next frame
    sends = sorted(min(max(t, 4.2), t + 0.2) if 4.0 <= t < 4.2 else t for t in base)
    link = Link(tl)
    link.run(sends, 10.0)
    assert tl.silence_bytes == 0 and tl.dropped_bytes == 0
    assert tl.position == len(base) * F
    # every frame at its place: the held-up ones (arrived together at 4.2 s) in sequence before it
    on_time = [e for (sent, _), e in zip(link.stored, link.errors(), strict=True) if abs(sent - 4.2) > 1e-9]
    assert len(on_time) == len(base) - 11 and max(abs(e) for e in on_time) < 0.001


def test_a_pause_shorter_than_the_quiet_time_keeps_its_length() -> None:
    tl = Timeline()
    link = Link(tl)
    sends = spurts((0.0, 2.0), (2.28, 4.0))  # 280 ms without frames inside speech
    link.run(sends, 4.0)
    assert tl.silence_bytes == pytest.approx(0.28 * 16000, abs=F)
    # the speech after the pause is in place; at most the frames the kernel held before it moved
    late = [e for e in link.errors() if abs(e) > 0.02]
    assert len(late) < LOW_WATER
    assert tl.position == 200 * F


def test_a_short_pause_is_not_kept_until_the_next_long_one_puts_speech_back() -> None:
    tl = Timeline()
    link = Link(tl)
    # 160 ms inside speech (below gap_s: taken for jitter), then a real 1 s pause
    sends = spurts((0.0, 2.0), (2.16, 3.0), (4.0, 5.0))
    link.run(sends, 5.0)
    errors = link.errors()
    last = errors[-len(spurts((4.0, 5.0))) :]
    assert max(abs(e) for e in last) <= 0.02  # after the long pause: in place again
    assert min(errors) >= -0.18  # before it: early by at most the short pause
    assert tl.position == 250 * F


def test_hang_up_during_a_pause_completes_the_timeline() -> None:
    tl = Timeline()
    link = Link(tl)
    link.run(spurts((0.0, 1.0)), 1.2)  # hang-up soon after the last words
    assert tl.position == round(1.2 / 0.02) * F
    assert max(abs(e) for e in link.errors()) < 0.001


def test_a_busy_event_loop_is_not_taken_for_a_pause() -> None:
    """At 2,000 calls the loop serves a readable socket hundreds of ms late at times. That is not
    the PBX falling silent: no silence may be added, no frame dropped, none moved."""
    tl = Timeline()
    # the loop gets to this socket 0.1-0.75 s after it becomes readable, varying every few seconds
    delays = [0.1, 0.75, 0.3, 0.6, 0.05, 0.7, 0.45]
    link = Link(tl, late=lambda t: delays[int(t / 1.7) % len(delays)])
    sends = spurts((0.0, 30.0))
    link.run(sends, 31.0)
    assert tl.dropped_bytes == 0
    assert len(link.stored) == len(sends)
    assert tl.silence_bytes == pytest.approx(1.0 * 16000, abs=0.1 * 16000)  # only the hang-up's second
    assert max(abs(e) for e in link.errors()) < 0.001


def test_pauses_under_a_busy_event_loop_are_kept_and_nothing_is_dropped() -> None:
    tl = Timeline()
    link = Link(tl, late=lambda _t: 0.5)  # every read half a second late
    sends = spurts((0.0, 5.0), (8.0, 12.0), (12.5, 14.0))
    link.run(sends, 15.0)
    assert tl.dropped_bytes == 0 and len(link.stored) == len(sends)
    assert tl.position == round(15.0 / 0.02) * F
    assert max(abs(e) for e in link.errors()) < 0.001  # the pauses kept their length, to the frame


def test_nothing_happens_before_the_first_frame() -> None:
    tl = Timeline()
    assert tl.tick(5.0).silence == 0 and not tl.tick(5.0).read_promptly
    assert tl.close(9.0) == 0 and tl.position == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="jitter_s"):
        Timeline(jitter_s=0.5, gap_s=0.25, quiet_s=0.3)


def test_stereo_keeps_every_position_on_a_whole_left_right_pair() -> None:
    """ChanSpy D frames are 640 bytes of (left, right) pairs: silence, cuts and positions move in
    whole 20 ms stereo frames, so neither channel ever slips against the other."""
    tl = Timeline(channels=2)
    t = 100.0
    place = tl.audio(t, 640 * 5)
    assert (place.head, place.silence, place.tail) == (0, 0, 640 * 5)
    t += 0.1
    tl.audio(t, 640 * 5)
    # 1.2 s with no frame (a stall): ticks fill silence as it happens, in whole stereo frames
    for _ in range(12):
        t += 0.1
        step = tl.tick(t)
        assert step.silence % 640 == 0
        if step.read_promptly:
            tl.backlog(0)
        assert tl.position % 640 == 0
    t += 0.1
    place = tl.audio(t, 640 * 5)
    assert place.silence % 640 == 0 and place.head % 4 == 0 and place.tail % 4 == 0
    assert tl.position % 640 == 0
    # the stored length follows the clock: 32 000 bytes a second
    assert abs(tl.position - (t - 100.0 + 0.1) * 32000) <= 0.06 * 32000 + 640
    # a flood faster than real time is cut to whole stereo frames too
    place = tl.audio(t + 0.001, 640 * 50)
    assert place.dropped_from % 640 == 0 and tl.position % 4 == 0
