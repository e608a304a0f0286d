"""The real timeline under bad media (issue 12, item 1): a line that goes silent for seconds (no
frames at all, the socket open), and a peer that floods frames faster than real time. The daemon
runs on the real clock here, as in production."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from faults.conftest import FaultHarness
from pbx.simulator import SimCall
from recorderd.daemon.recording import Recording
from recorderd.daemon.timeline import QUIET
from support.forger import Forged
from support.recordings import row_of, stored_pcm, when

pytestmark = pytest.mark.timeout(90)

WORDS = bytes(b"\x10\x27" * 8000)  # 1 s of a constant, never-zero level (10000)


async def _recording(h_manager: object, started: asyncio.Future[None]) -> Recording:
    await asyncio.wait_for(started, 20)
    [call] = [c for c in h_manager._pending.values() if c.attached.done()]  # type: ignore[attr-defined]
    rec = call.attached.result()
    assert isinstance(rec, Recording)
    return rec


async def test_a_long_silence_is_recorded_while_it_lasts(fault_harness: FaultHarness) -> None:
    h = (await fault_harness(real_time=True)).h
    assert h.daemon.manager is not None
    started = when(h.daemon.events, "call_started")
    call = SimCall(
        caller="201",
        dialled="03-1234-5678",
        direction="outbound",
        silence_suppression=True,
        caller_audio=WORDS + bytes(2 * 8000 * 4) + WORDS,
    )  # fmt: skip  (4 s: no frames)
    task = asyncio.create_task(h.sim.run_call(call))
    rec = await _recording(h.daemon.manager, started)
    first = await asyncio.wait_for(asyncio.shield(rec.first_frame), 10)
    assert rec.timeline is not None
    # Two seconds into the four-second pause (time passing is what is tested here, not a sync):
    await asyncio.sleep(first + 3.0 - time.monotonic())
    assert rec.timeline.state == QUIET
    behind = (time.monotonic() - first) - rec.audio_bytes / 16000
    assert 0 <= behind < 0.5  # silence was added as the pause went on, not after it
    result = await task
    await h.daemon.manager.drain()
    pcm, sealed = stored_pcm(h.data_dir, row_of(h.config.db_url, result), h.identity)
    assert sealed and result.spy_first_frame is not None and result.spy_closed_at is not None
    assert abs(len(pcm) / 2 / 8000 - (result.spy_closed_at - result.spy_first_frame) * 0.02) <= 0.04
    samples = np.frombuffer(pcm, "<i2")
    loud = np.flatnonzero(samples) / 8000
    # the second second of words sits 5 s after the first, as on the call
    assert abs(loud[0] - 0.0) <= 0.04 and abs(loud[loud > 2.0][0] - 5.0) <= 0.04


async def test_a_flood_faster_than_real_time_never_piles_up(fault_harness: FaultHarness) -> None:
    h = (await fault_harness(real_time=True)).h
    assert h.daemon.manager is not None
    forged = Forged()
    agi = asyncio.create_task(forged.agi("127.0.0.1", h.endpoints.agi_port, "1796600000.42"))
    await asyncio.wait_for(forged.connected.wait(), 10)
    frame = b"\x10\x27" * 160
    t0 = time.monotonic()
    await forged.send([frame])
    for _ in range(24):  # half a second in real time...
        await asyncio.sleep(0.02)
        await forged.send([frame])
    flood_at = time.monotonic() - t0
    await forged.send([frame] * 500)  # ...then ten seconds of audio at once
    await asyncio.sleep(0.5)
    elapsed = time.monotonic() - t0
    await forged.hang_up()
    await asyncio.wait_for(agi, 10)
    await h.daemon.manager.drain()
    [row] = h.rows()
    pcm, sealed = stored_pcm(h.data_dir, row, h.identity)
    assert sealed
    seconds = len(pcm) / 2 / 8000
    assert abs(seconds - elapsed) <= 0.1, (seconds, elapsed)  # the call's length, not the flood's
    loud = np.count_nonzero(np.frombuffer(pcm, "<i2")) / 8000
    # what real time allowed until the flood, plus the jitter allowance (and a frame of rounding)
    assert loud <= flood_at + 0.02 + 0.06 + 0.02 + 0.02, (loud, flood_at)
