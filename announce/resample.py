"""Band-limited sample-rate conversion in plain numpy (scipy is not a dependency of the daemon).

A rational polyphase resampler: each output sample is a dot product of the nearby input samples
with a Kaiser-windowed sinc evaluated at their distance from the output instant. The low-pass is
placed *below* the lower Nyquist frequency, so nothing above 4 kHz survives into an 8 kHz prompt
to fold back as aliasing (a naive decimator turns a 5 kHz sibilant into a 3 kHz whistle).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

# Flat up to 85 % of the lower Nyquist frequency: 3.4 kHz at 8 kHz, the top of the telephone band,
# so the filter removes nothing a G.711 line would have carried.
PASSBAND = 0.85
# Everything at or above the lower Nyquist frequency is attenuated at least this much.
STOPBAND_DB = 80.0
# Coefficient-table budget (float64). Common rates need a few thousand; an odd rate such as
# 44 101 Hz would need 8000 phases, so its step is approximated instead (see ``resample``).
_MAX_TABLE = 2_000_000
# Output samples computed per vectorised block, bounding the gathered window matrix's memory.
_BLOCK_ELEMENTS = 1 << 21


def resample(x: NDArray[np.float64], src_rate: int, dst_rate: int) -> NDArray[np.float64]:
    """Resample mono ``x`` from ``src_rate`` to ``dst_rate``; ``len(out) == round(len(x) * ratio)``."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate or x.size == 0:
        return np.array(x, dtype=np.float64)
    half, table, step = _design(src_rate, dst_rate)
    taps = 2 * half
    n_out = (x.size * dst_rate + src_rate // 2) // src_rate
    # Output n sits at input position n * M / L: integer part picks the window, remainder the phase.
    positions = np.arange(n_out, dtype=np.int64) * step.numerator
    base = positions // step.denominator
    phase = positions % step.denominator
    # Window i covers x[i - half + 1 : i + half + 1]; zero padding makes the edges well defined.
    left = half - 1
    right = max(0, int(base[-1]) + taps - x.size - left)
    padded = np.concatenate([np.zeros(left), x, np.zeros(right)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)
    out = np.empty(n_out)
    block = max(1, _BLOCK_ELEMENTS // taps)
    for start in range(0, n_out, block):
        stop = min(start + block, n_out)
        out[start:stop] = np.einsum("ij,ij->i", windows[base[start:stop]], table[phase[start:stop]])
    return out


def _design(src_rate: int, dst_rate: int) -> tuple[int, NDArray[np.float64], Fraction]:
    """Return (half-length in input samples, table[phase, tap], input step per output sample)."""
    nyquist = min(src_rate, dst_rate) / 2
    pass_hz = PASSBAND * nyquist
    cutoff = (pass_hz + nyquist) / 2 / src_rate  # cycles per input sample
    # Kaiser's design formulas (Oppenheim & Schafer, section 7.5.3) in input-sample units.
    transition = 2 * math.pi * (nyquist - pass_hz) / src_rate
    half = math.ceil((STOPBAND_DB - 7.95) / (2.285 * transition) / 2)
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    taps = 2 * half
    # Exact for every real-world rate. For an odd rate the nearest step that fits the table budget
    # is used: timing drifts by at most ~2e-5 (about 1 ms over a 60 s prompt), which is inaudible.
    step = Fraction(src_rate, dst_rate).limit_denominator(max(1, _MAX_TABLE // taps))
    phases = np.arange(step.denominator, dtype=np.float64)[:, None] / step.denominator
    offsets = np.arange(taps, dtype=np.float64)[None, :] - (half - 1)
    u = phases - offsets  # distance (input samples) from the output instant to each input sample
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (u / half) ** 2, 0.0, None))) / np.i0(beta)
    table = 2 * cutoff * np.sinc(2 * cutoff * u) * window
    # Unit DC gain in every phase, so a constant input stays exactly constant (no phase ripple).
    table /= table.sum(axis=1, keepdims=True)
    return half, table, step
