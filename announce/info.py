"""The error and summary types shared by every announce module."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

# Asterisk's ``wav`` format (format_wav.c) is 8 kHz signed linear only; 16 kHz needs ``.wav16``.
ASTERISK_RATE = 8000

# A prompt whose loudest sample is below this is silence to the caller: speech over a phone line
# sits 30-50 dB higher, so anything this quiet is an empty or failed recording, not a soft one.
SILENCE_DBFS = -60.0


class PromptError(Exception):
    """A prompt cannot be used. The message names the file and says what to do about it."""


@dataclass(frozen=True, slots=True)
class PromptInfo:
    """What was written or checked, for start-up logs and ``recorderctl`` output."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    peak_dbfs: float  # -inf for digital silence

    @classmethod
    def of_pcm(cls, path: Path, pcm: npt.NDArray[np.int16], sample_rate: int) -> PromptInfo:
        """Describe mono 16-bit samples as they are (or will be) in ``path``."""
        return cls(
            path=path,
            sample_rate=sample_rate,
            channels=1,
            frames=pcm.size,
            duration_s=pcm.size / sample_rate,
            peak_dbfs=to_dbfs(peak(pcm)),
        )


def peak(pcm: npt.NDArray[np.int16]) -> float:
    """Peak amplitude of 16-bit samples, 1.0 = full scale (int32 so -32768 does not overflow)."""
    return float(np.max(np.abs(pcm.astype(np.int32)))) / 32768 if pcm.size else 0.0


def to_dbfs(peak: float) -> float:
    """Peak amplitude (1.0 = full scale) in dBFS."""
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
