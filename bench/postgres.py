"""A throwaway PostgreSQL cluster: Debian's server binaries, initdb in a temporary directory as an
unprivileged user, listening only on a Unix socket in that directory. The tests use one per session
(tests/support/postgres.py: each test gets a database of its own, ``Cluster.new_database``); the
benchmarks' ``--postgres`` starts one per run. It lives here, not under tests/, so both can import it
(bench/ may not import tests/).

The server inherits the CPU affinity of whoever calls ``start``/``resume`` (pg_ctl forks it): the
benchmarks call it after pinning themselves, which puts the server on their core.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BIN", "Cluster", "started"]

_found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
BIN: Path | None = Path(_found[-1]).parent if _found else None
_USER = "postgres"  # Debian's package creates it; initdb refuses to run as root


class Cluster:
    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin = bin_dir
        self.durable = durable  # fsync on: what a benchmark compares with SQLite's fsyncs; tests skip it
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
        options = f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir} -p {self.port}" + (
            "" if self.durable else " -c fsync=off"
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
            conn.execute(sql)  # our own names, never input

    def drop(self, url: str) -> None:
        """Drop a test's database (each is a copy of template1: ~8 MB a test adds up)."""
        name = url.split("/", 3)[3].split("?")[0]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"t{os.getpid()}_{next(self._ids)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def started(*, durable: bool = True) -> Iterator[Cluster]:
    """A benchmark's cluster: started here (on the caller's cores), stopped and removed afterwards."""
    if BIN is None:
        raise SystemExit("--postgres needs the PostgreSQL server binaries (apt-get install postgresql)")
    cluster = Cluster(BIN, durable=durable)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmarks' choice of catalogue: SQLite (default) or PostgreSQL."""
    group = parser.add_mutually_exclusive_group()
    started_here = "catalogue on a throwaway PostgreSQL cluster started (and removed) by the bench"
    group.add_argument("--postgres", action="store_true", help=started_here)
    given = "catalogue on this PostgreSQL database (postgresql+psycopg://…); best an empty one"
    group.add_argument("--database-url", default="", help=given)


class Catalogue:
    """Where a benchmark's daemon keeps its catalogue: SQLite in its data_dir (``url`` empty), a
    database of a cluster the bench started, or a PostgreSQL database given by URL."""

    def __init__(self, cluster: Cluster | None, url: str) -> None:
        self.cluster, self.url = cluster, url

    @property
    def name(self) -> str:
        return "postgresql" if self.cluster or self.url else "sqlite"

    def fresh(self) -> str:
        """The database_url for one run ("": SQLite). A given URL is reused: runs add up in it."""
        return self.cluster.new_database() if self.cluster else self.url

    def describe(self, daemon_core: int, loadgen_core: int) -> str:
        if self.cluster:
            version = self.cluster.bin.parent.name
            return (
                f"Catalogue: **PostgreSQL {version}** (a throwaway cluster the bench started: Unix socket, "
                f"fsync on, otherwise default settings). Its server runs on core {loadgen_core} with the "
                f"load generator, so the daemon keeps core {daemon_core} to itself as in the SQLite runs; "
                "SQLite's work happens inside the daemon's process, PostgreSQL's in its server, so read "
                "the daemon's CPU with that in mind, and the load generator's lag and offered rate as "
                "the check that the shared core kept pace."
            )
        if self.url:
            return (
                "Catalogue: **PostgreSQL** at the URL given with --database-url (its server's cores and "
                "settings are its operator's: not pinned by the bench)."
            )
        return (
            f"Catalogue: **SQLite** (recorderd.db in the data directory, written from the daemon's "
            f"process on core {daemon_core})."
        )


def config_line(url: str) -> str:
    """The recorderd.toml line (top level: put it first) that points the daemon at ``url``."""
    return f"database_url = {json.dumps(url)}\n" if url else ""


@contextlib.contextmanager
def catalogue(args: argparse.Namespace) -> Iterator[Catalogue]:
    """From ``add_arguments``' options. Call it after pinning: a started server inherits the cores."""
    if args.postgres:
        with started() as cluster:
            yield Catalogue(cluster, "")
    else:
        yield Catalogue(None, args.database_url)


def sqlalchemy_url(url: str, data_dir: Path) -> str:
    return url or f"sqlite:///{data_dir / 'recorderd.db'}"
