"""Finding calls: the queries behind ``recorderctl calls`` (read-only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.models import Call


class AmbiguousId(Exception):
    pass


def list_calls(
    session: Session,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    number: str | None = None,
    line: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    held: bool | None = None,
    limit: int = 200,
    offset: int = 0,
    after: tuple[dt.datetime, str] | None = None,
    before: tuple[dt.datetime, str] | None = None,
) -> list[Call]:
    """Calls started in [start, end), newest first (ties by id); ``number`` matches either party;
    ``held``: only calls with (True) or without (False) an active hold.

    ``after`` / ``before`` (a call's start and id): the page that follows / precedes that call in this
    order (keyset paging: each page reads one page of the index however deep it is, and a call
    recorded meanwhile does not shift the next page as OFFSET would)."""
    q = select(Call)
    if after is not None:
        at, cid = after
        q = q.where(Call.started_at <= at, or_(Call.started_at < at, Call.id > cid))
    if before is not None:
        at, cid = before
        q = q.where(Call.started_at >= at, or_(Call.started_at > at, Call.id < cid))
    if start is not None:
        q = q.where(Call.started_at >= start)  # the column type converts to UTC
    if end is not None:
        q = q.where(Call.started_at < end)
    if number is not None:
        q = q.where(or_(Call.remote_number == number, Call.local_number == number))
    if line is not None:
        q = q.where(Call.line == line)
    if status is not None:
        q = q.where(Call.status == status)
    if direction is not None:
        q = q.where(Call.direction == direction)
    if held is not None:
        # The flag storage/holds.py keeps beside each call: ix_calls_held_started_at then gives the
        # calls held (or not) newest first, and the query stops after one page (migration 0005).
        q = q.where(Call.held == held)
    if before is not None:  # read backwards from the anchor, then give the page in the usual order
        q = q.order_by(Call.started_at, Call.id.desc()).limit(limit).offset(offset)
        return list(reversed(list(session.scalars(q))))
    q = q.order_by(Call.started_at.desc(), Call.id).limit(limit).offset(offset)
    return list(session.scalars(q))


def get_call(session: Session, id_or_prefix: str) -> Call | None:
    """A call by its full id or an unambiguous prefix of at least 6 characters."""
    row = session.get(Call, id_or_prefix)
    if row is not None or len(id_or_prefix) < 6:
        return row
    rows = list(
        session.scalars(select(Call).where(Call.id.startswith(id_or_prefix, autoescape=True)).limit(2))
    )
    if len(rows) > 1:
        raise AmbiguousId(f"{id_or_prefix!r} matches more than one call; give more characters")
    return rows[0] if rows else None


def nodes_with_audio(session: Session) -> list[str]:
    """The recorders holding at least one recording file, by name."""
    q = select(Call.node).where(Call.audio_path.is_not(None)).distinct().order_by(Call.node)
    return list(session.scalars(q))


class AudioRow(NamedTuple):
    id: str
    audio_path: str
    status: str
    audio_sha256: str | None


def with_audio(session: Session, *, node: str | None = None, batch: int = 2000) -> Iterator[AudioRow]:
    """Calls whose audio is kept (``node``: only those that recorder holds), in id order.

    Four columns, in pages of ``batch`` rows, each page one short query that walks the primary key
    on from the last id seen (keyset), so the whole walk reads the table once. The daemon's scheduled
    check walks a catalogue of millions with this while it re-hashes every file. It used to load
    every call as an ORM object at once: with 1,000,000 calls the daemon grew to 3.8 GB while it ran,
    and the event loop paused for up to 4 s (garbage collection over those objects). One long
    streaming query instead would hold SQLite's read lock, which blocks the metadata writer's
    commits, for as long as the hashing takes; and pages by start time with an OR for ties made
    SQLite scan the table again for every page."""
    q = select(Call.id, Call.audio_path, Call.status, Call.audio_sha256).where(Call.audio_path.is_not(None))
    if node is not None:
        q = q.where(Call.node == node)
    q = q.order_by(Call.id).limit(batch)
    page = q
    while rows := session.execute(page).all():
        for row in rows:
            yield AudioRow(row.id, row.audio_path, row.status, row.audio_sha256)
        if len(rows) < batch:
            return
        page = q.where(Call.id > rows[-1].id)
