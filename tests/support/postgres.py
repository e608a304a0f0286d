"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, initdb in a temporary
directory as an unprivileged user, listening only on a Unix socket in that directory. One cluster per
test session; each test gets a database of its own (``Cluster.new_database``).

Without the binaries (``apt-get install postgresql``; .ci/run installs it) the PostgreSQL half of the
parametrised tests is skipped with that reason, except under CI, where it fails instead.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["BIN", "Cluster", "require_postgres"]

_found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
BIN: Path | None = Path(_found[-1]).parent if _found else None
_USER = "postgres"  # Debian's package creates it; initdb refuses to run as root


def require_postgres() -> Path:
    if BIN is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries missing under CI (.ci/run installs postgresql)")
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    return BIN


class Cluster:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="recorderd-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.port = 5432  # only a socket file name here: listen_addresses is empty
        self._ids = itertools.count(1)
        self._as_user = os.geteuid() == 0
        if self._as_user:
            pw = pwd.getpwnam(_USER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.socket_dir.mkdir()
        if self._as_user:
            os.chown(self.socket_dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_user:
            cmd = ["runuser", "-u", _USER, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.resume()

    def pause(self) -> None:
        """Stop the server (a PostgreSQL restart or outage); its data stays for ``resume``."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server on the cluster's data (at first start, and after ``pause``)."""
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir} -c fsync=off -p {self.port}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "start",
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def _admin(self, sql: str) -> None:
        import psycopg  # only with the test extra; the SQLite half never needs it

        dsn = f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # our own names, never input

    def drop(self, url: str) -> None:
        """Drop a test's database (each is a copy of template1: ~8 MB a test adds up)."""
        name = url.split("/", 3)[3].split("?")[0]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"t{os.getpid()}_{next(self._ids)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)
