"""Which database the current test runs on: the ``backend`` fixture (tests/conftest.py) sets it, the
helpers that write configurations (support.people, support.retention_seed, the e2e harness) read it.

A module opts in with ``pytestmark = pytest.mark.usefixtures("backend")``: each of its tests then runs
on SQLite (the embedded default) and on a fresh database in a real PostgreSQL server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class _Databases(Protocol):
    def new_database(self) -> str: ...


current: str | None = None  # a PostgreSQL URL while a test runs on PostgreSQL; None: SQLite in data_dir
cluster: _Databases | None = None  # the PostgreSQL cluster while a test runs on it
made: list[str] = []  # the extra databases ``url`` created for the current test (dropped after it)


def url(tmp: Path, name: str = "catalogue") -> str:
    """A database of its own for a test that opens catalogues directly: ``name`` tells them apart."""
    if cluster is None:
        return f"sqlite:///{tmp / name}.db"
    if name == "catalogue" and current:
        return current
    made.append(cluster.new_database())
    return made[-1]


def config_line() -> str:
    """The top-level TOML line for the configuration (before any table), or nothing for SQLite."""
    return f'database_url = "{current}"\n' if current else ""
