"""SIGKILL in the middle of a reaper pass, in a real subprocess: after a restart every recording is
either fully present (file intact, row unchanged) or fully deleted and logged, never in between.

The child runs a real pass; the test replaces one os function in the child only (unlink, fsync or
replace) with one that stops right before its Nth call and says so on stdout. The parent then kills
the child with SIGKILL (no cleanup, no atexit), settles what it left, and checks every call.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from recorderd.config import Config, load_config
from recorderd.retention.reaper import Reaper
from storage import erase, retention_log
from storage.models import Call, RetentionIntent
from storage.vault import sha256_file
from support.retention_seed import Clock, Seeded, config_text, jst, seed, sessions_for

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.timeout(60)]

RETENTION = """
[retention]
default = "short"
batch_size = 5
policy_change_grace_h = 0
max_clock_jump_h = 100000
[retention.stores]
secondary = "{root}/secondary"
[retention.policies.short]
keep = {{ days = 1 }}
[retention.policies.tiered]
keep = {{ days = 1 }}
tiers = [{{ store = "secondary", keep = {{ days = 100 }} }}]
"""
NOW = jst(2026, 3, 1)

CHILD = r"""
import asyncio, datetime as dt, os, sys, time
from pathlib import Path
from recorderd import logs
from recorderd.config import load_config
from recorderd.retention.reaper import Reaper
from storage.db import open_database

config_path, name, nth, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
real, calls = getattr(os, name), 0

def stop_before_nth(*args, **kw):
    global calls
    if calls == nth:
        print("paused", flush=True)
        time.sleep(600)  # the parent SIGKILLs us here
    calls += 1
    return real(*args, **kw)

setattr(os, name, stop_before_nth)
logs.configure(stream=sys.stderr)  # stdout is for "paused"
config = load_config(Path(config_path))
_engine, sessions = open_database(config.db_url)
asyncio.run(Reaper(config, sessions, clock=lambda: dt.datetime.fromisoformat(now)).run_pass())
print("finished", flush=True)
"""


def setup(tmp_path: Path, line: str) -> tuple[Path, Config, list[Seeded]]:
    path = tmp_path / "recorderd.toml"
    path.write_text(config_text(tmp_path, RETENTION.format(root=tmp_path)))
    config = load_config(path)
    sessions = sessions_for(config)
    calls = seed(
        config, sessions, [(jst(2026, 1, 1 + i // 4, 9 + i % 4), line) for i in range(12)], size=4096
    )
    return path, config, calls


def kill_midway(path: Path, name: str, nth: int) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), name, str(nth), NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "paused"
    finally:
        child.kill()  # SIGKILL
        child.wait(10)
    assert child.returncode == -9


def check_all_or_nothing(config: Config, calls: list[Seeded]) -> tuple[int, int]:
    """Each call fully present or fully deleted and logged; returns (present, deleted)."""
    sessions = sessions_for(config)
    present = deleted = 0
    with sessions() as s:
        assert not list(s.scalars(select(RetentionIntent)))
        for c in calls:
            r = s.get(Call, c.id)
            assert r is not None
            logged = [e.action for e in retention_log.entries(s, call_id=c.id) if e.action == "delete"]
            copies = [p for p in (c.path, config.retention.stores["secondary"] / c.rel) if p.exists()]
            if r.audio_path is not None:
                assert r.audio_deleted_at is None and not logged
                assert copies == [config.data_dir / r.audio_path]  # exactly one file, where the row says
                assert sha256_file(copies[0]) == c.sha256
                present += 1
            else:
                assert r.audio_deleted_at is not None and logged == ["delete"] and not copies
                deleted += 1
    assert not list(config.data_dir.rglob("*.copying")) and not list(
        Path(config.data_dir.parent).rglob("*.copying")
    )
    return present, deleted


@pytest.mark.parametrize(
    ("name", "nth", "expect_deleted"),
    [
        ("unlink", 0, 0),  # intents written, nothing removed yet: all rolled back
        ("unlink", 3, 3),  # three of a batch of five removed: those finished, the rest rolled back
        ("fsync", 0, 5),  # the whole first batch removed, directory not yet synced: finished
    ],
)
async def test_sigkill_mid_deletion(tmp_path: Path, name: str, nth: int, expect_deleted: int) -> None:
    path, config, calls = setup(tmp_path, "general")
    kill_midway(path, name, nth)
    sessions = sessions_for(config)
    with sessions() as s:
        assert len(list(s.scalars(select(RetentionIntent)))) == 5  # the batch in flight

    settled = erase.recover(sessions, NOW)  # what the next start does first
    assert len(settled) == 5
    assert check_all_or_nothing(config, calls) == (12 - expect_deleted, expect_deleted)
    report = await Reaper(config, sessions, clock=Clock(NOW)).run_pass()
    assert report.deleted == 12 - expect_deleted
    assert check_all_or_nothing(config, calls) == (0, 12)


@pytest.mark.parametrize(
    ("name", "nth", "moved_before_restart"),
    [
        ("replace", 2, 0),  # two copies renamed into place, the third not: the batch is rolled back
        ("unlink", 2, 5),  # rows switched to the copies, two originals unlinked: the rest are unlinked
    ],
)
async def test_sigkill_mid_move(tmp_path: Path, name: str, nth: int, moved_before_restart: int) -> None:
    path, config, calls = setup(tmp_path, "tiered")
    kill_midway(path, name, nth)
    sessions = sessions_for(config)
    erase.recover(sessions, NOW)
    with sessions() as s:
        stores = [r.audio_store for r in s.scalars(select(Call))]
    assert stores.count("secondary") == moved_before_restart
    assert check_all_or_nothing(config, calls) == (12, 0)
    report = await Reaper(config, sessions, clock=Clock(NOW)).run_pass()
    assert report.moved == 12 - moved_before_restart
    assert check_all_or_nothing(config, calls) == (12, 0)
    assert all(not c.path.exists() for c in calls)


def test_intents_of_a_running_process_are_left_alone(tmp_path: Path) -> None:
    """A periodic pass settles only old intents: a young one may be `recorderctl` at work."""
    _path, config, [call, *_] = setup(tmp_path, "general")
    sessions = sessions_for(config)
    job = erase.Job("delete", call.id, call.path, call.rel, "request_delete", "clerk")
    claimed, refused = erase.claim(sessions, [job], NOW - dt.timedelta(minutes=5))
    assert claimed == [job] and not refused
    assert erase.recover(sessions, NOW, older_than=NOW - dt.timedelta(hours=1)) == []
    assert erase.claim(sessions, [job], NOW)[1][0].note.startswith("busy")  # type: ignore[union-attr]
    [(_intent, verdict)] = erase.recover(sessions, NOW + dt.timedelta(hours=2), older_than=NOW)
    assert verdict.startswith("rolled back") and call.path.exists()
