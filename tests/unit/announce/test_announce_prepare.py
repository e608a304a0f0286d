"""prepare(): any readable recording in, Asterisk's exact 8 kHz mono 16-bit WAV out."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from announce_audio import band_db, dominant_hz, tone
from numpy.typing import NDArray

from announce import PromptError, PromptInfo, prepare, validate_prompt


def prepare_raw(src: Path, dst: Path, sample_rate: int = 8000) -> PromptInfo:
    """prepare() with length and level left untouched, to measure the conversion alone."""
    return prepare(src, dst, sample_rate=sample_rate, trim=False, normalize_dbfs=None, pad_s=0.0)


def read_out(path: Path) -> NDArray[np.float64]:
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 8000, 1)
    assert path.read_bytes()[36:40] == b"data"  # canonical 44-byte header (see wavfile.py)
    out: NDArray[np.float64] = sf.read(str(path), dtype="float64")[0]
    return out


def test_44k1_stereo_float_is_mixed_resampled_and_alias_free(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    # Left speaks at 1 kHz, right carries 5 kHz that a naive decimator would fold to 3 kHz.
    stereo = np.stack([tone(1000, 44100, 1.5, 0.8), tone(5000, 44100, 1.5, 0.8)], axis=1)
    sf.write(src, stereo.astype(np.float32), 44100, subtype="FLOAT")
    info = prepare_raw(src, tmp_path / "out.wav")
    out = read_out(info.path)
    assert abs(info.frames - 1.5 * 8000) <= 1
    assert info.frames == out.size
    assert dominant_hz(out[400:-400], 8000) == pytest.approx(1000, abs=5)
    assert band_db(out[400:-400], 8000, 2800, 3200) < -40
    assert validate_prompt(info.path).frames == info.frames


def test_16k_flac(tmp_path: Path) -> None:
    src = tmp_path / "in.flac"
    sf.write(src, (tone(700, 16000, 2.0) * 32767).astype(np.int16), 16000, subtype="PCM_16")
    info = prepare_raw(src, tmp_path / "out.wav")
    out = read_out(info.path)
    assert info.frames == 16000
    assert info.duration_s == pytest.approx(2.0)
    assert dominant_hz(out[400:-400], 8000) == pytest.approx(700, abs=5)


def test_8k_int16_passes_through_sample_exact(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    pcm = (tone(1000, 8000, 0.5, 0.3) * 32767).astype(np.int16)
    sf.write(src, pcm, 8000, subtype="PCM_16")
    info = prepare_raw(src, tmp_path / "out.wav")
    np.testing.assert_array_equal(sf.read(str(info.path), dtype="int16")[0], pcm)


def test_trim_normalise_and_pad(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    rng = np.random.default_rng(0)
    # Room noise at about -60 dBFS around 1 s of "speech": the noise must be trimmed as silence.
    body = np.concatenate([np.zeros(11025), tone(440, 22050, 1.0, 0.1), np.zeros(15435)])
    sf.write(src, body + rng.normal(0, 0.001, body.size), 22050, subtype="FLOAT")
    info = prepare(src, tmp_path / "out.wav")  # defaults: trim, -3 dBFS, 0.2 s padding
    out = read_out(info.path)
    assert 1.4 <= info.duration_s <= 1.45  # 1 s of tone + 2 x 0.2 s pad + <= 2 x 20 ms margin
    assert info.peak_dbfs == pytest.approx(-3.0, abs=0.05)
    assert not out[:1600].any()  # exact digital silence padding
    assert not out[-1600:].any()
    assert np.abs(out[1600 + 160 : 1600 + 320]).max() > 0.5  # the tone starts right after


def test_over_full_scale_float_clips_instead_of_wrapping(tmp_path: Path) -> None:
    src = tmp_path / "hot.wav"
    sf.write(src, tone(500, 8000, 0.5, 1.6).astype(np.float32), 8000, subtype="FLOAT")
    out = sf.read(str(prepare_raw(src, tmp_path / "out.wav").path), dtype="int16")[0]
    positive_half = out[(np.arange(out.size) % 16) < 8][1:]  # 500 Hz at 8 kHz: 16-sample cycles
    assert out.max() == 32767
    assert out.min() == -32768
    assert positive_half.min() >= 0  # a wrapped sample would show up as a negative spike


def test_nan_samples_do_not_poison_the_output(tmp_path: Path) -> None:
    src = tmp_path / "nan.wav"
    x = tone(1000, 8000, 0.5).astype(np.float32)
    x[100] = np.nan
    sf.write(src, x, 8000, subtype="FLOAT")
    info = prepare(src, tmp_path / "out.wav")
    assert info.peak_dbfs == pytest.approx(-3.0, abs=0.05)


def test_replaces_existing_file_atomically_and_readable_for_asterisk(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.wav", tmp_path / "announce-ja.wav"
    sf.write(src, tone(1000, 8000, 0.5), 8000)
    dst.write_bytes(b"old prompt")
    prepare(src, dst)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["announce-ja.wav", "in.wav"]  # no temp left


def test_16k_output_uses_asterisks_wav16_name(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, tone(1000, 44100, 0.5), 44100)
    info = prepare_raw(src, tmp_path / "out.wav16", sample_rate=16000)
    assert (info.sample_rate, info.frames) == (16000, 8000)
    with pytest.raises(ValueError, match="8000 or 16000"):
        prepare(src, tmp_path / "out.wav", sample_rate=44100)


def _text_as_wav(p: Path) -> None:
    p.write_text("この通話は録音されます\n", encoding="utf-8")


def _empty(p: Path) -> None:
    sf.write(p, np.zeros(0), 8000)


def _silent(p: Path) -> None:
    sf.write(p, np.zeros(8000), 8000)


def _hiss_below_floor(p: Path) -> None:
    sf.write(p, tone(1000, 8000, 1.0, 10**-3.5), 8000, subtype="FLOAT")  # -70 dBFS


def _ultrasonic_only(p: Path) -> None:
    # Nothing is left once limited to 4 kHz. Faded in and out, because an abrupt start is a click,
    # and a click does have energy in the telephone band.
    fade = np.hanning(4410)
    envelope = np.concatenate([fade[:2205], np.ones(44100 - 4410), fade[2205:]])
    sf.write(p, tone(10000, 44100, 1.0) * envelope, 44100)


def _too_long(p: Path) -> None:
    sf.write(p, np.full(61 * 1000, 0.1), 1000)  # 61 s, kept small by the 1 kHz rate


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "no such file"),
        (_text_as_wav, "not a readable audio file"),
        (_empty, "contains no audio"),
        (_silent, "is silent"),
        (_hiss_below_floor, "is silent"),
        (_ultrasonic_only, "phone line"),
        (_too_long, "61.0 s long"),
    ],
)
def test_unusable_input_is_a_prompt_error_naming_the_file(
    tmp_path: Path, make: Callable[[Path], None] | None, message: str
) -> None:
    src = tmp_path / "city-recording.wav"
    if make is not None:
        make(src)
    with pytest.raises(PromptError, match=message) as err:
        prepare(src, tmp_path / "out.wav")
    assert str(src) in str(err.value)
    assert not (tmp_path / "out.wav").exists()


def test_max_duration_is_configurable(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, tone(1000, 8000, 2.0), 8000)
    with pytest.raises(PromptError, match=r"at most 1\.5 s"):
        prepare(src, tmp_path / "out.wav", max_duration_s=1.5)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="not a regular file"):
        prepare(tmp_path, tmp_path / "out.wav")


@pytest.mark.parametrize("name", ["out.WAV", "out.sln", "out"])
def test_output_name_must_be_lower_case_wav(tmp_path: Path, name: str) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, tone(1000, 8000, 0.5), 8000)
    with pytest.raises(PromptError, match=r"'\.wav' \(lower case\)"):
        prepare(src, tmp_path / name)


def test_unwritable_destination(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, tone(1000, 8000, 0.5), 8000)
    with pytest.raises(PromptError, match="cannot write"):
        prepare(src, tmp_path / "missing-dir" / "out.wav")
