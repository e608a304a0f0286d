"""On PostgreSQL, where several processes (and later several recorders) share one catalogue, a hold and
a deletion of the same call are serialised by the call's row lock: a hold committed while a deletion
waits is seen by that deletion, which then refuses. PostgreSQL only: SQLite has one writer at a time
(BEGIN IMMEDIATE), tested in test_retention_reaper.py.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from storage import erase, holds
from storage.db import open_database
from storage.election import LeaderLock
from support.postgres import Cluster
from support.retention_seed import jst, seed
from support.retention_seed import make_config as retention_config

NOW = jst(2026, 3, 1)


def _waiting_on_a_lock(cluster: Cluster, database: str) -> bool:
    dsn = f"host={cluster.socket_dir} port={cluster.port} user=postgres dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchone()
    return bool(row and row[0])


def test_a_hold_committed_while_a_deletion_waits_wins(postgres: Cluster, tmp_path: Path) -> None:
    url = postgres.new_database()
    database = url.split("/", 3)[3].split("?")[0]
    line = '[[lines]]\nname = "general"\nnumbers = ["06-6858-5050"]\n'
    config = retention_config(tmp_path, "", line).model_copy(update={"database_url": url})
    _e, sessions = open_database(url)
    [call] = seed(config, sessions, [(NOW - dt.timedelta(days=40), "general")])
    # A deletion request (not the reaper's "due" check): only the hold can stand in its way.
    job = erase.Job("delete", call.id, call.path, call.rel, "request_delete", "clerk", rule="request D-1")

    result: list[tuple[list[erase.Job], list[erase.Outcome]]] = []
    with sessions.begin() as holder:  # a hold placed, not yet committed: it holds the call's row lock
        holds.place(
            holder, call.id, kind="harassment", reference="H-1", reason="不当要求", by="kacho", at=NOW
        )
        deleter = threading.Thread(target=lambda: result.append(erase.claim(sessions, [job], NOW)))
        deleter.start()
        for _ in range(2000):  # until the claim is blocked on the row lock (bounded: 2000 round trips)
            if _waiting_on_a_lock(postgres, database):
                break
        else:
            pytest.fail("the deletion claim never waited for the hold's row lock")
        holder.execute(text("SELECT 1"))
    deleter.join(timeout=60)
    [(claimed, refused)] = result
    assert claimed == [] and refused[0].note.startswith("held: ")
    assert call.path.exists()


def test_one_leader_at_a_time_and_the_next_takes_over_when_its_connection_dies(postgres: Cluster) -> None:
    url = postgres.new_database()
    database = url.split("/", 3)[3].split("?")[0]
    engine, _sessions = open_database(url)
    first, second = LeaderLock(engine), LeaderLock(engine)
    try:
        assert first.try_acquire() and first.check() is None
        assert not second.try_acquire() and not second.held  # never waits: tries again later
        dsn = f"host={postgres.socket_dir} port={postgres.port} user=postgres dbname={database}"
        with psycopg.connect(dsn, autocommit=True) as conn:  # the leader's connection dies
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            )
        why = first.check()
        assert why is not None and not first.held  # it knows, and stops leading
        assert second.try_acquire() and second.check() is None
        assert not first.try_acquire()
        second.release()
        assert first.try_acquire()  # a node that stops lets go at once
    finally:
        first.release()
        second.release()
        engine.dispose()
        postgres.drop(url)


def test_on_sqlite_the_one_recorder_always_leads(tmp_path: Path) -> None:
    engine, _sessions = open_database(f"sqlite:///{tmp_path / 'c.db'}")
    lock = LeaderLock(engine)
    assert lock.try_acquire() and lock.held and lock.check() is None
