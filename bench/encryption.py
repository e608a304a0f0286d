"""Encryption overhead: store audio through the vault versus writing the same bytes raw (issue 6, part 2).

    python -m bench.encryption --hours 1 --repeat 5

One hour of 8 kHz slin (57.6 MB, the simulator's reference speech, looped) is handed over in the
blocks the daemon hands its disk threads (205 frames = 65,600 bytes), in the same run, alternately:

* **raw**: the AU stream (header + byte-swapped samples: the same bytes the vault encrypts)
  written to a plain file, fsynced after every block (the daemon's durability policy);
* **raw + SHA-256**: the same, plus the running SHA-256 that the catalogue keeps of every stored
  file (``recorderctl verify``): a plaintext recorder with the same integrity check;
* **vault**: ``storage.vault.AgeWriter`` exactly as a recording uses it: age header and key
  wrapping, ChaCha20-Poly1305 per 64 KiB chunk, SHA-256 of the ciphertext for the catalogue,
  write, fsync per chunk, then seal (rename ``.part``, fsync the directory).

Both once with fsync (what the daemon does) and once without (page cache only: the CPU cost
alone). Median of ``--repeat`` runs each, pinned to one core; wall time and CPU time.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from bench.common import DOC, Section, loadavg, percentile, pin, table, write_section
from storage.age import generate_identity, new_stream
from storage.audio import au_header, slin_to_au_payload
from storage.vault import AgeWriter

BLOCK = 205 * 320  # what recorderd.recording hands the disk thread: the first whole frame past 64 KiB
BYTES_PER_HOUR = 3600 * 16000
KINDS = ("raw", "raw+sha256", "vault")


def speech(seconds: float) -> bytes:
    """``seconds`` of real speech (the simulator's reference recording), looped."""
    with wave.open(str(files("pbx.simulator") / "audio" / "caller-speech.wav"), "rb") as w:
        pcm = w.readframes(w.getnframes())
    need = int(seconds * 16000) & ~1
    return (pcm * (need // len(pcm) + 1))[:need]


class RawFile:
    """The AU stream to a plain file, block by block, optionally with the catalogue's SHA-256."""

    def __init__(self, path: Path, *, fsync: bool, checksum: bool = False) -> None:
        self.fsync = fsync
        self.digest = hashlib.sha256() if checksum else None
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._out(au_header())

    def _out(self, block: bytes) -> None:
        if self.digest is not None:
            self.digest.update(block)
        data = memoryview(block)
        while data:
            data = data[os.write(self.fd, data) :]

    def write(self, pcm: bytes) -> None:
        self._out(slin_to_au_payload(pcm))
        if self.fsync:
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class VaultFile:
    """``AgeWriter`` exactly as a recording uses it."""

    def __init__(self, path: Path, *, fsync: bool, recipient: str) -> None:
        self.writer = AgeWriter(path, [recipient], fsync=fsync)
        self.writer.write(au_header())

    def write(self, pcm: bytes) -> None:
        self.writer.write(slin_to_au_payload(pcm))

    def close(self) -> None:
        self.writer.close()


def open_kind(kind: str, path: Path, fsync: bool, recipient: str) -> RawFile | VaultFile:
    if kind == "vault":
        return VaultFile(path, fsync=fsync, recipient=recipient)
    return RawFile(path, fsync=fsync, checksum=kind == "raw+sha256")


def store(kind: str, path: Path, pcm: bytes, fsync: bool, recipient: str) -> None:
    f = open_kind(kind, path, fsync, recipient)
    for i in range(0, len(pcm), BLOCK):
        f.write(pcm[i : i + BLOCK])
    f.close()


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(fn: Callable[[], None]) -> Timing:
    c0, t0 = time.thread_time(), time.perf_counter()
    fn()
    return Timing(time.perf_counter() - t0, time.thread_time() - c0)


def per_chunk_costs(recipient: str, tmp: Path, n: int = 400) -> dict[str, float]:
    """Median µs per 64 KiB for each step of the vault, and for the raw write and fsync."""
    block = speech(BLOCK / 16000)
    _start, enc = new_stream([recipient])
    swapped = slin_to_au_payload(block)[: 64 * 1024]
    chunk = memoryview(swapped)
    steps: dict[str, Callable[[], object]] = {
        "AU byte swap (both)": lambda: slin_to_au_payload(block),
        "ChaCha20-Poly1305 seal (vault)": lambda: enc._aead.encrypt(bytes(12), chunk, None),
        "SHA-256 of the ciphertext (vault)": lambda: hashlib.sha256(swapped).digest(),
    }
    out = {}
    for name, fn in steps.items():
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        out[name] = statistics.median(samples) * 1e6
    fd = os.open(tmp / "fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    writes, syncs = [], []
    try:
        for _ in range(n // 2):
            t0 = time.perf_counter()
            os.write(fd, swapped)
            t1 = time.perf_counter()
            os.fsync(fd)
            writes.append(t1 - t0)
            syncs.append(time.perf_counter() - t1)
    finally:
        os.close(fd)
        (tmp / "fsync-probe").unlink()
    out["write(2) to the page cache (both)"] = statistics.median(writes) * 1e6
    out["fsync(2) (both), median"] = statistics.median(syncs) * 1e6
    out["fsync(2) (both), p99"] = percentile(syncs, 99) * 1e6
    return out


def run(hours: float, repeat: int, root: Path) -> tuple[dict[str, list[Timing]], dict[str, float]]:
    _identity, recipient = generate_identity()
    pcm = speech(hours * 3600)
    results: dict[str, list[Timing]] = {}
    k = 0
    for _ in range(repeat):
        for fsync in (True, False):
            for kind in KINDS:  # alternate, so drift in the machine hits all alike
                k += 1
                path = root / f"{k}.{'age' if kind == 'vault' else 'au'}"
                t = timed(functools.partial(store, kind, path, pcm, fsync, recipient))
                path.unlink()
                results.setdefault(f"{kind}/{'fsync' if fsync else 'nofsync'}", []).append(t)
        k += 1
        for kind, t in interleaved(root / str(k), pcm, recipient).items():
            results.setdefault(f"{kind}/interleaved", []).append(t)
    return results, per_chunk_costs(recipient, root)


def interleaved(stem: Path, pcm: bytes, recipient: str) -> dict[str, Timing]:
    """The three stores side by side, block by block in rotating order, each step timed: every
    kind meets the disk in the same state at the same moment, so fsync's drift from one run to
    the next (larger than the difference measured) cancels out."""
    wall = dict.fromkeys(KINDS, 0.0)
    cpu = dict.fromkeys(KINDS, 0.0)
    paths = {kind: stem.with_suffix(f".{kind}") for kind in KINDS}
    files: dict[str, RawFile | VaultFile] = {}
    for kind in KINDS:  # opening: the vault's header and key wrapping, fsynced
        c0, t0 = time.thread_time(), time.perf_counter()
        files[kind] = open_kind(kind, paths[kind], True, recipient)
        wall[kind] += time.perf_counter() - t0
        cpu[kind] += time.thread_time() - c0
    for n, i in enumerate(range(0, len(pcm), BLOCK)):
        block = pcm[i : i + BLOCK]
        for j in range(len(KINDS)):
            kind = KINDS[(n + j) % len(KINDS)]
            c0, t0 = time.thread_time(), time.perf_counter()
            files[kind].write(block)
            wall[kind] += time.perf_counter() - t0
            cpu[kind] += time.thread_time() - c0
    for kind in KINDS:
        c0, t0 = time.thread_time(), time.perf_counter()
        files[kind].close()  # the vault seals: last chunk, rename, directory fsync
        wall[kind] += time.perf_counter() - t0
        cpu[kind] += time.thread_time() - c0
    for path in paths.values():
        path.unlink()
    return {kind: Timing(wall[kind], cpu[kind]) for kind in KINDS}


def report(hours: float, results: dict[str, list[Timing]], costs: dict[str, float]) -> str:
    def med(key: str, attr: str) -> float:
        return statistics.median(float(getattr(t, attr)) for t in results[key])

    rows = []
    for mode, label in (
        ("fsync", "fsync per block (the daemon's policy)"),
        ("interleaved", "fsync per block, the three side by side, block by block"),
        ("nofsync", "no fsync (CPU only)"),
    ):
        raw_w, sha_w, vault_w = (med(f"{k}/{mode}", "wall") for k in KINDS)
        raw_c, sha_c, vault_c = (med(f"{k}/{mode}", "cpu") for k in KINDS)
        rows.append([label, f"{raw_w:.3f}", f"{sha_w:.3f}", f"{vault_w:.3f}", f"**{vault_w / raw_w:.2f}**",
                     f"{vault_w / sha_w:.2f}", f"{raw_c:.3f} / {sha_c:.3f} / {vault_c:.3f}"])  # fmt: skip
    mb = hours * BYTES_PER_HOUR / 1e6
    body = table(
        ["mode", "raw s", "raw + SHA-256 s", "vault s", "vault / raw", "vault / (raw + SHA-256)",
         "CPU s: raw / raw + SHA-256 / vault"],
        rows,
    )  # fmt: skip
    steps = table(["step, per 64 KiB chunk", "µs (median)"], [[k, f"{v:.1f}"] for k, v in costs.items()])
    return (
        f"{hours:g} h of audio ({mb:.1f} MB of slin) stored in 65,600-byte blocks; median of "
        f"{len(results['raw/fsync'])} alternating runs, one core.\n\n{body}\n\n{steps}\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, default=1.0, help="audio to store per run")
    p.add_argument("--repeat", type=int, default=5, help="runs of each variant (median reported)")
    p.add_argument("--dir", help="where to write (default: a temporary directory under /tmp)")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    args = p.parse_args(argv)
    load = loadavg()
    pin({0})
    with tempfile.TemporaryDirectory(prefix="bench-enc-", dir=args.dir) as tmp:
        results, costs = run(args.hours, args.repeat, Path(tmp))
    text = report(args.hours, results, costs)
    print(text)
    if args.doc != "-":
        write_section(Section("encryption", text, load), Path(args.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
