"""Opening the metadata database: engine, SQLite pragmas, migrations.

SQLite runs with a rollback journal (``journal_mode=DELETE``) and synchronous=FULL, so a committed
row survives power loss, and with a busy timeout so a reader (``recorderctl``) only delays a write.
Not WAL: WAL maps its ``-shm`` index into memory, and when that file becomes unwritable under a
running process (``chattr +i``, a read-only remount) the next write to the mapping kills the whole
daemon with SIGBUS, recordings included. SQLite runs WAL without shared memory only in
``locking_mode=EXCLUSIVE``, which would lock ``recorderctl`` out while the daemon runs. A rollback
journal uses no mapping: an unwritable database is an error the metadata writer waits out.
PostgreSQL works by URL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from storage.files import make_private, private_dir

BUSY_TIMEOUT_MS = 5000
JOURNAL_MODE = "DELETE"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")  # converts a WAL database of an older version
    cur.execute("PRAGMA mmap_size=0")  # no memory-mapped I/O either, whatever the build's default
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    path: Path | None = None
    if url.startswith("sqlite:///") and url.removeprefix("sqlite:///") not in ("", ":memory:"):
        path = Path(url.removeprefix("sqlite:///"))
        private_dir(path.parent)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if path is not None:
            db = path
            # SQLite creates the file with 0644 under umask 022, and its journal copies the
            # database's mode: make it 0600 as soon as it exists, before any row is written.
            event.listen(engine, "connect", lambda _c, _r: make_private(db))
    return engine


def alembic_config(engine: Engine, node: str | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("storage") / "migrations"))
    cfg.attributes["engine"] = engine
    cfg.attributes["node"] = node  # migration 0006 gives existing rows this node (None: the host's name)
    return cfg


def upgrade(engine: Engine, *, node: str | None = None) -> None:
    """Bring the schema to the newest revision (idempotent). ``node``: the recorder migrating."""
    command.upgrade(alembic_config(engine, node), "head")


def is_initialised(engine: Engine) -> bool:
    return inspect(engine).has_table("calls")


class SchemaNotCurrent(Exception):
    """The catalogue is missing or at another schema revision than this code expects."""


def schema_problem(engine: Engine) -> str | None:
    """Why the catalogue cannot be used without a migration, or None when it is at the newest revision."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        return "no catalogue yet (the daemon creates it at its first start)"
    if current != head:
        return (
            f"the catalogue is at schema {current}, this version expects {head}: "
            "restart the daemon to upgrade it"
        )
    return None


def open_database(
    url: str, *, migrate: bool = True, node: str | None = None
) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    if migrate:
        upgrade(engine, node=node)
    return engine, sessionmaker(engine, expire_on_commit=False)


def open_current(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """The catalogue as it is, for a command that reads or appends: never created, never migrated
    behind the daemon's back (SchemaNotCurrent says what to do instead)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():  # connecting would create an empty file
            raise SchemaNotCurrent(f"{path}: no catalogue yet (the daemon creates it at its first start)")
    engine = make_engine(url)
    problem = schema_problem(engine)
    if problem is not None:
        engine.dispose()
        raise SchemaNotCurrent(problem)
    return engine, sessionmaker(engine, expire_on_commit=False)


def readonly_sessions(url: str) -> sessionmaker[Session] | None:
    """The catalogue for reading only, or None when there is none to read.

    SQLite creates ``-wal``/``-shm`` files next to a WAL database (a catalogue written by an older
    version, not yet converted by the daemon) even for a read-only reader. Run
    as root while the daemon is stopped, that would leave root-owned files the daemon (user
    recorderd) cannot open at its next start. So a reader that does not own the database opens it
    ``immutable``: no side files, no locks; the figures may miss the last uncheckpointed writes,
    which is fine for an estimate of disk needs.
    """
    if not url.startswith("sqlite:///"):
        return sessionmaker(create_engine(url), expire_on_commit=False)
    path = Path(url.removeprefix("sqlite:///"))
    try:
        owner = path.stat().st_uid
    except OSError:
        return None
    flags = "mode=ro" if owner == os.geteuid() else "mode=ro&immutable=1"
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"file:{path}?{flags}", uri=True, check_same_thread=False),
    )
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def immediate(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A write transaction that holds SQLite's write lock from its first read.

    pysqlite only begins a transaction at the first write, so "check for a hold, then write the
    intent" would otherwise race with another process placing a hold in between.
    """
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session
