"""SQLite locked by another process for 10 s: audio keeps flowing, the rows are written afterwards."""

from __future__ import annotations

import asyncio
import sys

import pytest

from faults.conftest import FaultHarness
from support.recordings import inbound, row_of, stored_pcm, when

pytestmark = pytest.mark.timeout(90)
LOCK_S = 10.0

# Another process (a backup, an admin's sqlite3 shell) takes the write lock and sits on it.
HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


async def test_a_locked_database_delays_rows_never_audio(fault_harness: FaultHarness) -> None:
    h = (await fault_harness()).h
    events = h.daemon.events
    assert h.daemon.manager is not None
    db = h.config.db_url.removeprefix("sqlite:///")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, db, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    loop = asyncio.get_running_loop()
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"locked\n"
        locked_at = loop.time()
        stalled = when(events, "metadata_writer_stalled", state="raised")
        ended = when(events, "call_ended", count=3)
        results = await asyncio.gather(
            *(h.sim.run_call(inbound(f"03111100{i:02d}", seconds=3)) for i in range(3))
        )
        await asyncio.wait_for(ended, 10)
        # Every recording is sealed on disk while the catalogue cannot take a single row.
        assert len(list(h.data_dir.rglob("*.age"))) == 3 and not list(h.data_dir.rglob("*.part"))
        await asyncio.wait_for(stalled, 15)  # a writer blocked past busy_timeout says so
        assert h.daemon.manager.accepting and h.daemon.manager.active == 0
        await asyncio.sleep(max(0.0, LOCK_S - (loop.time() - locked_at)))  # the fault lasts 10 s
    finally:
        holder.stdin.write(b"release\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(holder.wait(), 10) == 0

    resolved = when(events, "metadata_writer_stalled", state="resolved")
    await asyncio.wait_for(h.daemon.manager.drain(), 30)
    for result in results:
        row = row_of(h.config.db_url, result)
        assert row.status == "completed", row.failure_reason
        pcm, sealed = stored_pcm(h.data_dir, row, h.identity)
        assert sealed and pcm == result.spy_pcm and row.audio_sha256
    await asyncio.wait_for(resolved, 10)  # the monitor's next tick closes the alert
