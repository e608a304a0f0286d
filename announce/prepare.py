"""Turn any recording a city hands us into a prompt Asterisk can play.

``recorderctl announce prepare`` and ``announce.generate`` both go through ``prepare``, so the
shipped prompts and a city's own recording get identical treatment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from announce.info import ASTERISK_RATE, SILENCE_DBFS, PromptError, PromptInfo, to_dbfs
from announce.resample import resample
from announce.wavfile import write_pcm16

# Asterisk picks the reader by extension: ``.wav`` is 8 kHz slin, ``.wav16`` 16 kHz, and an
# upper-case ``.WAV`` is GSM-in-WAV, which would play our PCM as noise.
_SUFFIX = {8000: ".wav", 16000: ".wav16"}
_FRAME_S = 0.010  # silence-trim analysis frame
_TRIM_RANGE_DB = 40.0  # frames this far below the loudest frame count as silence (room noise)
_TRIM_MARGIN_FRAMES = 2  # keep 20 ms around the speech so soft onsets and releases survive


def prepare(
    src: Path,
    dst: Path,
    *,
    sample_rate: int = ASTERISK_RATE,
    trim: bool = True,
    normalize_dbfs: float | None = -3.0,
    pad_s: float = 0.2,
    max_duration_s: float = 60.0,
) -> PromptInfo:
    """Convert ``src`` (WAV/FLAC/OGG/... any rate, channels, int or float) into a mono 16-bit WAV.

    Channels are averaged, the audio is resampled band-limited to ``sample_rate``, optionally
    trimmed of leading/trailing silence, scaled so its peak is ``normalize_dbfs`` (None keeps the
    level, clipping at full scale), and padded with ``pad_s`` of silence at both ends.
    """
    src, dst = Path(src), Path(dst)
    suffix = _SUFFIX.get(sample_rate)
    if suffix is None:
        raise ValueError(f"Asterisk plays WAV at 8000 or 16000 Hz only, not {sample_rate}")
    if dst.suffix != suffix:
        raise PromptError(
            f"{dst}: Asterisk only reads {sample_rate} Hz PCM from a file ending in '{suffix}' "
            f"(lower case); name the output e.g. {dst.with_suffix(suffix).name}."
        )
    audio, rate = _read_mono(src, max_duration_s)
    _require_audible(audio, src, "after mixing to mono")
    audio = resample(audio, rate, sample_rate)
    # A recording of only high-pitched sound is left empty by the low-pass.
    _require_audible(audio, src, f"below {sample_rate // 2} Hz, the band a phone line carries")
    if trim:
        audio = _trim_silence(audio, sample_rate)
    if normalize_dbfs is not None:
        audio *= 10 ** (normalize_dbfs / 20) / np.max(np.abs(audio))
    pad = np.zeros(round(pad_s * sample_rate))
    pcm = _to_int16(np.concatenate([pad, audio, pad]))
    write_pcm16(dst, pcm, sample_rate)
    return PromptInfo.of_pcm(dst, pcm, sample_rate)


def _read_mono(src: Path, max_duration_s: float) -> tuple[NDArray[np.float64], int]:
    if not src.exists():
        raise PromptError(f"{src}: no such file. Check the path of the recording to convert.")
    if not src.is_file():
        raise PromptError(f"{src}: not a regular file. Give the path of the recording itself.")
    try:
        # Checked before decoding so a mistaken 2-hour file is refused without reading it all.
        info = sf.info(str(src))
        if info.frames == 0:
            raise PromptError(f"{src}: contains no audio. Record the announcement again.")
        duration = info.frames / info.samplerate
        if duration > max_duration_s:
            raise PromptError(
                f"{src}: is {duration:.1f} s long; an announcement may be at most {max_duration_s:g} s. "
                "Callers wait through all of it: shorten the recording."
            )
        data, rate = sf.read(str(src), dtype="float64", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise PromptError(
            f"{src}: not a readable audio file ({exc}). Export the recording as WAV, FLAC or OGG."
        ) from exc
    # Averaging (not summing) keeps the level of a dual-mono recording and cannot clip.
    # Float files may carry NaN/inf from broken editors; they must not poison the normalisation.
    mono = np.nan_to_num(data.mean(axis=1), nan=0.0, posinf=1.0, neginf=-1.0)
    return mono, int(rate)


def _require_audible(audio: NDArray[np.float64], src: Path, where: str) -> None:
    peak = to_dbfs(float(np.max(np.abs(audio))))
    if peak < SILENCE_DBFS:
        raise PromptError(
            f"{src}: is silent (peak {peak:.0f} dBFS {where}). Check the microphone and record "
            "the announcement again."
        )


def _trim_silence(audio: NDArray[np.float64], rate: int) -> NDArray[np.float64]:
    """Drop leading/trailing frames that are quiet relative to the speech, not absolutely."""
    frame = max(1, round(_FRAME_S * rate))
    n_frames = -(-audio.size // frame)
    padded = np.zeros(n_frames * frame)
    padded[: audio.size] = audio
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-12))
    threshold = max(SILENCE_DBFS, float(level.max()) - _TRIM_RANGE_DB)
    loud = np.flatnonzero(level >= threshold)
    first = max(0, int(loud[0]) - _TRIM_MARGIN_FRAMES)
    last = min(n_frames, int(loud[-1]) + 1 + _TRIM_MARGIN_FRAMES)
    return audio[first * frame : last * frame]


def _to_int16(audio: NDArray[np.float64]) -> NDArray[np.int16]:
    # Clip before the cast: a float overshoot would otherwise wrap around to a full-scale click.
    # No dither: the prompt is re-quantised to 8-bit G.711 on the line, which swamps 16-bit error.
    return np.clip(np.rint(audio * 32767), -32768, 32767).astype(np.int16)
