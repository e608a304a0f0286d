"""Fixtures shared by every test folder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support import backend as backend_state
from support.mosquitto import MOSQUITTO, Mosquitto
from support.postgres import Cluster, require_postgres
from support.service import Service, Spawn


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port, anonymous, killed at the end of the test."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed (apt-get install mosquitto; .ci/run installs it)")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Make daemon processes (support.service.Service) that are killed when the test ends."""
    made: list[Service] = []

    def make(config: Path, env: dict[str, str]) -> Service:
        made.append(Service(config, env))
        return made[-1]

    yield make
    for svc in made:
        svc.kill()
        if svc.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(svc.proc.wait(), 10)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (support/postgres.py)."""
    cluster = Cluster(require_postgres())
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on each backend: SQLite in data_dir, then a fresh PostgreSQL database."""
    cluster: Cluster | None = None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("postgres")
        backend_state.cluster = cluster
        backend_state.current = cluster.new_database()
    try:
        yield str(request.param)
    finally:
        if cluster is not None:
            for url in [backend_state.current, *backend_state.made]:
                if url:
                    cluster.drop(url)
        backend_state.made.clear()
        backend_state.current = backend_state.cluster = None
