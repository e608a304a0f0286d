"""Signal helpers shared by the announce tests (synthetic inputs and spectrum measurements)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> NDArray[np.float64]:
    t = np.arange(round(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def spectrum(x: NDArray[np.float64], rate: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Frequencies and Hann-windowed magnitude in dB (relative to the strongest bin)."""
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / rate).astype(np.float64)
    return freqs, 20 * np.log10(mag / mag.max() + 1e-300)


def dominant_hz(x: NDArray[np.float64], rate: int) -> float:
    freqs, db = spectrum(x, rate)
    return float(freqs[np.argmax(db)])


def band_db(x: NDArray[np.float64], rate: int, lo: float, hi: float) -> float:
    """Strongest component between ``lo`` and ``hi`` Hz, in dB relative to the strongest overall."""
    freqs, db = spectrum(x, rate)
    return float(db[(freqs >= lo) & (freqs <= hi)].max())


def rms_db(x: NDArray[np.float64]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-300))
