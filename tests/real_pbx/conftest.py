"""The real-PBX lane's fixtures: one Asterisk and one daemon per test module.

Without a built Asterisk (scripts/build-asterisk) or the tools, the lane is skipped with the reason
(printed in the summary, also under -q). Under CI=true, or when RECORDERD_ASTERISK names a build, it
never skips: a missing piece fails every test instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from real_pbx.lane import Lane, lane_unavailable

_SKIPPED: set[str] = set()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for why in sorted(_SKIPPED):
        terminalreporter.write_line(f"real_pbx lane SKIPPED: {why}", yellow=True)


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    why = lane_unavailable()
    if why is not None:
        if os.environ.get("CI") == "true" or os.environ.get("RECORDERD_ASTERISK"):
            pytest.fail(f"real-PBX lane unavailable (CI=true or RECORDERD_ASTERISK set, so no skip): {why}")
        _SKIPPED.add(why)
        pytest.skip(f"real-PBX lane: {why}")
    lane = Lane(tmp_path_factory.mktemp("real-pbx"))
    try:
        lane.start()
        yield lane
    finally:
        lane.close()
