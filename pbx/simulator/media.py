"""Sounds and the per-call audio timeline that the ChanSpy stream is rendered from.

All positions are absolute sample indices on the call's own grid: sample 0 is the moment the
call started, and frame ``n`` covers samples ``[160 n, 160 (n + 1))``. Working in integers keeps
``CallResult.played`` offsets exact to the sample, which the tests rely on.
"""

from __future__ import annotations

import math
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "RATE",
    "SoundLibrary",
    "Source",
    "Timeline",
    "beep_pcm",
    "ulaw_encode",
]

RATE = 8000
FRAME_SAMPLES = 160
FRAME_BYTES = 2 * FRAME_SAMPLES
FRAME_SECONDS = FRAME_SAMPLES / RATE
_SILENCE = bytes(FRAME_BYTES)


def beep_pcm() -> bytes:
    """The built-in ``beep``: 1 kHz for 0.25 s (stock Asterisk ships a GSM file we do not have)."""
    samples = array("h", (round(8000 * math.sin(2 * math.pi * 1000 * k / RATE)) for k in range(2000)))
    return samples.tobytes()  # the host is little-endian (x86/arm64), as slin requires


class SoundLibrary:
    """Resolves ``STREAM FILE`` / ``Playback`` names like Asterisk's file layer, WAV only."""

    def __init__(self, sounds_dir: Path | None) -> None:
        self._dir = sounds_dir
        self._cache: dict[str, bytes | None] = {}

    def load(self, name: str) -> bytes | None:
        """PCM of ``name`` (no extension), or None when Asterisk would say it cannot open it."""
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def _read(self, name: str) -> bytes | None:
        path: Path | None = None
        if name.startswith("/"):
            path = Path(name + ".wav")
        elif self._dir is not None:
            path = self._dir / f"{name}.wav"
        if path is not None and path.is_file():
            try:
                with wave.open(str(path), "rb") as w:
                    # Anything but 8 kHz mono 16-bit would need a transcoder we do not simulate.
                    if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
                        return None
                    return w.readframes(w.getnframes())
            except (OSError, wave.Error, EOFError):
                return None
        return beep_pcm() if name == "beep" else None


@dataclass
class Source:
    name: str
    start: int  # absolute sample index
    pcm: bytes
    from_channel: bool = False  # said by the spied party (the caller), not played to it
    played: bool = False  # a file the PBX plays (STREAM FILE): frames flow even through its silence

    @property
    def end(self) -> int:
        return self.start + len(self.pcm) // 2


class Timeline:
    """Everything audible on one call, mixed on demand one 20 ms frame at a time."""

    def __init__(self) -> None:
        self._sources: list[Source] = []
        self.rendered_upto = 0  # first frame no spy has rendered yet

    def add(self, source: Source) -> None:
        self._sources.append(source)

    @property
    def sources(self) -> list[Source]:
        return list(self._sources)

    def pbx_playing(self, frame: int) -> bool:
        """Is the PBX itself playing a file in this frame (not a party speaking)?"""
        lo, hi = frame * FRAME_SAMPLES, (frame + 1) * FRAME_SAMPLES
        return any(s.played and s.start < hi and s.end > lo for s in self._sources)

    def render(self, frame: int, only_from_channel: bool = False) -> bytes | None:
        """Mono mix of the frame (int16 saturating add), or None when nothing is audible.

        ``only_from_channel`` is ChanSpy's ``o`` option: just what the spied channel says.
        """
        return self._mix(frame, lambda s: s.from_channel or not only_from_channel)

    def render_stereo(self, frame: int) -> bytes:
        """ChanSpy's ``D`` option: 640 bytes, (left, right) sample pairs; left = what the spied
        channel says, right = what it hears (its peer, files played to it). Always a frame: ChanSpy's
        generator fills a side with zeros when it has nothing (app_chanspy.c, spy_generate)."""
        left = array("h", self._mix(frame, lambda s: s.from_channel) or _SILENCE)
        right = array("h", self._mix(frame, lambda s: not s.from_channel) or _SILENCE)
        pairs = array("h", bytes(2 * FRAME_BYTES))
        pairs[0::2] = left
        pairs[1::2] = right
        return pairs.tobytes()

    def _mix(self, frame: int, chosen: Callable[[Source], bool]) -> bytes | None:
        self.rendered_upto = max(self.rendered_upto, frame + 1)
        lo, hi = frame * FRAME_SAMPLES, (frame + 1) * FRAME_SAMPLES
        live = [s for s in self._sources if s.start < hi and s.end > lo and chosen(s)]
        if not live:
            return None
        if len(live) == 1:  # the common case (turn-taking): no arithmetic needed
            return _window(live[0], lo, hi)
        mixed = array("h", _SILENCE)
        for s in live:
            part = array("h", _window(s, lo, hi))
            for k, v in enumerate(part):
                mixed[k] = max(-32768, min(32767, mixed[k] + v))
        return mixed.tobytes()


def _window(s: Source, lo: int, hi: int) -> bytes:
    """Samples [lo, hi) of one source, zero-padded where the source does not cover them."""
    a, b = max(lo, s.start), min(hi, s.end)
    body = s.pcm[2 * (a - s.start) : 2 * (b - s.start)]
    return bytes(2 * (a - lo)) + body + bytes(2 * (hi - b))


def _ulaw_byte(sample: int) -> int:
    # G.711 mu-law, the classic Sun reference algorithm (bias 0x84, clip 32635).
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


_ULAW = bytes(_ulaw_byte(v) for v in range(-32768, 32768))


def ulaw_encode(pcm: bytes) -> bytes:
    """slin -> mu-law, for spies dialled without ``/c(slin)`` from a SIP (ulaw) channel."""
    return bytes(_ULAW[v + 32768] for v in array("h", pcm))
