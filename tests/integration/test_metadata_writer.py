"""The metadata writer against a real catalogue (SQLite and PostgreSQL), and an SQLite file locked by
another process."""

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from recorderd.daemon.metadata import MetadataWriter
from storage.db import open_database
from storage.models import Call
from support import backend

T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


@pytest.mark.usefixtures("backend")  # on SQLite and on a real PostgreSQL server
async def test_rows_and_duration(tmp_path: Path) -> None:
    _engine, sessions = open_database(backend.url(tmp_path))
    w = MetadataWriter(sessions)
    task = asyncio.create_task(w.run())
    w.insert("c1", direction="inbound", started_at=T0, status="recording")
    w.update("c1", answered_at=T0 + dt.timedelta(seconds=2))
    w.update("c1", ended_at=T0 + dt.timedelta(seconds=62.5), status="completed")
    await w.flush()
    task.cancel()
    with sessions() as s:
        row = s.get(Call, "c1")
        assert row is not None
        assert row.status == "completed"
        assert row.duration_s == 60.5  # from answer, not from the AGI start
        assert row.started_at == T0 and row.started_at.tzinfo is not None


async def test_locked_database_delays_but_loses_nothing(tmp_path: Path) -> None:
    # SQLite only: the fault is SQLite's single-writer lock held by another process; PostgreSQL's
    # outage (server stopped while calls record) is its own fault test.
    db = tmp_path / "r.db"
    engine, sessions = open_database(f"sqlite:///{db}")
    # Another process takes an exclusive lock and holds it until we tell it to let go.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], isolation_level=None);"
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True);"
         "sys.stdin.readline(); c.execute('COMMIT')",
         str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    with engine.connect() as c:
        c.execute(text("PRAGMA busy_timeout=50"))
    stalled = asyncio.Event()
    w = MetadataWriter(sessions, on_stall=lambda _why: stalled.set())
    task = asyncio.create_task(w.run())
    try:
        for i in range(20):
            w.insert(f"c{i}", direction="inbound", started_at=T0, status="recording")
        # The writer must report the stall while the lock is held.
        await asyncio.wait_for(stalled.wait(), 30)
        assert w.stalled
        holder.stdin.write("\n")
        holder.stdin.flush()
        async with asyncio.timeout(30):
            await w.flush()
    finally:
        holder.kill()
        holder.wait()
        task.cancel()
    with sessions() as s:
        assert s.execute(text("select count(*) from calls")).scalar() == 20
    assert not w.stalled
