"""The web console's fixture (tests/support/console_site.py builds the installation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.console_site import Running, running


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Running]:
    yield from running(tmp_path)
