"""Rebuild the shipped announcements from ``prompts/sentences.txt`` with espeak-ng.

    python -m announce.generate OUTDIR [--espeak PATH]

Only needed when the wording changes. The generated WAVs are committed because the PBX hosts have
no speech synthesiser; this script documents, and lets anyone repeat, how they were made.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from announce.info import PromptError, PromptInfo
from announce.prepare import prepare

# The caller waits through the whole prompt before reaching staff, so it must stay short; and a
# prompt much shorter than its sentence means espeak-ng skipped or mangled words.
MIN_SECONDS, MAX_SECONDS = 3.0, 6.0


@dataclass(frozen=True, slots=True)
class Sentence:
    name: str  # output file stem, e.g. announce-ja
    voice: str
    speed: int
    text: str  # the wording as published
    speak: str  # the spelling espeak-ng pronounces correctly


def load_sentences() -> list[Sentence]:
    """The sentences shipped in ``announce/prompts/sentences.txt``."""
    parser = configparser.ConfigParser(interpolation=None)
    source = resources.files("announce").joinpath("prompts", "sentences.txt")
    parser.read_string(source.read_text(encoding="utf-8"))
    return [
        Sentence(name, s["voice"], int(s["speed"]), s["text"], s["speak"])
        for name, s in ((n, parser[n]) for n in parser.sections())
    ]


def phonemes(espeak: str, sentence: Sentence) -> str:
    """espeak-ng's phoneme transcription; PromptError if it would spell characters out."""
    out = _run([espeak, "-q", "-x", "-v", sentence.voice, sentence.speak])
    # "(en)...(ja)" marks a switch to another language's rules: that is espeak-ng naming characters
    # its voice cannot read (each kanji becomes "Chinese letter"), not speaking the sentence.
    if "(" in out:
        raise PromptError(
            f"{sentence.name}: espeak-ng voice {sentence.voice!r} cannot read part of {sentence.speak!r} "
            f"and would spell it out ({out.strip()}). Write that part phonetically in sentences.txt."
        )
    return out.strip()


def generate(outdir: Path, espeak: str = "espeak-ng") -> list[PromptInfo]:
    """Synthesise every sentence into ``outdir/<name>.wav``, converted by ``prepare``."""
    infos = []
    with tempfile.TemporaryDirectory() as tmp:
        for sentence in load_sentences():
            phonemes(espeak, sentence)
            raw = Path(tmp) / f"{sentence.name}.raw.wav"
            _run([espeak, "-v", sentence.voice, "-s", str(sentence.speed), "-w", str(raw), sentence.speak])
            info = prepare(raw, outdir / f"{sentence.name}.wav", trim=True, normalize_dbfs=-3.0, pad_s=0.2)
            if not MIN_SECONDS <= info.duration_s <= MAX_SECONDS:
                raise PromptError(
                    f"{info.path}: came out {info.duration_s:.2f} s long, outside {MIN_SECONDS:g}-"
                    f"{MAX_SECONDS:g} s. Shorten the sentence or adjust its speed in sentences.txt."
                )
            infos.append(info)
    return infos


def _run(argv: list[str]) -> str:
    # -b 1: the text is UTF-8 whatever the locale (CI runs with a minimal environment).
    argv = [argv[0], "-b", "1", *argv[1:]]
    try:
        return subprocess.run(argv, capture_output=True, check=True, encoding="utf-8").stdout
    except subprocess.CalledProcessError as exc:
        raise PromptError(f"espeak-ng failed ({exc.returncode}): {exc.stderr.strip()}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m announce.generate", description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path, help="directory to write announce-*.wav into")
    parser.add_argument("--espeak", default="espeak-ng", help="espeak-ng executable (default: %(default)s)")
    args = parser.parse_args(argv)
    espeak = shutil.which(args.espeak)
    if espeak is None:
        print(f"{args.espeak}: not found; install it (Debian: apt-get install espeak-ng)", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)
    try:
        for info in generate(args.outdir, espeak):
            print(f"{info.path}: {info.duration_s:.2f} s, peak {info.peak_dbfs:.1f} dBFS")
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
