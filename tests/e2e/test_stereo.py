"""Per-direction (stereo) recording, issue 15 part 3: the daemon and the simulator at speed 1, the
simulator streaming ChanSpy ``D`` frames as Asterisk 20.20.1 does (640 bytes of interleaved
(spied, peer) samples every 20 ms, zeros when nobody speaks). The file is a 2-channel AU: the
counterpart on the left, the city side (agent, announcement) on the right, each party's speech in
its own channel where it was on the call (±40 ms), and the whole call long although the caller's
line suppresses silence.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from announce import builtin_prompt
from e2e.conftest import Harness, MakeHarness
from e2e.test_timeline import AGENT, AGENT_PARTS, CALLER, CALLER_PARTS, RATE, TOLERANCE_S, expected, segments
from pbx.simulator import CallResult, SimCall
from recorderd.records.audio import decrypt_recording
from recorderd.records.play import wav_bytes
from storage.audio import parse_au

pytestmark = pytest.mark.timeout(90)


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def stored_stereo(h: Harness) -> tuple[np.ndarray, np.ndarray]:
    [row] = h.rows()
    assert row.status == "completed", row.failure_reason
    assert row.audio_path is not None
    dec = decrypt_recording(h.data_dir / row.audio_path, [h.identity])
    rate, channels, pcm = parse_au(dec.au)
    assert (rate, channels, dec.complete) == (RATE, 2, True)
    pairs = np.frombuffer(pcm, "<i2").reshape(-1, 2)
    assert abs(len(pairs) / RATE - (row.audio_seconds or 0)) < 0.05
    # what `recorderctl play` and the console's WAV hand a player: two channels too
    wav = wav_bytes(dec.au)
    assert int.from_bytes(wav[22:24], "little") == 2
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def check_channel(audio: np.ndarray, want: list[tuple[float, float]], last_only: bool = False) -> None:
    got = segments(audio)
    if last_only:  # the right channel opens with the announcement, checked apart
        got = got[-len(want) :]
    assert len(got) == len(want), (got, want)
    for (ga, gb), (wa, wb) in zip(got, want, strict=True):
        assert abs(ga - wa) <= TOLERANCE_S and abs(gb - wb) <= TOLERANCE_S, (got, want)


def check_length(audio: np.ndarray, result: CallResult) -> None:
    assert result.spy_first_frame is not None and result.spy_closed_at is not None
    call_s = (result.spy_closed_at - result.spy_first_frame) * 0.02
    assert abs(len(audio) / RATE - call_s) <= TOLERANCE_S, (len(audio) / RATE, call_s)


async def test_inbound_stereo_caller_left_city_right(make_harness: MakeHarness) -> None:
    h = await make_harness(real_time=True, channels="stereo")
    call = SimCall(caller="0311112222", dialled="0668585050", caller_audio=CALLER, agent_audio=AGENT,
                   silence_suppression=True)  # fmt: skip
    result = await h.call(call)
    assert "qEuD" in next(c for c in result.agi_commands if "Originate" in c)
    # ChanSpy D streams every 20 ms, pauses included: 640-byte frames the whole call long
    assert result.spy_first_frame is not None and result.end_frame is not None
    assert len(result.spy_pcm) % 640 == 0
    assert abs(len(result.spy_pcm) / 640 - (result.end_frame - result.spy_first_frame)) <= 2
    left, right = stored_stereo(h)
    check_length(left, result)
    parts = {"caller": CALLER_PARTS, "agent": AGENT_PARTS}
    check_channel(left, expected(result, ("caller",), parts))  # the caller alone on the left
    check_channel(right, expected(result, ("agent",), parts), last_only=True)
    # the announcement is played to the caller: the city side's channel, from the first frame
    [(_name, ann_start, ann_end)] = [s for s in result.sources if s[0] == "recorderd/announce-ja"]
    zero = result.spy_first_frame * 160
    prompt = segments(wav_samples(builtin_prompt("ja")))
    got = segments(right)
    want = [((ann_start - zero) / RATE + a, (ann_start - zero) / RATE + b) for a, b in prompt]
    for (ga, gb), (wa, wb) in zip(got, want, strict=False):
        assert abs(ga - wa) <= TOLERANCE_S and abs(gb - wb) <= TOLERANCE_S, (got, want)
    assert not left[: (ann_end - zero) - 8 * 40].any()  # no announcement on the caller's side


async def test_outbound_stereo_keeps_the_city_side_on_the_right(make_harness: MakeHarness) -> None:
    """An outbound call's spied channel is the staff's own: the daemon swaps the pairs, so the
    person reached is on the left and the city side on the right, as inbound."""
    h = await make_harness(real_time=True, channels="stereo")
    call = SimCall(caller="201", dialled="03-1234-5678", direction="outbound", caller_audio=CALLER,
                   agent_audio=AGENT, silence_suppression=True)  # fmt: skip
    result = await h.call(call)
    left, right = stored_stereo(h)
    check_length(left, result)
    parts = {"caller": CALLER_PARTS, "agent": AGENT_PARTS}
    check_channel(left, expected(result, ("agent",), parts))  # the far end (the simulator's "agent")
    check_channel(right, expected(result, ("caller",), parts))  # staff extension 201


async def test_mono_stays_the_default(make_harness: MakeHarness) -> None:
    h = await make_harness()
    call = SimCall(caller="0311112222", dialled="0668585050", caller_audio=CALLER, agent_audio=AGENT)
    result = await h.call(call)
    assert any(c.endswith("qEu,,,a") or "qEu," in c for c in result.agi_commands if "Originate" in c)
    [row] = h.rows()
    assert row.audio_path is not None
    dec = decrypt_recording(h.data_dir / row.audio_path, [h.identity])
    assert parse_au(dec.au)[1] == 1
