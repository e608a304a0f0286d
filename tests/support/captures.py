"""Readers for the Asterisk 20.20.1 capture files in ``fixtures/asterisk-20``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk-20"
_MARK = re.compile(rb"\n#### t=([0-9.]+) (\S+) -> (\S+) \((\d+) bytes\)\n")


@dataclass(frozen=True)
class Chunk:
    t: float
    src: str
    dst: str
    data: bytes  # b"" means that side closed (FIN)


def chunks(path: Path) -> Iterator[Chunk]:
    """Yield every chunk of an ``agi/*.txt`` or ``ami/*.txt`` capture, by byte count."""
    data = path.read_bytes()
    pos = data.index(b"\n#### t=")
    while pos < len(data):
        m = _MARK.match(data, pos)
        if m is None:
            raise ValueError(f"{path}: bad marker at byte {pos}")
        n = int(m.group(4))
        yield Chunk(float(m.group(1)), m.group(2).decode(), m.group(3).decode(), data[m.end() : m.end() + n])
        pos = m.end() + n


def from_asterisk(path: Path) -> list[bytes]:
    """The chunks Asterisk sent, in order (FIN chunks kept as b"")."""
    return [c.data for c in chunks(path) if c.src == "asterisk"]


def to_asterisk(path: Path) -> list[bytes]:
    return [c.data for c in chunks(path) if c.dst == "asterisk"]


def sidecar(path: Path) -> dict[str, Any]:
    """The JSON sidecar of a capture (``x.txt`` -> ``x.env.json``, ``x.bin`` -> ``x.json``)."""
    if path.suffix == ".txt":
        return json.loads(path.with_suffix(".env.json").read_text())  # type: ignore[no-any-return]
    return json.loads(path.with_suffix(".json").read_text())  # type: ignore[no-any-return]


def agi_captures() -> list[Path]:
    return sorted((FIXTURES / "agi").glob("*.txt"))


def ami_captures() -> list[Path]:
    return sorted((FIXTURES / "ami").glob("*.txt"))


def audiosocket_captures() -> list[Path]:
    return sorted((FIXTURES / "audiosocket").glob("*.bin"))


REFERENCE_CALLER = FIXTURES / "audiosocket" / "reference" / "caller-speech.wav"
REFERENCE_AGENT = FIXTURES / "audiosocket" / "reference" / "agent-speech.wav"
