"""Retention tests' helpers: a controllable clock, configs, and catalogues of real files + SQLite rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config, parse_config
from storage.db import open_database
from storage.models import COMPLETED, Call
from support import backend

JST = dt.timezone(dt.timedelta(hours=9))
RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

LINES = """
[[lines]]
name = "general"
numbers = ["06-6858-5050"]
[[lines]]
name = "tiered"
numbers = ["06-6858-2525"]
retention = "tiered"
"""


class Clock:
    """A clock the test moves by hand: ``clock.now = ...`` or ``clock.advance(days=1)``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> dt.datetime:
        self.now += dt.timedelta(**kw)
        return self.now


def jst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=JST)  # type: ignore[misc]


def config_text(root: Path, retention: str, lines: str = LINES) -> str:
    return (
        f'data_dir = "{root / "data"}"\n{backend.config_line()}'
        f'[ami]\nenabled = false\n[encryption]\nrecipients = ["{RECIPIENT}"]\n'
        f"{lines}\n{retention}"
    )


def make_config(root: Path, retention: str, lines: str = LINES) -> Config:
    return parse_config(config_text(root, retention, lines))


@dataclass(frozen=True)
class Seeded:
    id: str
    path: Path  # absolute
    rel: str
    sha256: str


def sessions_for(config: Config) -> sessionmaker[Session]:
    return open_database(config.db_url)[1]


def seed(
    config: Config,
    sessions: sessionmaker[Session],
    calls: Iterable[tuple[dt.datetime, str | None]],
    *,
    size: int = 64,
) -> list[Seeded]:
    """One finished call per (start, line): a file of ``size`` random bytes and its catalogue row."""
    out, rows = [], []
    for started, line in calls:
        cid = str(uuid.uuid4())
        rel = f"recordings/{started.astimezone(config.zone):%Y/%m/%d}/{cid}.age"
        path = config.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        rows.append(
            {
                "id": cid,
                "direction": "inbound",
                "line": line,
                "started_at": started,
                "ended_at": started + dt.timedelta(minutes=3),
                "status": COMPLETED,
                "audio_path": rel,
                "audio_bytes": size,
                "audio_sha256": digest,
                "local_number": "0668585050",
                "remote_number": "0311112222",
            }
        )
        out.append(Seeded(cid, path, rel, digest))
    with sessions.begin() as s:
        for i in range(0, len(rows), 5000):
            s.execute(insert(Call), rows[i : i + 5000])
    return out


def row(sessions: sessionmaker[Session], call_id: str) -> Call | None:
    with sessions() as s:
        return s.get(Call, call_id)


def seed_bulk(
    config: Config, sessions: sessionmaker[Session], total: int, due: int, now: dt.datetime, *, keep_days: int
) -> list[Seeded]:
    """A large catalogue: ``total`` finished calls, the ``due`` oldest past ``keep_days`` with real files.

    The others are rows only (their files are never opened by a pass that does not delete them).
    Returns the due ones.
    """
    rows, out = [], []
    for i in range(total):
        old = i < due
        age = dt.timedelta(days=keep_days + 5 + i % 20 if old else i % (keep_days - 2), minutes=i % 600)
        started = now - age
        cid = str(uuid.UUID(int=i + 1))
        rel = f"recordings/{started.astimezone(config.zone):%Y/%m/%d}/{cid}.age"
        data = cid.encode() * 4
        digest = hashlib.sha256(data).hexdigest()
        if old:
            path = config.data_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            out.append(Seeded(cid, path, rel, digest))
        rows.append(
            {
                "id": cid,
                "direction": "inbound",
                "line": "general",
                "started_at": started,
                "ended_at": started + dt.timedelta(minutes=2),
                "status": COMPLETED,
                "audio_path": rel,
                "audio_bytes": len(data),
                "audio_sha256": digest,
                "remote_number": "0311112222",
            }
        )
    with sessions.begin() as s:
        for i in range(0, len(rows), 5000):
            s.execute(insert(Call), rows[i : i + 5000])
    return out
