"""Alembic migrations run on both backends: a catalogue created by the oldest migration, holding a call,
is upgraded to the newest schema with its row intact, and the result is what a fresh catalogue is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import column, inspect, table, text

from storage.db import alembic_config, make_engine, open_database, schema_problem
from storage.models import UtcDateTime
from support import backend

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")

T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


def test_the_oldest_catalogue_upgrades_to_the_newest_with_its_rows(tmp_path: Path) -> None:
    old_url, fresh_url = backend.url(tmp_path, "old"), backend.url(tmp_path, "fresh")
    engine = make_engine(old_url)
    command.upgrade(alembic_config(engine), "0001")
    calls = table(
        "calls", column("id"), column("direction"), column("started_at", UtcDateTime()), column("status")
    )
    row = {"id": "c0ffee00-0000-4000-8000-000000000001", "direction": "inbound", "started_at": T0}
    with engine.begin() as conn:  # as the first version wrote it
        conn.execute(calls.insert().values(**row, status="completed"))
    assert schema_problem(engine) is not None  # an old catalogue is not current
    open_database(old_url)  # what the daemon does at start: migrate
    assert schema_problem(engine) is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calls")).scalar() == 1
    fresh = make_engine(fresh_url)
    open_database(fresh_url)

    def shape(e: object) -> dict[str, list[str]]:
        insp = inspect(e)
        return {t: sorted(c["name"] for c in insp.get_columns(t)) for t in sorted(insp.get_table_names())}

    assert shape(engine) == shape(fresh)


def test_rows_written_before_the_node_column_get_the_migrating_recorders_node(tmp_path: Path) -> None:
    url = backend.url(tmp_path, "old")
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0004")
    calls = table(
        "calls", column("id"), column("direction"), column("started_at", UtcDateTime()), column("status")
    )
    with engine.begin() as conn:
        conn.execute(calls.insert().values(id="c1", direction="inbound", started_at=T0, status="completed"))
    open_database(url, node="hall-a")  # the recorder that upgrades, under its configured name
    with engine.connect() as conn:
        assert conn.execute(text("SELECT node FROM calls")).scalar_one() == "hall-a"
