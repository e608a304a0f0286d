"""The database's files become unwritable under the running daemon (issue 12 item 5).

`chattr +i` on the catalogue and every side file SQLite keeps (as root, on this ext4 /tmp; a
read-only remount does the same to a process that already has the files open). With a WAL
catalogue the daemon died of SIGBUS about a second later (SQLite's memory-mapped -shm index), with
no log line, and the calls in that window were lost. Now: the daemon lives, every call's audio is
sealed, metadata_writer_stalled is raised, and the rows are written once the files come back.

Both tests run the code in processes of their own: a SIGBUS must fail a test, not kill the run.
Whether WAL's SIGBUS strikes depends on what else has the catalogue open at that instant (another
connection holding it spared the writer; measured): the lone writer shows it every time (-7 with
WAL), the whole daemon shows the behaviour asked for (alive, alert, rows written afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.test_process import DaemonProcess, config_text
from pbx.simulator import PbxSimulator
from recorderd.statusfile import read_status
from storage.age import generate_identity
from support.recordings import inbound

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]

# The catalogue's engine exactly as the daemon opens it (storage.db), one connection, in a process
# of its own: with WAL this process died of SIGBUS on the first write after `chattr +i`.
LONE_WRITER = """
import os, subprocess, sys
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from storage.db import make_engine
db = sys.argv[1]
engine = make_engine(f"sqlite:///{db}")
with engine.begin() as c:
    c.execute(text("CREATE TABLE t (x)"))
    c.execute(text("INSERT INTO t VALUES (1)"))
files = [f for f in (db, db + "-wal", db + "-shm", db + "-journal") if os.path.exists(f)]
subprocess.run(["chattr", "+i", *files], check=True)
os.sync()
try:
    with engine.begin() as c:
        c.execute(text("INSERT INTO t VALUES (2)"))
    print("written?!")
except OperationalError as exc:
    print("refused:", exc.orig)
finally:
    subprocess.run(["chattr", "-i", *files], check=True)
with engine.begin() as c:
    c.execute(text("INSERT INTO t VALUES (3)"))
    print("rows", c.execute(text("SELECT count(*) FROM t")).scalar())
"""


def chattr(flag: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chattr", flag, *map(str, files)], capture_output=True, text=True, timeout=30)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[PbxSimulator, DaemonProcess]]:
    probe = tmp_path / "probe"
    probe.touch()
    if chattr("+i", [probe]).returncode != 0:
        pytest.skip("chattr +i does not work here (needs root and ext4/xfs/btrfs)")
    chattr("-i", [probe])
    _identity, recipient = generate_identity()
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret="p-secret", speed=25.0)
    await sim.start()
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(
        config_text(tmp_path, sim.ami_port, recipient) + "\n[retention]\ndisk_refuse_free_mb = 0\n"
    )
    proc = DaemonProcess(cfg)
    try:
        ready = await proc.start()
        sim.set_agi_target("127.0.0.1", int(str(ready["agi_port"])))
        # A call placed before the AMI login completes cannot be corroborated (its ChanSpyStart goes
        # unseen) and ends 'unverified': wait for the link, as a PBX's first call would in practice.
        await proc.expect_event("ami_connected")
        yield sim, proc
    finally:
        with contextlib.suppress(Exception):
            chattr("-i", sorted((tmp_path / "data").glob("recorderd.db*")))
        if proc.proc is not None and proc.proc.returncode is None:
            proc.proc.kill()
            await proc.proc.wait()
        await sim.close()


def completed_rows(db: Path) -> int:
    """Read and close again: a second process keeping the catalogue open changes what SQLite does
    (with WAL, another open connection spared the daemon the SIGBUS; alone, it was killed)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM calls WHERE status = 'completed'").fetchone()[0])


async def until(check: object, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(Exception):
                if check():  # type: ignore[operator]
                    return
            await asyncio.sleep(0.1)


def test_a_lone_writer_gets_an_error_not_sigbus(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.touch()
    if chattr("+i", [probe]).returncode != 0:
        pytest.skip("chattr +i does not work here (needs root and ext4/xfs/btrfs)")
    chattr("-i", [probe])
    db = tmp_path / "r.db"
    run = subprocess.run(
        [sys.executable, "-c", LONE_WRITER, str(db)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    chattr("-i", sorted(tmp_path.glob("r.db*")))
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)  # -7: SIGBUS
    assert "refused:" in run.stdout and "rows 2" in run.stdout, run.stdout


async def test_unwritable_database_files_delay_rows_never_kill_recording(
    daemon: tuple[PbxSimulator, DaemonProcess], tmp_path: Path
) -> None:
    sim, proc = daemon
    assert proc.proc is not None
    data = tmp_path / "data"
    db = data / "recorderd.db"
    await sim.run_call(inbound("0311110000", seconds=1))
    await until(lambda: completed_rows(db) == 1, 60)  # a bound: a loaded machine takes its time

    # A checkpoint has just copied the log into the database, as SQLite does by itself every 1,000
    # pages (a no-op without WAL): with WAL, the next writer then rewrites the -shm index first.
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    frozen = sorted(data.glob("recorderd.db*"))  # the catalogue and whatever side files exist now
    assert chattr("+i", frozen).returncode == 0
    # Write back what is dirty now: SQLite's next write to a mapped page then faults at once, as it
    # does in life a few seconds later (without this, a SIGBUS could come after the test).
    os.sync()
    try:
        results = await asyncio.gather(
            *(sim.run_call(inbound(f"03111100{i:02d}", seconds=2)) for i in (1, 2, 3))
        )
        assert all(r.spy_pcm for r in results)
        # The daemon lives, says the catalogue is stuck, and has sealed every recording meanwhile.
        await until(
            lambda: "metadata_writer_stalled" in {a["kind"] for a in read_status(data)["open_alerts"]}, 30
        )
        await until(lambda: len(list(data.rglob("*.age"))) == 4 and not list(data.rglob("*.part")), 60)
        assert proc.proc.returncode is None, "\n".join(proc.lines)
    finally:
        assert chattr("-i", frozen).returncode == 0

    await until(lambda: completed_rows(db) == 4, 90)  # the rows come once the files are writable
    await until(
        lambda: "metadata_writer_stalled" not in {a["kind"] for a in read_status(data)["open_alerts"]}, 30
    )
    assert await proc.stop() == 0
