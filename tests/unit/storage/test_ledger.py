"""The hash-chained ledger on a real SQLite file: encoding, chaining, races, checkpoints."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from storage import ledger, signing
from storage.db import open_database
from support import backend as support_backend

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")

T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return open_database(support_backend.url(tmp_path))[1]


def fill(sessions: sessionmaker[Session], n: int) -> list[ledger.Entry]:
    return [
        ledger.append_committed(
            sessions,
            "played",
            f"p{i}",
            call_id=f"c{i}",
            detail={"purpose": f"目的{i}"},
            at=T0 + dt.timedelta(seconds=i),
        )
        for i in range(1, n + 1)
    ]


def test_canonical_encoding_is_fixed() -> None:
    """The exact bytes are the format: changing them breaks every existing ledger."""
    body = ledger.canonical(
        1, "2026-11-22T01:00:00.000000+00:00", "played", "kanri", "c1", None, {"b": 1, "a": "目"}
    )
    assert (
        body
        == (
            '{"actor":"kanri","at":"2026-11-22T01:00:00.000000+00:00","call_id":"c1",'
            '"detail":{"a":"目","b":1},"kind":"played","seq":1,"subject":null}'
        ).encode()
    )
    assert (
        ledger.chain_hash(ledger.GENESIS, body) == __import__("hashlib").sha256(bytes(32) + body).hexdigest()
    )


def test_chain_links_and_verifies(sessions: sessionmaker[Session]) -> None:
    entries = fill(sessions, 5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == ledger.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    with sessions() as s:
        report = ledger.verify(s)
        assert report.ok and report.checked == 5 and report.head_hash == entries[-1].hash
        assert [e.detail["purpose"] for e in ledger.entries(s, call_ids=["c2", "c4"])] == ["目的2", "目的4"]
    with pytest.raises(ValueError, match="unknown ledger kind"):
        ledger.append_committed(sessions, "listened", "x")


def test_concurrent_writers_make_one_chain(tmp_path: Path) -> None:
    """Two writers (each its own engine, as the daemon and recorderctl are) append at once: every
    entry lands once, in one unbroken chain; a lost race is retried, never forked."""
    url = support_backend.url(tmp_path)
    open_database(url)

    def writer(name: str) -> None:
        _e, own = open_database(url, migrate=False)
        for i in range(30):
            ledger.append_committed(own, "played", name, detail={"i": i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("daemon", "recorderctl")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open_database(url, migrate=False)[1]() as s:
        report = ledger.verify(s)
        assert report.ok and report.checked == 60
        assert sorted(e.actor for e in ledger.entries(s)).count("daemon") == 30


def test_a_batch_chains_exactly_as_single_appends(tmp_path: Path) -> None:
    """append_many (the reaper's thousands of deletions per transaction) writes the very rows that as
    many appends would: same seqs, same hashes, one chain continuing the existing tail."""
    batch = [
        ledger.NewEntry(
            "deleted", "reaper", f"c{i}", None, {"rule": "31 日", "i": i}, T0 + dt.timedelta(seconds=i)
        )
        for i in range(4)
    ]
    one_by_one, together = (open_database(support_backend.url(tmp_path, n))[1] for n in ("a", "b"))
    fill(one_by_one, 2)
    fill(together, 2)
    with one_by_one.begin() as s:
        singles = [
            ledger.append(s, n.kind, n.actor, call_id=n.call_id, detail=n.detail, at=n.at) for n in batch
        ]
    with together.begin() as s:
        batched = ledger.append_many(s, batch)
        assert ledger.append_many(s, []) == []
    assert batched == singles and [e.seq for e in batched] == [3, 4, 5, 6]
    for sessions in (one_by_one, together):
        with sessions() as s:
            report = ledger.verify(s)
            assert report.ok and report.checked == 6 and report.head_hash == batched[-1].hash


def test_a_batch_that_lost_the_race_writes_nothing(tmp_path: Path, backend: str) -> None:
    """Another process appends between our tail read and our INSERT: LedgerConflict, and after the
    rollback none of the batch's rows is in the chain (the caller retries on the new tail)."""
    if backend != "sqlite":
        pytest.skip("on PostgreSQL appends queue on an advisory lock: this race cannot happen (next test)")
    url = support_backend.url(tmp_path)
    engine, ours = open_database(url)
    theirs = open_database(url, migrate=False)[1]
    fill(ours, 1)
    raced = []

    @event.listens_for(engine, "before_cursor_execute")
    def other_writer_first(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO ledger") and not raced:
            raced.append(ledger.append_committed(theirs, "played", "recorderctl", at=T0))

    batch = [ledger.NewEntry("deleted", "reaper", f"c{i}", at=T0) for i in range(3)]
    with pytest.raises(ledger.LedgerConflict, match="ledger"), ours.begin() as s:
        ledger.append_many(s, batch)
    with pytest.raises(ValueError, match="unknown ledger kind"), ours.begin() as s:
        ledger.append_many(s, [ledger.NewEntry("deleted", "r", at=T0), ledger.NewEntry("listened", "x")])
    with ours() as s:
        report = ledger.verify(s)
        assert report.ok and report.checked == 2
        assert [e.actor for e in ledger.entries(s)] == ["p1", "recorderctl"]


def test_on_postgresql_a_second_writer_waits_for_the_first(tmp_path: Path, backend: str) -> None:
    """Two writers on one PostgreSQL catalogue (two recorders, or recorderctl beside the daemon): the
    second append waits on the chain's advisory lock until the first commits, then chains after it."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time; the race there is the test above")
    url = support_backend.url(tmp_path)
    _e, first = open_database(url)
    second = open_database(url, migrate=False)[1]
    done: list[ledger.Entry] = []
    with first.begin() as s:
        mine = ledger.append(s, "played", "node-a", at=T0)
        waiter = threading.Thread(
            target=lambda: done.append(ledger.append_committed(second, "played", "node-b"))
        )
        waiter.start()
        for _ in range(2000):  # bounded: until the second writer is seen waiting on a lock
            with second() as probe:
                waiting = probe.execute(
                    text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                ).scalar()
            if waiting:
                break
        else:
            pytest.fail("the second writer never waited for the first")
        assert done == []
    waiter.join(timeout=60)
    assert [e.seq for e in done] == [mine.seq + 1] and done[0].prev_hash == mine.hash


@pytest.mark.parametrize(
    ("sql", "row", "words"),
    [
        ("UPDATE ledger SET actor = 'someone-else' WHERE seq = 3", 3, "edited"),
        ('UPDATE ledger SET detail = \'{"purpose":"x"}\' WHERE seq = 2', 2, "edited"),
        ("UPDATE ledger SET detail = 'not json' WHERE seq = 2", 2, "edited"),
        ("DELETE FROM ledger WHERE seq = 3", 4, "row 3 deleted"),
        (
            "UPDATE ledger SET seq = 99 WHERE seq = 2; UPDATE ledger SET seq = 2 WHERE seq = 3;"
            " UPDATE ledger SET seq = 3 WHERE seq = 99",
            2,
            "edited",
        ),
    ],
)
def test_verify_names_the_row(sessions: sessionmaker[Session], sql: str, row: int, words: str) -> None:
    fill(sessions, 5)
    with sessions.begin() as s:
        for statement in sql.split(";"):
            s.execute(text(statement))
    with sessions() as s:
        report = ledger.verify(s)
    assert not report.ok
    assert report.problems[0].seq == row and words in report.problems[0].message


def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(sessions: sessionmaker[Session]) -> None:
    entries = fill(sessions, 4)
    e = entries[1]
    forged = ledger.chain_hash(
        e.prev_hash, ledger.canonical(e.seq, e.at, e.kind, "forger", e.call_id, e.subject, e.detail)
    )
    with sessions.begin() as s:
        s.execute(text("UPDATE ledger SET actor = 'forger', hash = :h WHERE seq = 2"), {"h": forged})
    with sessions() as s:
        problems = ledger.verify(s).problems
    assert [(p.seq, "does not chain to row 2" in p.message) for p in problems] == [(3, True)]


def test_checkpoints_catch_a_cut_tail_and_a_rewrite(sessions: sessionmaker[Session]) -> None:
    fill(sessions, 6)
    key = Ed25519PrivateKey.generate()
    with sessions() as s:
        saved = ledger.make_checkpoint(s, key, "テスト市").to_json()
    cp = ledger.Checkpoint.from_json(saved, signing.public_b64(key))
    assert cp.seq == 6
    with sessions.begin() as s:
        s.execute(text("DELETE FROM ledger WHERE seq >= 5"))
    with sessions() as s:
        assert ledger.verify(s).ok  # a shorter chain is still a valid chain...
        problems = ledger.verify(s, [cp]).problems  # ...but not the one the checkpoint saw
    assert problems[0].seq == 5 and "rows 5–6 were removed" in problems[0].message

    forged = json.loads(saved) | {"seq": 4}
    with pytest.raises(signing.SigningError):
        ledger.Checkpoint.from_json(json.dumps(forged))
    with pytest.raises(signing.SigningError, match="another key"):
        ledger.Checkpoint.from_json(saved, signing.public_b64(Ed25519PrivateKey.generate()))


def test_excerpt_entries_verify_alone(sessions: sessionmaker[Session]) -> None:
    entries = fill(sessions, 3)
    assert ledger.verify_excerpt([entries[0], entries[2]]) == []
    bad = ledger.entry_from_json(entries[1].to_json() | {"actor": "x"})
    assert [p.seq for p in ledger.verify_excerpt([bad])] == [2]
