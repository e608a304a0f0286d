"""Links that break under a call: the AMI connection reset, Asterisk restarting, the spy reset mid-frame."""

from __future__ import annotations

import asyncio

import pytest

from faults.conftest import FaultHarness
from support.recordings import inbound, row_of, spy_attached, stored_pcm, wait_for_parts, when

pytestmark = pytest.mark.timeout(60)

FRAME = 3 + 320  # AudioSocket: type, 16-bit length, 20 ms of slin
UUID_FRAME = 3 + 16
CHUNK = 65536 + 16  # one age STREAM chunk on disk


async def test_ami_reset_mid_call_loses_no_audio_and_reconnects(fault_harness: FaultHarness) -> None:
    f = await fault_harness(ami_proxy=True)
    h, proxy = f.h, f.ami_proxy
    assert proxy is not None
    started = when(h.daemon.events, "call_started")
    call = asyncio.create_task(h.sim.run_call(inbound(seconds=4)))
    # Once ChanSpyStart is in (a call AMI never saw the spy attach to is only "unverified"):
    assert h.daemon.manager is not None
    await spy_attached(h.daemon.manager, started)
    h.daemon.ami_up.clear()  # so the wait below sees the *new* session
    assert proxy.reset_all() == 1  # RST to both sides, mid-call
    result = await call
    await asyncio.wait_for(h.daemon.ami_up.wait(), 15)  # reconnected through the same proxy
    assert proxy.connections == 2
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()

    row = row_of(h.config.db_url, result)
    assert row.status == "completed", row.failure_reason
    pcm, sealed = stored_pcm(h.data_dir, row, h.identity)
    assert sealed and pcm == result.spy_pcm  # every frame the spy sent, despite the AMI outage
    kinds = [(r["kind"], r.get("state")) for r in h.daemon.events.recent if r["kind"] == "pbx_link_down"]
    assert kinds == [("pbx_link_down", "raised"), ("pbx_link_down", "resolved")]

    after = await h.call(inbound("0322223333", seconds=1))  # and the next call has its AMI facts again
    row = row_of(h.config.db_url, after)
    assert row.status == "completed" and row.hangup_cause == 16 and row.notes is None


async def test_asterisk_restart_seals_the_calls_it_hung_up_and_records_after(
    fault_harness: FaultHarness,
) -> None:
    h = (await fault_harness()).h
    calls = [asyncio.create_task(h.sim.run_call(inbound(f"03111100{i:02d}", seconds=30))) for i in range(2)]
    await wait_for_parts(h.data_dir, 2 * CHUNK, count=2)  # past the announcement, the caller talking
    # The AGI names the recording (RECORDING_ID) once the announcement is over; a stop before that
    # leaves a call this test cannot look up (about one run in twenty on an idle machine).
    async with asyncio.timeout(30):
        while True:  # the simulator has no event for it; its calls' results fill as the AGI talks
            if sum("RECORDING_ID" in r.variables for r in h.sim.live_results) >= 2:
                break
            await asyncio.sleep(0.05)
    await h.sim.shutdown()  # "core stop now": both calls hung up (cause 4), AMI closed
    results = await asyncio.gather(*calls)
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()
    for result in results:
        row = row_of(h.config.db_url, result)
        assert row.status == "completed", row.failure_reason  # the spy ended with the call: a whole file
        pcm, sealed = stored_pcm(h.data_dir, row, h.identity)
        assert sealed and pcm == result.spy_pcm

    await h.sim.start(ami_port=h.sim.ami_port)  # Asterisk is back on the same port
    await asyncio.wait_for(h.daemon.ami_up.wait(), 15)
    after = await h.call(inbound("0322223333", seconds=1))
    assert row_of(h.config.db_url, after).status == "completed"
    assert "pbx_link_down" not in h.daemon.events.open_alerts


@pytest.mark.parametrize("how", ["reset", "eof"])
async def test_spy_cut_mid_frame_keeps_what_arrived_and_says_so(
    fault_harness: FaultHarness, how: str
) -> None:
    f = await fault_harness()
    h = f.h
    proxy = await f.spy_proxy()
    cut = UUID_FRAME + 40 * FRAME + FRAME // 2  # 40 whole frames, then half of one
    done = proxy.cut_after(cut, mode=how)  # RST, or FIN: a peer that died between two writes
    result = await h.sim.run_call(inbound(seconds=3))
    assert await asyncio.wait_for(done, 5) == cut
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()

    row = row_of(h.config.db_url, result)
    assert row.status == "incomplete" and row.failure_reason, row
    pcm, sealed = stored_pcm(h.data_dir, row, h.identity)
    # Sealed, a whole number of frames, and exactly the start of what the spy sent (the kernel may
    # drop what was still unread when the RST arrived; never anything made up or reordered).
    assert sealed and len(pcm) % 320 == 0 and len(pcm) <= 40 * 320
    assert pcm == result.spy_pcm[: len(pcm)]
    assert any(r["kind"] == "recording_failed" for r in h.daemon.events.recent)

    after = await h.call(inbound("0322223333", seconds=1))  # the cut was one-shot: this spy passes
    assert row_of(h.config.db_url, after).status == "completed"
