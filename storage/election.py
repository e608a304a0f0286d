"""One leader among the recorders sharing a catalogue: a PostgreSQL session advisory lock.

The lock belongs to a connection of its own, opened for it alone (no pool: a pooled connection
returned with the lock still held would lead for nobody). While that connection lives, this process
leads; when the process stops or dies, or its connection drops, the server releases the lock and the
next node to try takes it. On SQLite there is one recorder per catalogue: it always leads.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

# "recordld": apart from the ledger's chain lock (storage/ledger.py). Advisory locks are per database,
# so catalogues in different databases of one server elect their leaders independently.
LEADER_LOCK = 0x7265636F72646C64
CONNECT_TIMEOUT_S = 10


class LeaderLock:
    def __init__(self, engine: Engine) -> None:
        self.shared = engine.dialect.name == "postgresql"
        self._engine: Engine | None = None
        if self.shared:
            self._engine = create_engine(
                engine.url,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",  # no transaction left open on the lock's connection
                connect_args={
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    "application_name": "recorderd-leader",
                    # A leader cut off from the server notices within about a minute (TCP only;
                    # the server needs the same to free the lock: README, "Several recorders").
                    "keepalives": 1,
                    "keepalives_idle": 30,
                    "keepalives_interval": 10,
                    "keepalives_count": 3,
                },
            )
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return not self.shared or self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lock if no one holds it; True when this process now leads. Never waits for it."""
        if not self.shared or self._conn is not None:
            return True
        assert self._engine is not None
        conn = self._engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar())
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def check(self) -> str | None:
        """While leading: None if the lock's connection still holds it, else why not (then let go)."""
        if not self.shared or self._conn is None:
            return None
        q = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            " AND granted AND ((classid::bigint << 32) | objid::bigint) = :k"
        )
        try:
            if self._conn.execute(q, {"k": LEADER_LOCK}).scalar() == 1:
                return None
            why = "the lock is no longer held"
        except SQLAlchemyError as exc:
            why = f"the lock's connection failed: {str(getattr(exc, 'orig', exc)).strip()[:200]}"
        self._drop()
        return why

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):  # the connection is gone: so is the lock
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
            self._drop()
        if self._engine is not None:
            self._engine.dispose()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except SQLAlchemyError:
                pass
