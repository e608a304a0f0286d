"""The prompts shipped inside the package, found wherever the package is installed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal, get_args

from announce.info import PromptError

Language = Literal["ja", "en"]


def builtin_prompt(lang: Language) -> Path:
    """Path of the shipped ``announce-<lang>.wav`` (8 kHz mono 16-bit PCM)."""
    if lang not in get_args(Language):
        raise ValueError(f"no built-in announcement for {lang!r}; choose one of {get_args(Language)}")
    found = resources.files("announce").joinpath("prompts", f"announce-{lang}.wav")
    # Asterisk needs a real file to copy from; a zipped install has none, and as_file() would hand
    # back a temporary copy that vanishes as soon as its context closes.
    if not isinstance(found, Path) or not found.is_file():
        raise PromptError(
            f"built-in announcement {found} is not a file on disk; reinstall recorderd from a wheel "
            "or sdist (not as a zip), or install your own announcement (docs/announcements.md)."
        )
    return found
