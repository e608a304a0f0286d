"""A disk that fills up under a call: ENOSPC from the write path, on a real (small) filesystem.

The data directory is a tmpfs of a few MB, filled by the test until the next 64 KiB chunk cannot be
written. The daemon's disk guard (which refuses *new* recordings early, tests/e2e/test_reaper_live.py)
is switched off here, so the write itself fails, as it does when something else eats the space.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from faults.conftest import FaultHarness
from recorderd.cli.status import report
from recorderd.statusfile import read_status
from storage.audio import parse_au
from storage.vault import salvage
from support.recordings import inbound, row_of, stored_pcm, wait_for_parts, when

pytestmark = pytest.mark.timeout(60)
CHUNK = 65536 + 16


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "vol"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=30)


def _write_forever(f: BinaryIO, block: bytes) -> None:
    while True:
        f.write(block)


def fill(volume: Path) -> Path:
    """Take every free byte of ``volume``."""
    filler = volume / "filler"
    block = b"\xa5" * 65536
    with filler.open("wb", buffering=0) as f, pytest.raises(OSError, match="No space left"):
        _write_forever(f, block)
    return filler


async def test_enospc_mid_call_marks_the_call_alerts_and_recovers(
    fault_harness: FaultHarness, small_volume: Path
) -> None:
    h = (await fault_harness(data_dir=small_volume / "data", extra="[monitoring]\ndisk_low_free_mb = 4\n")).h
    events = h.daemon.events
    assert h.daemon.manager is not None
    before = await h.call(inbound("0311110001", seconds=2))
    assert row_of(h.config.db_url, before).status == "completed"

    # 1. The disk fills while a call is recording: its next chunk cannot be written.
    disk_low = when(events, "disk_low", state="raised")
    ended = when(events, "call_ended")
    call = asyncio.create_task(h.sim.run_call(inbound("0311110002", seconds=30)))
    await wait_for_parts(h.data_dir, CHUNK)  # recording, one chunk on disk
    filler = fill(small_volume)
    starved = await call
    await asyncio.wait_for(ended, 10)  # its row may wait: the database is on the full disk too
    failed = events.last["call_ended"]
    assert failed["status"] == "incomplete" and "No space left" in str(failed["reason"]), failed
    assert any(r["kind"] == "recording_failed" for r in events.recent)
    await asyncio.wait_for(disk_low, 10)  # the monitor's next tick sees it

    # 2. A call that starts on the full disk: not even the file can be created.
    ended = when(events, "call_ended")
    unstarted = await h.sim.run_call(inbound("0311110003", seconds=2))
    await asyncio.wait_for(ended, 10)
    assert events.last["call_ended"]["status"] == "incomplete"
    assert h.daemon.manager.accepting  # the daemon is up throughout

    # 3. Space returns: the stalled rows are written, new calls record again.
    resolved = when(events, "disk_low", state="resolved")
    filler.unlink()
    await h.daemon.manager.drain()
    row = row_of(h.config.db_url, starved)
    assert row.status == "incomplete" and "No space left" in (row.failure_reason or "")
    assert row.audio_path is not None and row.audio_path.endswith(".age.part")
    salvaged = salvage(h.data_dir / row.audio_path, [h.identity])  # the chunks written before ENOSPC
    _rate, _ch, kept = parse_au(salvaged.data)
    assert salvaged.chunks >= 1 and len(kept) > 30000 and kept == starved.spy_pcm[: len(kept)]
    row = row_of(h.config.db_url, unstarted)
    assert row.status == "incomplete" and row.audio_path is None  # no row points at a missing file

    after = await h.call(inbound("0311110004", seconds=2))
    row = row_of(h.config.db_url, after)
    assert row.status == "completed"
    pcm, sealed = stored_pcm(h.data_dir, row, h.identity)
    assert sealed and pcm == after.spy_pcm
    await asyncio.wait_for(resolved, 10)
    assert "disk_low" not in events.open_alerts


async def test_a_full_disk_still_gets_the_status_file_rewritten(
    fault_harness: FaultHarness, small_volume: Path
) -> None:
    """Recordings fill the disk the status file shares: `recorderctl status` must still show the
    present (the disk_low alert), not the last picture from before (issue 12 item 8)."""
    h = (await fault_harness(data_dir=small_volume / "data", extra="[monitoring]\ndisk_low_free_mb = 4\n")).h
    low = when(h.daemon.events, "disk_low", state="raised")
    fill(small_volume)
    await asyncio.wait_for(low, 30)
    async with asyncio.timeout(30):  # the monitor rewrites the file within a tick of the change
        while True:
            st = read_status(h.data_dir)
            if any(a["kind"] == "disk_low" for a in st["open_alerts"]):
                break
            await asyncio.sleep(0.1)
    _summary, lines, _code = report(h.config)
    text = "\n".join(lines)
    assert lines[0].startswith("recorderd: running") and "disk_low: since" in text
