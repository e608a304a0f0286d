"""Finding calls: the queries behind ``recorderctl calls`` (read-only)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.holds import is_held
from storage.models import Call, Hold


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
) -> list[Call]:
    """Calls started in [start, end), newest first; ``number`` matches either party; ``held``: only
    calls with (True) or without (False) an active hold."""
    q = select(Call)
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
    if held is True:
        # Few calls are held: start from the holds (an IN list SQLite builds once) rather than test
        # every call in date order for a hold (a scan of the catalogue when holds are rare).
        q = q.where(Call.id.in_(select(Hold.call_id).where(Hold.released_at.is_(None))))
    elif held is False:
        q = q.where(~is_held())
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


def with_audio(session: Session, *, node: str | None = None) -> list[Call]:
    """Calls whose audio is kept (``node``: only those that recorder holds)."""
    q = select(Call).where(Call.audio_path.is_not(None))
    if node is not None:
        q = q.where(Call.node == node)
    return list(session.scalars(q.order_by(Call.started_at)))
