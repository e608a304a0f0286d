"""Sounds, mixing and the frame grid the spy streams from."""

from __future__ import annotations

import wave
from array import array
from pathlib import Path

from pbx.simulator.media import FRAME_BYTES, SoundLibrary, Source, Timeline, beep_pcm, ulaw_encode


def pcm(*samples: int) -> bytes:
    return array("h", samples).tobytes()


def test_render_pads_partial_frames_with_silence() -> None:
    t = Timeline()
    t.add(Source("x", 150, pcm(*range(1, 21))))  # samples 150..169: straddles frames 0 and 1
    assert t.render(0) == bytes(300) + pcm(*range(1, 11))
    assert t.render(1) == pcm(*range(11, 21)) + bytes(300)
    assert t.render(2) is None  # nothing audible
    assert t.rendered_upto == 3


def test_render_mixes_with_int16_saturation() -> None:
    t = Timeline()
    t.add(Source("a", 0, pcm(30000, -30000, 5) * 60))
    t.add(Source("b", 0, pcm(30000, -30000, -7) * 60, from_channel=True))
    mixed = array("h", t.render(0) or b"")
    assert list(mixed[:3]) == [32767, -32768, -2]
    assert list(array("h", t.render(0, only_from_channel=True) or b"")[:3]) == [30000, -30000, -7]


def test_ulaw_round_trips_within_one_quantisation_step() -> None:
    values = list(range(-32767, 32768, 7))
    for x, byte in zip(values, ulaw_encode(array("h", values).tobytes()), strict=True):
        b = ~byte & 0xFF
        exponent, mantissa = (b >> 4) & 7, b & 0x0F
        decoded = (((mantissa << 3) + 0x84) << exponent) - 0x84
        decoded = -decoded if b & 0x80 else decoded
        assert abs(decoded - x) <= 1 << (exponent + 3), x
    assert ulaw_encode(pcm(0, 32767, -32767)) == b"\xff\x80\x00"


def write_wav(path: Path, data: bytes, rate: int = 8000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)


def test_sound_library(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav", pcm(1, 2, 3))
    write_wav(tmp_path / "wide.wav", pcm(1, 2, 3), rate=16000)
    write_wav(tmp_path / "stereo.wav", pcm(1, 2, 3, 4), channels=2)
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    sounds = SoundLibrary(tmp_path)
    assert sounds.load("ok") == pcm(1, 2, 3)
    assert sounds.load(str(tmp_path / "ok")) == pcm(1, 2, 3)  # absolute names work too
    for name in ("wide", "stereo", "broken", "missing"):
        assert sounds.load(name) is None  # Asterisk: "Unable to open file"
    assert sounds.load("beep") == beep_pcm()  # built in, unless the directory has one
    assert len(beep_pcm()) == 2 * 2000
    assert SoundLibrary(None).load("beep") == beep_pcm()
    write_wav(tmp_path / "beep.wav", pcm(9))
    assert SoundLibrary(tmp_path).load("beep") == pcm(9)
    assert FRAME_BYTES == 320
