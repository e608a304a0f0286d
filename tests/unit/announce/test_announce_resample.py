"""The numpy resampler: band-limited (no aliasing/imaging), level- and timing-preserving."""

from __future__ import annotations

import numpy as np
import pytest
from announce_audio import band_db, dominant_hz, rms_db, tone

from announce.resample import resample

SINE_RMS_DB = rms_db(tone(1000, 8000, 1.0))  # reference level of a 0.5-amplitude sine


@pytest.mark.parametrize("src", [11025, 16000, 22050, 44100, 48000, 96000])
def test_1khz_tone_keeps_frequency_and_level(src: int) -> None:
    out = resample(tone(1000, src, 1.0), src, 8000)[400:-400]  # skip the edge transients
    assert dominant_hz(out, 8000) == pytest.approx(1000, abs=5)
    assert rms_db(out) == pytest.approx(SINE_RMS_DB, abs=0.05)


@pytest.mark.parametrize(("src", "freq"), [(44100, 4100), (44100, 5000), (48000, 7000), (16000, 4500)])
def test_tones_above_4khz_are_removed_not_folded(src: int, freq: int) -> None:
    # Without a low-pass, e.g. 5 kHz would fold to 3 kHz at 8 kHz; it must be >= 40 dB down.
    out = resample(tone(freq, src, 1.0), src, 8000)[400:-400]
    assert rms_db(out) < SINE_RMS_DB - 40


def test_speech_band_survives_next_to_a_removed_alias() -> None:
    src = 44100
    mixed = tone(1000, src, 1.0) + tone(5000, src, 1.0)
    out = resample(mixed, src, 8000)[400:-400]
    assert dominant_hz(out, 8000) == pytest.approx(1000, abs=5)
    assert band_db(out, 8000, 2800, 3200) < -40  # where 5 kHz would have folded to


def test_upsampling_does_not_create_images() -> None:
    out = resample(tone(2900, 6000, 1.0), 6000, 8000)[400:-400]
    assert dominant_hz(out, 8000) == pytest.approx(2900, abs=5)
    assert band_db(out, 8000, 3000, 4000) < -40  # the image of 2.9 kHz at 6 kHz is 3.1 kHz


@pytest.mark.parametrize(
    ("n", "src"), [(44100, 44100), (44101, 44100), (12345, 16000), (999, 44101), (7, 48000)]
)
def test_output_length_is_the_rounded_duration(n: int, src: int) -> None:
    assert abs(resample(np.ones(n), src, 8000).size - n * 8000 / src) <= 0.5


def test_no_delay_is_introduced() -> None:
    # A click at 0.5 s must come out at 0.5 s: the kernel is centred on each output instant.
    x = np.zeros(44100)
    x[22050] = 1.0
    assert int(np.argmax(resample(x, 44100, 8000))) == 4000


def test_constant_input_stays_constant_away_from_the_edges() -> None:
    out = resample(np.full(22050, 0.25), 22050, 8000)
    np.testing.assert_allclose(out[200:-200], 0.25, atol=1e-9)


def test_same_rate_and_empty_input_pass_through() -> None:
    x = tone(440, 8000, 0.1)
    np.testing.assert_array_equal(resample(x, 8000, 8000), x)
    assert resample(np.zeros(0), 44100, 8000).size == 0
