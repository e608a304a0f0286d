"""calls.held (migration 0005) follows the holds table: set with the first active hold, kept while
another hold still covers the call, cleared with the last release; filled from existing holds when an
older catalogue is upgraded; and the search finds held / not-held calls by it. On both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import TableClause, column, table, text

from storage import holds
from storage.catalog import list_calls
from storage.db import alembic_config, make_engine, open_database
from storage.models import UtcDateTime
from support import backend

pytestmark = pytest.mark.usefixtures("backend")

T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)
IDS = [f"c0ffee00-0000-4000-8000-00000000000{i}" for i in range(3)]


def _calls(*extra: str) -> TableClause:
    return table(
        "calls",
        column("id"),
        column("direction"),
        column("started_at", UtcDateTime()),
        column("status"),
        *(column(name) for name in extra),
    )


def test_the_flag_follows_every_placement_and_release(tmp_path: Path) -> None:
    _engine, sessions = open_database(backend.url(tmp_path))
    with sessions.begin() as s:
        for i, cid in enumerate(IDS):
            s.execute(_calls("node").insert().values(id=cid, direction="inbound", status="completed",
                                                     node="hall-a",  # the current schema's (0006)
                                                     started_at=T0 + dt.timedelta(minutes=i)))  # fmt: skip

    def found(held: bool) -> list[str]:
        with sessions() as s:
            return [c.id for c in list_calls(s, held=held)]

    assert found(True) == [] and found(False) == IDS[::-1]
    with sessions.begin() as s:
        first = holds.place(s, IDS[1], kind="disclosure", reference="R-1", reason="r", by="a", at=T0).id
        second = holds.place(s, IDS[1], kind="manager_order", reference="R-2", reason="r", by="a", at=T0).id
    assert found(True) == [IDS[1]] and found(False) == [IDS[2], IDS[0]]
    with sessions.begin() as s:
        holds.release(s, first, by="a", reason="done", at=T0)
    assert found(True) == [IDS[1]]  # the second hold still covers it
    with sessions.begin() as s:
        holds.release(s, second, by="a", reason="done", at=T0)
    assert found(True) == [] and found(False) == IDS[::-1]


def test_upgrading_fills_the_flag_from_the_holds(tmp_path: Path) -> None:
    url = backend.url(tmp_path)
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0004")
    holds_t = table("holds", column("call_id"), column("kind"), column("reference"), column("reason"),
                    column("placed_by"), column("placed_at", UtcDateTime()),
                    column("released_at", UtcDateTime()))  # fmt: skip
    with engine.begin() as conn:
        for cid in IDS:
            conn.execute(
                _calls().insert().values(id=cid, direction="inbound", status="completed", started_at=T0)
            )
        hold = {"kind": "disclosure", "reference": "R", "reason": "r", "placed_by": "a", "placed_at": T0}
        conn.execute(holds_t.insert().values(call_id=IDS[0], **hold))  # active
        conn.execute(holds_t.insert().values(call_id=IDS[2], released_at=T0, **hold))  # released
    open_database(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM calls WHERE held ORDER BY id")).scalars().all()
    assert rows == [IDS[0]]
