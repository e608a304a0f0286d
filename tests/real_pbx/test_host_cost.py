"""bench/host_cost.py on the real PBX, tiny (two calls of 6 s per mode): it keeps working, every
recording of both kinds is complete, and its section is written. No timing is asserted. The stereo
mode stands for recorderd (its check is the mono one plus taking the caller's channel), to keep the
lane's time down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import host_cost
from real_pbx.lane import lane_unavailable

pytestmark = [pytest.mark.real_pbx, pytest.mark.slow, pytest.mark.timeout(300)]


def test_host_cost_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    why = lane_unavailable()
    if why is not None:
        if os.environ.get("CI") == "true" or os.environ.get("RECORDERD_ASTERISK"):
            pytest.fail(f"real-PBX lane unavailable (CI=true or RECORDERD_ASTERISK set, so no skip): {why}")
        pytest.skip(why)
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--calls", "2", "--repeat", "1", "--call-seconds", "6", "--doc", str(doc),
            "--modes", "unrecorded,mixmonitor,recorderd-stereo"]  # fmt: skip
    assert host_cost.main(args) == 0
    out = capsys.readouterr().out
    assert "N=2 mixmonitor:" in out and "complete 2; problems none" in out
    assert "N=2 recorderd-stereo:" in out and "N=2 recorderd:" not in out
    for mode in ("mixmonitor", "recorderd-stereo"):
        line = next(x for x in out.splitlines() if x.startswith(f"N=2 {mode}:"))
        assert "complete 2; problems none" in line, line
    text = doc.read_text()
    assert "<!-- bench:host_cost:start -->" in text and "recorderd-stereo's extra host CPU" in text
