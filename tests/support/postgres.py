"""The tests' throwaway PostgreSQL cluster (the class is bench/postgres.py, shared with the
benchmarks' ``--postgres``). One cluster per test session; each test gets a database of its own
(``Cluster.new_database``).

Without the binaries (``apt-get install postgresql``; .ci/run installs it) the PostgreSQL half of the
parametrised tests is skipped with that reason, except under CI, where it fails instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.postgres import BIN, Cluster

__all__ = ["BIN", "Cluster", "require_postgres"]


def require_postgres() -> Path:
    if BIN is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries missing under CI (.ci/run installs postgresql)")
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    return BIN
