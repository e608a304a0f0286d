"""storage.catalog.with_audio pages through the calls with audio in short keyset queries on the
primary key: every call once, in id order, whatever the page size and the order of start times;
only the node's own files when a node is named. On both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from storage.catalog import with_audio
from storage.db import open_database
from storage.models import Call
from support import backend

pytestmark = pytest.mark.usefixtures("backend")

T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


def _call(i: int, minute: int, *, node: str = "hall-a", audio: bool = True) -> Call:
    return Call(
        id=f"c0ffee00-0000-4000-8000-{i:012d}",
        direction="inbound",
        status="completed",
        node=node,
        started_at=T0 + dt.timedelta(minutes=minute),
        audio_path=f"recordings/{i}.age" if audio else None,
        audio_sha256="0" * 64 if audio else None,
    )


def test_every_call_once_in_id_order_across_pages(tmp_path: Path) -> None:
    _engine, sessions = open_database(backend.url(tmp_path))
    # Eleven calls whose start times run against their ids (and five in the same minute), one
    # without audio, one on another node.
    minutes = [5, 4, 3, 3, 1, 1, 1, 1, 1, 2, 0]
    calls = [_call(i, m) for i, m in enumerate(minutes)]
    calls.append(_call(11, 2, audio=False))
    calls.append(_call(12, 2, node="hall-b"))
    with sessions.begin() as s:
        s.add_all(reversed(calls))  # inserted newest first: the order comes from the query
    with sessions() as s:
        paged = [r.id for r in with_audio(s, node="hall-a", batch=3)]
        whole = [r.id for r in with_audio(s, node="hall-a", batch=1000)]
        everyone = [r.id for r in with_audio(s, batch=2)]
    expected = [c.id for c in calls[:11]]  # the ids rise with i
    assert paged == expected
    assert whole == expected
    assert everyone == [c.id for c in calls[:11] + calls[12:]]
