"""Start-up checks: refuse a prompt Asterisk would not play, before the first caller is affected.

If Asterisk cannot open the announcement, ``STREAM FILE`` fails and the caller is put through
without hearing that the call is recorded, which regulation 3(3) forbids. So the daemon checks the
file the way ``format_wav.c`` reads it and stops with a reason instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from announce.info import ASTERISK_RATE, SILENCE_DBFS, PromptError, PromptInfo, peak, to_dbfs
from announce.wavfile import REDO_HINT, WAVE_FORMAT_PCM, read_layout


def validate_prompt(path: Path) -> PromptInfo:
    """Check ``path`` is an 8 kHz mono 16-bit PCM ``.wav`` with audible content; else PromptError."""
    path = Path(path)
    pcm = _read_checked(path)
    if to_dbfs(peak(pcm)) < SILENCE_DBFS:
        raise PromptError(f"{path}: is silent; callers would hear nothing. Record the announcement again.")
    return PromptInfo.of_pcm(path, pcm, ASTERISK_RATE)


def load_pcm(path: Path) -> bytes:
    """The prompt's audio as signed 16-bit little-endian 8 kHz mono (Asterisk's ``slin``).

    Format-checked like ``validate_prompt`` (a simulator must refuse what Asterisk refuses), but a
    silent prompt loads, because Asterisk would play it.
    """
    return _read_checked(Path(path)).astype("<i2", copy=False).tobytes()


def _read_checked(path: Path) -> NDArray[np.int16]:
    if path.suffix != ".wav":
        # Asterisk chooses the decoder by extension; '.WAV' (upper case) means GSM in WAV.
        raise PromptError(f"{path}: Asterisk plays 8 kHz PCM only from a name ending in lower-case '.wav'.")
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise PromptError(
            f"{path}: announcement file not found. Install it (docs/announcements.md) or fix the "
            "announcement's file/sound in the configuration."
        ) from None
    except OSError as exc:
        raise PromptError(f"{path}: cannot read ({exc.strerror or exc}); check its permissions.") from exc
    layout = read_layout(path, blob)
    problems: list[str] = []
    if layout.format_tag != WAVE_FORMAT_PCM:
        problems.append(f"encoding is format {layout.format_tag:#06x}, not plain PCM (1)")
    if layout.channels != 1:
        problems.append(f"{layout.channels} channels, not mono")
    if layout.sample_rate != ASTERISK_RATE:
        problems.append(f"{layout.sample_rate} Hz, not {ASTERISK_RATE} Hz")
    if layout.bits != 16 or layout.block_align != 2 * max(1, layout.channels):
        problems.append(f"{layout.bits}-bit samples, not 16-bit")
    if problems:
        raise PromptError(f"{path}: {'; '.join(problems)}. {REDO_HINT}")
    if layout.data_size == 0:
        raise PromptError(f"{path}: contains no audio. Record the announcement again.")
    available = len(blob) - layout.data_offset
    if layout.data_size > available or layout.data_size % 2:
        # Also catches 0xFFFFFFFF "streaming" sizes, which Asterisk refuses to open.
        raise PromptError(
            f"{path}: the header announces {layout.data_size} bytes of audio but the file holds "
            f"{available}; it is truncated or was written by a streaming tool. {REDO_HINT}"
        )
    end = layout.data_offset + layout.data_size
    return np.frombuffer(blob[layout.data_offset : end], dtype="<i2")
