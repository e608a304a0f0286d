"""A local process forging a call (issue 12, item 6): an AGI session with an invented environment,
the spy's AudioSocket opened and fed by the forger itself. The recording is kept (it may be all
there is), but never as a "completed" call; AGI from an address not in ``[agi] peers`` is refused
unread, with one log line per address however many connections."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from faults.conftest import FaultHarness
from support.forger import Forged
from support.recordings import inbound, row_of, when

pytestmark = pytest.mark.timeout(60)

FRAME = b"\x10\x27" * 160


async def _forge(agi_port: int, uniqueid: str, seconds: float = 1.0) -> Forged:
    forged = Forged()
    agi = asyncio.create_task(forged.agi("127.0.0.1", agi_port, uniqueid))
    await asyncio.wait_for(forged.connected.wait(), 10)
    await forged.send([FRAME] * round(seconds / 0.02))
    await asyncio.wait_for(agi, 20)  # the daemon asked, was answered, returned
    await forged.hang_up()
    return forged


async def test_forged_agi_and_audio_never_make_a_completed_call(fault_harness: FaultHarness) -> None:
    h = (await fault_harness()).h
    assert h.daemon.manager is not None
    unverified = when(h.daemon.events, "recording_unverified", state="raised")
    forged = await _forge(h.endpoints.agi_port, f"{int(time.time())}.77")
    assert forged.spy is not None  # the daemon believed it enough to ask for a spy
    await h.daemon.manager.drain()
    [row] = h.rows()
    assert row.status == "unverified" and row.audio_sha256  # kept, but not vouched for
    assert row.failure_reason == "AMI never reported the channel"
    await asyncio.wait_for(unverified, 5)


async def test_forged_claim_on_a_live_calls_uniqueid_is_not_corroborated(fault_harness: FaultHarness) -> None:
    h = (await fault_harness()).h
    assert h.daemon.manager is not None
    started = when(h.daemon.events, "call_started")
    real = asyncio.create_task(h.sim.run_call(inbound(seconds=3)))
    await asyncio.wait_for(started, 10)
    [live] = list(h.daemon.manager._pending.values())
    assert live.uniqueid  # AMI has seen this channel: a forger who guesses it gains nothing
    await _forge(h.endpoints.agi_port, live.uniqueid)
    result = await real
    await h.daemon.manager.drain()
    genuine = row_of(h.config.db_url, result)
    assert genuine.status == "completed"
    [forged_row] = [r for r in h.rows() if r.id != genuine.id]
    assert forged_row.status == "unverified"
    assert forged_row.failure_reason and forged_row.failure_reason.startswith("uniqueid already claimed")


async def test_agi_from_an_unlisted_address_is_refused_unread(fault_harness: FaultHarness) -> None:
    h = (await fault_harness()).h  # [agi] peers: the default, 127.0.0.1 and ::1
    assert h.daemon.agi_peers is not None
    with capture_logs() as logs:
        for _ in range(20):
            r, w = await asyncio.open_connection(
                "127.0.0.1", h.endpoints.agi_port, local_addr=("127.0.0.2", 0)
            )
            w.write(b"agi_uniqueid: 1.1\n\n")
            try:
                said = await asyncio.wait_for(r.read(), 5)
            except ConnectionResetError:  # closed with our bytes unread: the kernel says RST
                said = b""
            assert said == b""  # closed, nothing said
            w.close()
    assert h.daemon.agi_peers.refused_total == 20
    assert [e["peer"] for e in logs if e["event"] == "agi_peer_refused"] == ["127.0.0.2"]  # one line
    assert h.rows() == []
