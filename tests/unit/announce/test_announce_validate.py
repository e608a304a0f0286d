"""validate_prompt/load_pcm accept exactly what Asterisk's format_wav.c plays, and say why not."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from announce_audio import tone

from announce import PromptError, builtin_prompt, load_pcm, validate_prompt

PCM = (tone(1000, 8000, 0.5) * 32767).astype("<i2").tobytes()


def fmt_chunk(tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16, extra: bytes = b"") -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits) + extra


def riff(*chunks: tuple[bytes, bytes], data_size: int | None = None) -> bytes:
    """A valid RIFF/WAVE file (odd chunks padded) from (id, body) chunks.

    ``data_size`` overrides the data chunk's length field.
    """
    body = b""
    for cid, payload in chunks:
        size = data_size if cid == b"data" and data_size is not None else len(payload)
        body += cid + struct.pack("<I", size) + payload + b"\0" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_shipped_prompts_are_valid_short_and_audible(lang: str) -> None:
    path = builtin_prompt(lang)  # type: ignore[arg-type]
    assert path.name == f"announce-{lang}.wav"
    info = validate_prompt(path)
    assert (info.sample_rate, info.channels) == (8000, 1)
    assert 3.0 <= info.duration_s <= 8.0
    assert info.peak_dbfs == pytest.approx(-3.0, abs=0.1)
    pcm = np.frombuffer(load_pcm(path), dtype="<i2")
    assert pcm.size == info.frames
    assert not pcm[:1600].any()  # 0.2 s of silence at both ends
    assert not pcm[-1600:].any()
    assert np.abs(pcm[1600:-1600]).max() > 16000  # speech right after, at the normalised level


def test_unknown_builtin_language() -> None:
    with pytest.raises(ValueError, match="no built-in announcement"):
        builtin_prompt("fr")  # type: ignore[arg-type]


def test_plain_and_tolerated_layouts_pass(tmp_path: Path) -> None:
    # Asterisk skips even-sized unknown chunks and reads a fmt chunk larger than 16 bytes.
    for name, blob in {
        "plain.wav": riff((b"fmt ", fmt_chunk()), (b"data", PCM)),
        "list.wav": riff(
            (b"fmt ", fmt_chunk(extra=b"\0\0")), (b"LIST", b"INFOISFT" + b"\0" * 8), (b"data", PCM)
        ),
    }.items():
        (tmp_path / name).write_bytes(blob)
        info = validate_prompt(tmp_path / name)
        assert info.frames == len(PCM) // 2
        assert load_pcm(tmp_path / name) == PCM


def test_sox_style_file_from_soundfile_passes(tmp_path: Path) -> None:
    path = tmp_path / "city.wav"
    sf.write(path, tone(440, 8000, 1.0), 8000, subtype="PCM_16")
    assert validate_prompt(path).duration_s == pytest.approx(1.0)


def _sf(data: np.ndarray, rate: int = 8000, **kw: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, rate, **kw)
    return buf.getvalue()


MONO = tone(1000, 8000, 0.5)
BAD = {
    "stereo": (_sf(np.stack([MONO, MONO], axis=1), format="WAV", subtype="PCM_16"), "2 channels"),
    "16k": (_sf(tone(1000, 16000, 0.5), 16000, format="WAV", subtype="PCM_16"), "16000 Hz"),
    "float": (_sf(MONO, format="WAV", subtype="FLOAT"), "not plain PCM"),
    "8bit": (_sf(MONO, format="WAV", subtype="PCM_U8"), "8-bit"),
    "24bit": (_sf(MONO, format="WAV", subtype="PCM_24"), "24-bit"),
    "ulaw": (_sf(MONO, format="WAV", subtype="ULAW"), "not plain PCM"),
    "extensible": (_sf(MONO, format="WAVEX", subtype="PCM_16"), "0xfffe"),
    "silent": (riff((b"fmt ", fmt_chunk()), (b"data", bytes(16000))), "is silent"),
    "no-data-bytes": (riff((b"fmt ", fmt_chunk()), (b"data", b"")), "contains no audio"),
    "truncated": (riff((b"fmt ", fmt_chunk()), (b"data", PCM))[:-1000], "truncated"),
    "streaming": (riff((b"fmt ", fmt_chunk()), (b"data", PCM), data_size=0xFFFFFFFF), "streaming"),
    "odd-chunk": (riff((b"fmt ", fmt_chunk()), (b"junk", b"abc"), (b"data", PCM)), "odd-sized"),
    "no-fmt": (riff((b"data", PCM)), "no 'fmt ' chunk"),
    "no-data": (riff((b"fmt ", fmt_chunk())), "no 'data' chunk"),
    "text": ("この通話は録音されます".encode(), "not a RIFF/WAVE"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_rejects_what_asterisk_would_not_play(tmp_path: Path, case: str) -> None:
    blob, reason = BAD[case]
    path = tmp_path / f"{case}.wav"
    path.write_bytes(blob)
    with pytest.raises(PromptError, match=reason) as err:
        validate_prompt(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="not found"):
        validate_prompt(tmp_path / "recorderd" / "announce-ja.wav")


def test_upper_case_extension_is_refused(tmp_path: Path) -> None:
    # Asterisk treats '.WAV' as GSM-in-WAV, so a perfect PCM file under that name plays as noise.
    path = tmp_path / "announce.WAV"
    path.write_bytes(riff((b"fmt ", fmt_chunk()), (b"data", PCM)))
    with pytest.raises(PromptError, match=r"lower-case '\.wav'"):
        validate_prompt(path)


def test_load_pcm_allows_silence_but_not_a_wrong_format(tmp_path: Path) -> None:
    silent, stereo = tmp_path / "silent.wav", tmp_path / "stereo.wav"
    silent.write_bytes(BAD["silent"][0])
    stereo.write_bytes(BAD["stereo"][0])
    assert load_pcm(silent) == bytes(16000)
    with pytest.raises(PromptError, match="not mono"):
        load_pcm(stereo)
