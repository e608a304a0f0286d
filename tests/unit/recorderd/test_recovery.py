"""Crash recovery at start-up: close stuck rows, salvage .part files, report orphans, delete nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recorderd.daemon.recovery import orphans, recover
from storage.age import generate_identity
from storage.audio import au_header
from storage.db import open_database
from storage.models import Call
from storage.vault import AgeWriter, sha256_file

T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


def catalogue(data: Path) -> sessionmaker[Session]:
    _e, sessions = open_database(f"sqlite:///{data / 'recorderd.db'}")
    return sessions


def add_row(
    sessions: sessionmaker[Session], call_id: str, rel: str | None, status: str = "recording"
) -> None:
    with sessions.begin() as s:
        s.add(Call(id=call_id, direction="inbound", started_at=T0, status=status, audio_path=rel,
                   local_number="0668585050", remote_number="0311112222"))  # fmt: skip


def write_part(data: Path, rel: str, *, seal: bool) -> Path:
    _identity, recipient = generate_identity()
    (data / rel).parent.mkdir(parents=True, exist_ok=True)
    w = AgeWriter(data / rel, [recipient])
    w.write(au_header() + b"\0" * 70000)  # more than one 64 KiB chunk on disk
    if seal:
        return w.close().path
    return w.part_path  # left open, as a SIGKILL leaves it


def test_stuck_rows_are_closed_with_what_is_on_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sessions = catalogue(data)
    part = write_part(data, "recordings/2026/11/22/a.age", seal=False)
    sealed = write_part(data, "recordings/2026/11/22/b.age", seal=True)
    add_row(sessions, "a", "recordings/2026/11/22/a.age")
    add_row(sessions, "b", "recordings/2026/11/22/b.age")
    add_row(sessions, "c", "recordings/2026/11/22/c.age")  # killed before the first byte reached disk
    add_row(sessions, "d", "recordings/2026/11/22/d.age", status="completed")  # untouched

    report = recover(sessions, data)
    assert sorted(report.closed_rows) == ["a", "b", "c"]
    assert report.orphan_files == []
    with sessions() as s:
        a, b, c, d = (s.get(Call, k) for k in "abcd")
    assert a is not None and b is not None and c is not None and d is not None
    assert (a.status, a.failure_reason) == ("incomplete", "daemon stopped during recording")
    assert a.audio_path == "recordings/2026/11/22/a.age.part" and a.audio_sha256 == sha256_file(part)
    assert b.status == "incomplete" and b.audio_sha256 == sha256_file(sealed) and "sealed" in (b.notes or "")
    assert c.status == "incomplete" and c.audio_sha256 is None
    assert d.status == "completed"
    assert recover(sessions, data).closed_rows == []  # idempotent: a second start changes nothing


def test_orphans_are_reported_never_deleted_even_with_an_empty_catalogue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    files = [write_part(data, f"recordings/2026/11/2{i}/x{i}.age", seal=i % 2 == 0) for i in range(4)]
    # The catalogue was lost (restored from nothing, wrong database_url): it looks empty. A
    # cleaner that trusted it would now delete every recording.
    report = recover(catalogue(data), data)
    assert sorted(report.orphan_files) == sorted(files)
    assert all(f.exists() for f in files)


def test_orphans_are_what_no_row_points_at_in_any_batch(tmp_path: Path) -> None:
    """Files are looked up by the call id in their name, a batch at a time: a file is known only if
    its row points at exactly that path (or the path is that file's .part)."""
    data = tmp_path / "data"
    data.mkdir()
    sessions = catalogue(data)
    day = "recordings/2026/11/22"
    for call_id in "abcd":
        add_row(sessions, call_id, f"{day}/{call_id}.age", status="completed")
    add_row(sessions, "e", None, status="completed")  # audio deleted: its id names no file any more
    known = [data / f"{day}/{k}" for k in ("a.age", "b.age.part", "c.age", "d.age")]
    stray = [
        data / p for p in ("recordings/2026/11/23/a.age", f"{day}/e.age", f"{day}/notes.txt", f"{day}/z.age")
    ]
    for f in known + stray:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    for batch in (1, 2, 500):
        assert sorted(orphans(sessions, data, batch=batch)) == sorted(stray)


def test_only_this_nodes_rows_are_closed(tmp_path: Path) -> None:
    """Several recorders share a catalogue: a node starting up must not close another node's calls,
    which may be recording right now."""
    data = tmp_path / "data"
    data.mkdir()
    sessions = catalogue(data)
    add_row(sessions, "mine", None)
    add_row(sessions, "theirs", None)
    with sessions.begin() as s:
        s.get_one(Call, "mine").node = "hall-a"
        s.get_one(Call, "theirs").node = "hall-b"
    report = recover(sessions, data, "hall-a")
    assert report.closed_rows == ["mine"]
    with sessions() as s:
        assert s.get_one(Call, "mine").status == "incomplete"
        assert s.get_one(Call, "theirs").status == "recording"
