"""PostgreSQL stops while calls record (a restart, a network cut to the database host): audio keeps
flowing to disk, the rows and their ledger entries are written, in order, once the server is back;
nothing is lost and the chain verifies. The real server, stopped and started with pg_ctl.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from faults.conftest import FaultHarness
from pbx.simulator import SimCall
from recorderd.cli.demo import speech
from storage import ledger
from storage.db import open_database
from storage.models import Call
from support import backend
from support.postgres import Cluster, require_postgres

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own: stopping the session's would pull it from under other tests."""
    cluster = Cluster(require_postgres())
    cluster.start()
    backend.current = cluster.new_database()
    yield cluster
    backend.current = None
    cluster.stop()


def inbound(n: int) -> SimCall:
    return SimCall(caller=f"031111{n:04d}", dialled="0668585050", caller_audio=speech("caller"),
                   agent_audio=speech("agent"), bridged=True)  # fmt: skip


async def test_calls_during_a_database_outage_are_recorded_and_catalogued_afterwards(
    fault_harness: FaultHarness, own_cluster: Cluster
) -> None:
    f = await fault_harness()
    h = f.h
    assert h.daemon.manager is not None
    first = await h.call(inbound(0))
    await h.daemon.manager.drain()

    await asyncio.to_thread(own_cluster.pause)
    during = await asyncio.gather(*(h.sim.run_call(inbound(n)) for n in (1, 2, 3)))  # no drain: rows wait
    await asyncio.wait_for(h.daemon.manager.sealed(), 60)
    files = sorted(p.name for p in (h.data_dir / "recordings").rglob("*.age"))
    assert len(files) == 4  # the audio did not wait for the database
    await asyncio.to_thread(own_cluster.resume)
    await asyncio.wait_for(h.daemon.manager.drain(), 120)

    _e, sessions = open_database(h.config.db_url, migrate=False)
    with sessions() as s:
        rows = {r.pbx_uniqueid: r for r in s.query(Call).all()}
        report = ledger.verify(s)
        kinds = [e.kind for e in ledger.entries(s) if e.call_id]
    for result in (first, *during):
        row = rows[result.uniqueid]
        assert row.status == "completed" and row.audio_sha256 and row.ended_at is not None
    assert report.ok, report.problems
    assert kinds.count("recording_created") == 4 and kinds.count("recording_finalised") == 4
