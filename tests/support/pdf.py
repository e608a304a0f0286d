"""A rendered form read back as a person's PDF viewer would show it (``pdftotext -layout``).

Skips the test, with the package to install, where the Japanese font or pdftotext is missing
(.ci/run installs both)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from recorderd.records.forms.sheet import FormError, find_font


def pdf_text(pdf: Path) -> str:
    try:
        find_font()
    except FormError:
        pytest.skip("no Japanese font (apt-get install fonts-ipaexfont-mincho)")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not installed (apt-get install poppler-utils)")
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return done.stdout
