"""Log lines as journald receives them: JSON, with the priority prefix only when journald listens."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from recorderd import logs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers


def lines_written(path: Path, journal: bool, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with path.open("w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}" if journal else "0:0")
        logs.configure(json=True, stream=stream)
        log = structlog.get_logger("recorderd.calls").bind(call_id="c1", local="066*****50")
        log.info("recording_completed", seconds=3.0)
        log.warning("spy_attach_unconfirmed")
        log.error("call_not_recorded", reason="no_audio")
        logging.getLogger("pbx.agi").warning("AGI peer: protocol error")
    return path.read_text().splitlines()


def test_journald_gets_the_priority_prefix_and_pure_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = lines_written(tmp_path / "journal", True, monkeypatch)
    assert [ln[:3] for ln in out] == ["<6>", "<4>", "<3>", "<4>"]
    records = [json.loads(ln[3:]) for ln in out]
    assert records[2] == records[2] | {"event": "call_not_recorded", "level": "error", "call_id": "c1",
                                       "local": "066*****50", "logger": "recorderd.calls"}  # fmt: skip
    assert records[3]["logger"] == "pbx.agi" and records[3]["level"] == "warning"


def test_anything_else_gets_plain_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = lines_written(tmp_path / "file", False, monkeypatch)
    assert [json.loads(ln)["level"] for ln in out] == ["info", "warning", "error", "warning"]
