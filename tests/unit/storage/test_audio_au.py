"""storage.audio: slin -> Sun AU, AU parsing, WAV export, sox interop."""

from __future__ import annotations

import shutil
import stat
import struct
import subprocess
from array import array
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st

from storage import audio

SOX = shutil.which("sox")


def _tone(seconds: float = 1.0, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * 440 * t) * 12000 + np.sin(2 * np.pi * 1250 * t) * 3000
    return np.asarray(wave, dtype="<i2")


def test_au_header_layout() -> None:
    h = audio.au_header()
    assert len(h) == 28  # six fields + the 4-byte annotation minimum, so sox does not warn
    assert struct.unpack(">4s5I4s", h) == (b".snd", 28, 0xFFFFFFFF, 3, 8000, 1, bytes(4))
    assert struct.unpack(">4s5I", audio.au_header(16000, 2)[:24])[4:] == (16000, 2)


def test_slin_to_au_payload_swaps_bytes() -> None:
    assert audio.slin_to_au_payload(b"\x01\x02\x03\x04") == b"\x02\x01\x04\x03"
    assert audio.slin_to_au_payload(b"") == b""
    pcm = _tone(0.02)  # one 20 ms, 320-byte frame
    assert np.array_equal(np.frombuffer(audio.slin_to_au_payload(pcm.tobytes()), ">i2"), pcm)
    with pytest.raises(ValueError, match="even"):
        audio.slin_to_au_payload(b"\x00\x01\x02")


@given(st.lists(st.binary(max_size=64).map(lambda b: b[: len(b) // 2 * 2]), max_size=10))
def test_frames_can_be_batched(frames: list[bytes]) -> None:
    batched = audio.slin_to_au_payload(b"".join(frames))
    assert batched == b"".join(audio.slin_to_au_payload(f) for f in frames)


def test_parse_au_round_trip() -> None:
    pcm = _tone().tobytes()
    au = audio.au_header() + audio.slin_to_au_payload(pcm)
    assert audio.parse_au(au) == (8000, 1, pcm)
    assert audio.parse_au(au + b"\x7f") == (8000, 1, pcm)  # half a sample: dropped
    sized = struct.pack(">4s5I", b".snd", 28, 4, 3, 8000, 1) + b"info" + audio.slin_to_au_payload(pcm)
    assert audio.parse_au(sized) == (8000, 1, pcm[:4])


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"RIFF" + bytes(40), "bad magic"),
        (b".snd", "shorter"),
        (struct.pack(">4s5I", b".snd", 24, 0xFFFFFFFF, 1, 8000, 1), "encoding 1"),
        (struct.pack(">4s5I", b".snd", 12, 0xFFFFFFFF, 3, 8000, 1), "malformed"),
        (struct.pack(">4s5I", b".snd", 24, 0xFFFFFFFF, 3, 0, 1), "malformed"),
    ],
)
def test_parse_au_errors(data: bytes, needle: str) -> None:
    with pytest.raises(audio.AuFormatError, match=needle):
        audio.parse_au(data)


def test_au_to_wav(tmp_path: Path) -> None:
    pcm = _tone()
    out = tmp_path / "x.wav"
    audio.au_to_wav(audio.au_header() + audio.slin_to_au_payload(pcm.tobytes()), out)
    samples, rate = soundfile.read(out, dtype="int16")
    assert rate == 8000
    assert np.array_equal(samples, pcm)
    assert soundfile.info(str(out)).subtype == "PCM_16"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.skipif(SOX is None, reason="sox is not installed")
def test_sox_reads_our_au(tmp_path: Path) -> None:
    assert SOX is not None
    pcm = _tone()
    src, out = tmp_path / "tone.au", tmp_path / "tone.wav"
    src.write_bytes(audio.au_header() + audio.slin_to_au_payload(pcm.tobytes()))
    subprocess.run([SOX, "-t", "au", str(src), "-t", "wav", str(out)], check=True, capture_output=True)
    samples, rate = soundfile.read(out, dtype="int16")
    assert rate == 8000
    assert np.array_equal(samples, pcm)
    # ...and we read what sox writes (sox writes a sized, 28+-byte header).
    back = tmp_path / "back.au"
    subprocess.run([SOX, str(out), "-t", "au", "-e", "signed-integer", str(back)], check=True)
    assert audio.parse_au(back.read_bytes()) == (8000, 1, pcm.tobytes())


def test_swap_pairs_turns_stereo_left_right_into_big_endian_right_left() -> None:
    from storage.audio import swap_pairs

    le = array("h", [1, -2, 300, -400]).tobytes()  # (L, R), (L, R), little-endian
    be = swap_pairs(le)
    assert array("h", be[:4]).tolist() != [1, -2]
    got = array("h", be)
    got.byteswap()
    assert got.tolist() == [-2, 1, -400, 300]
    with pytest.raises(ValueError, match="pairs"):
        swap_pairs(b"\x00\x01")
