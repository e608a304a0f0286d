"""Read and write WAV headers exactly the way Asterisk's ``format_wav.c`` does.

Asterisk does not use a general RIFF reader. It walks chunks *without* honouring RIFF pad bytes,
takes the first ``data`` chunk, and cuts the header's length off the end of playback (it compares
the data length against the absolute file offset). So we write the canonical 44-byte header only,
and reject what Asterisk would mis-read even where other players cope.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from announce.info import PromptError

WAVE_FORMAT_PCM = 1
REDO_HINT = "Convert it with `recorderctl announce prepare` (see docs/announcements.md)."


@dataclass(frozen=True, slots=True)
class WavLayout:
    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int
    data_offset: int
    data_size: int


def read_layout(path: Path, blob: bytes) -> WavLayout:
    """Parse ``blob`` (the bytes of ``path``) as Asterisk would; PromptError says why it cannot."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise PromptError(f"{path}: not a RIFF/WAVE file. {REDO_HINT}")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    while True:
        if pos + 8 > len(blob):
            raise PromptError(f"{path}: no 'data' chunk was found; the file is damaged. {REDO_HINT}")
        chunk_id, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"data":
            break
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(blob):
                raise PromptError(f"{path}: the 'fmt ' chunk is truncated. {REDO_HINT}")
            tag, channels, rate, _byte_rate, align, bits = struct.unpack_from("<HHIIHH", blob, body)
            fmt = (tag, channels, rate, align, bits)
        elif size % 2:
            # Valid RIFF pads odd chunks to even length, but Asterisk skips exactly ``size`` bytes
            # and then fails with "Read failed (block header format)".
            raise PromptError(
                f"{path}: has an odd-sized '{chunk_id.decode('latin-1')}' chunk before the audio, "
                f"which Asterisk cannot skip. {REDO_HINT}"
            )
        pos = body + size
    if fmt is None:
        # Asterisk only checks a 'fmt ' chunk it meets before 'data'; without one it would play
        # whatever the bytes are as 8 kHz audio.
        raise PromptError(f"{path}: no 'fmt ' chunk before the audio data. {REDO_HINT}")
    tag, channels, rate, align, bits = fmt
    data_size = struct.unpack_from("<I", blob, pos + 4)[0]
    return WavLayout(tag, channels, rate, align, bits, data_offset=pos + 8, data_size=data_size)


def write_pcm16(path: Path, samples: NDArray[np.int16], sample_rate: int) -> None:
    """Write mono 16-bit PCM with the canonical 44-byte header, replacing ``path`` atomically.

    Atomic because Asterisk may be playing the old prompt to a caller while a city installs a new
    one; a half-written file would be heard as a cut-off announcement.
    """
    data = samples.astype("<i2", copy=False).tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(data), b"WAVE",
        b"fmt ", 16, WAVE_FORMAT_PCM, 1, sample_rate, sample_rate * 2, 2, 16,
        b"data", len(data),
    )  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(header + data)
            f.flush()
            os.fsync(f.fileno())
        # Readable by the asterisk user whatever our umask; ownership is the installer's job.
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise PromptError(
            f"{path}: cannot write ({exc.strerror or exc}). Check that the directory exists and that "
            "you may write to it (run as root or as the asterisk user)."
        ) from exc
