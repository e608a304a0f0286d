"""ChanSpy ``D`` on the real Asterisk 20.20.1 (audiosocket/lane-sip-stereo.bin, captured on the real
lane) and the simulator's rendering of it: 640-byte frames of (spied channel, peer) pairs, one every
20 ms whether anyone speaks or not; what is played to the caller is on the right."""

from __future__ import annotations

import numpy as np

from announce import builtin_prompt, load_pcm
from pbx.audiosocket.protocol import Audio, AudioSocketParser, Identified
from pbx.simulator.media import Source, Timeline
from support.captures import FIXTURES, sidecar

CAPTURE = FIXTURES / "audiosocket" / "stereo" / "lane-sip-stereo.bin"  # apart: the mono tests expect 320


def frames() -> list[bytes]:
    parser = AudioSocketParser()
    parser.receive_data(CAPTURE.read_bytes())
    parser.receive_data(b"")
    events = list(parser.events())
    assert isinstance(events[0], Identified)
    return [e.payload for e in events if isinstance(e, Audio)]


def gain(recording: np.ndarray, reference: np.ndarray) -> float:
    rec, ref = recording.astype(np.float64), reference.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(rec) + len(ref))))
    corr = np.fft.irfft(np.fft.rfft(rec, n) * np.conj(np.fft.rfft(ref, n)), n)[: len(rec)]
    return float(corr.max() / np.dot(ref, ref))


def test_the_real_d_stream_is_stereo_continuous_and_puts_the_prompt_on_the_right() -> None:
    got = frames()
    meta = sidecar(CAPTURE)
    assert {len(f) for f in got} == {640} and len(got) == meta["frame_count"]
    # continuous: the zero frames while nobody spoke are sent too (the call lasted ~16.9 s)
    assert abs(len(got) * 0.02 - meta["audio_seconds_by_frames"]) < 0.001 and len(got) > 800
    assert sum(1 for f in got if not any(f)) > 50
    pairs = np.frombuffer(b"".join(got), "<i2").reshape(-1, 2)
    prompt = np.frombuffer(load_pcm(builtin_prompt("ja")), "<i2")
    assert gain(pairs[:, 1], prompt) > 0.9  # played to the spied channel: its peer's side
    assert gain(pairs[:, 0], prompt) < 0.3


def test_the_simulator_renders_d_frames_the_same_way() -> None:
    tl = Timeline()
    said = np.full(160, 1000, "<i2").tobytes()
    played = np.full(160, -2000, "<i2").tobytes()
    tl.add(Source("caller", 0, said, from_channel=True))
    tl.add(Source("prompt", 160, played, played=True))
    first, second, quiet = (np.frombuffer(tl.render_stereo(n), "<i2").reshape(-1, 2) for n in (0, 1, 2))
    assert (first[:, 0] == 1000).all() and (first[:, 1] == 0).all()
    assert (second[:, 0] == 0).all() and (second[:, 1] == -2000).all()
    assert len(tl.render_stereo(2)) == 640 and not quiet.any()  # nobody: zeros, never nothing
