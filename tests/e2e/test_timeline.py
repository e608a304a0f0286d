"""Recordings keep the call's real timeline (issue 12, item 1): the daemon and the simulator at
speed 1, the simulator's line with silence suppression, so ChanSpy sends no frame while nobody
speaks, as the captured Asterisk did. The recording's length and where each party's speech sits
in it are compared with the call's own timeline (CallResult.sources, on the call's sample grid).
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import pytest

from e2e.conftest import Harness, MakeHarness
from pbx.simulator import CallResult, SimCall
from recorderd.records.audio import decrypt_recording
from storage.audio import parse_au

pytestmark = pytest.mark.timeout(90)

TOLERANCE_S = 0.04
RATE = 8000


def tone(seconds: float, hz: float) -> bytes:
    n = round(seconds * RATE)
    # never exactly zero: a zero sample would read as a pause
    return array("h", (round(6000 * math.sin(2 * math.pi * hz * k / RATE)) or 1 for k in range(n))).tobytes()


def hush(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def stored(h: Harness) -> tuple[np.ndarray, str]:
    [row] = h.rows()
    assert row.audio_path is not None
    dec = decrypt_recording(h.data_dir / row.audio_path, [h.identity])
    rate, channels, samples = parse_au(dec.au)
    assert (rate, channels, dec.complete) == (RATE, 1, True)
    return np.frombuffer(samples, "<i2"), row.status


def segments(audio: np.ndarray, merge_s: float = 0.05) -> list[tuple[float, float]]:
    """(start, end) in seconds of every stretch of sound; zero runs shorter than merge_s join."""
    loud = np.flatnonzero(audio)
    if not len(loud):
        return []
    breaks = np.flatnonzero(np.diff(loud) > merge_s * RATE)
    starts = np.concatenate(([loud[0]], loud[breaks + 1]))
    ends = np.concatenate((loud[breaks], [loud[-1]])) + 1
    return [(a / RATE, b / RATE) for a, b in zip(starts, ends, strict=True)]


def expected(result: CallResult, names: tuple[str, ...], parts: dict[str, list[tuple[float, float]]]) -> list[
    tuple[float, float]
]:  # fmt: skip
    """Where the sounds of each party are on the call's clock, from the spy's first frame."""
    assert result.spy_first_frame is not None
    zero = result.spy_first_frame * 160
    out = []
    for name, start, _end in result.sources:
        if name in names:
            for a, b in parts[name]:
                out.append(((start - zero) / RATE + a, (start - zero) / RATE + b))
    return sorted(out)


def check(audio: np.ndarray, result: CallResult, want: list[tuple[float, float]]) -> None:
    assert result.spy_first_frame is not None and result.spy_closed_at is not None
    # From the spy's first frame to the moment the PBX closed its socket (the hang-up as the
    # recorder can know it; the PBX takes a few ms past the call's last frame to get there).
    call_s = (result.spy_closed_at - result.spy_first_frame) * 0.02
    assert abs(len(audio) / RATE - call_s) <= TOLERANCE_S, (len(audio) / RATE, call_s)
    got = segments(audio)[-len(want) :]
    assert len(got) == len(want), (got, want)
    for (ga, gb), (wa, wb) in zip(got, want, strict=True):
        assert abs(ga - wa) <= TOLERANCE_S and abs(gb - wb) <= TOLERANCE_S, (got, want)


# caller: 0.6 s of words, 1.5 s of nothing, 0.5 s of words; the far end: 1 s after that, 0.8 s
CALLER = tone(0.6, 440) + hush(1.5) + tone(0.5, 440)
CALLER_PARTS = [(0.0, 0.6), (2.1, 2.6)]
AGENT = hush(1.0) + tone(0.8, 1000) + hush(1.2)
AGENT_PARTS = [(1.0, 1.8)]


async def test_outbound_call_with_silence_suppression_keeps_its_pauses(make_harness: MakeHarness) -> None:
    h = await make_harness(real_time=True)
    call = SimCall(caller="201", dialled="03-1234-5678", direction="outbound", caller_audio=CALLER,
                   agent_audio=AGENT, silence_suppression=True)  # fmt: skip
    result = await h.call(call)
    audio, status = stored(h)
    assert status == "completed"
    # What went over the wire had no pauses: 1.9 s of frames for a 5.6 s call.
    assert len(result.spy_pcm) / 2 / RATE < 2.0
    want = expected(result, ("caller", "agent"), {"caller": CALLER_PARTS, "agent": AGENT_PARTS})
    check(audio, result, want)


async def test_inbound_call_with_announcement_and_pauses(make_harness: MakeHarness) -> None:
    h = await make_harness(real_time=True)
    call = SimCall(caller="0311112222", dialled="0668585050", caller_audio=CALLER, agent_audio=AGENT,
                   silence_suppression=True)  # fmt: skip
    result = await h.call(call)
    audio, status = stored(h)
    assert status == "completed"
    want = expected(result, ("caller", "agent"), {"caller": CALLER_PARTS, "agent": AGENT_PARTS})
    check(audio, result, want)
    # the announcement, played by the PBX, starts the recording
    [(_name, ann_start, _end)] = [s for s in result.sources if s[0] == "recorderd/announce-ja"]
    assert result.spy_first_frame is not None
    assert abs(ann_start - result.spy_first_frame * 160) / RATE <= TOLERANCE_S
