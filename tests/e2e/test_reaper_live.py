"""The reaper inside the running daemon: a pass over a large catalogue while simulated calls stream,
the policy applied by a reload (SIGHUP's path), and new recordings refused on a full disk.

Scale: RECORDERD_REAPER_LOAD calls (default 10,000; 10 % due). ``python -m bench.reaper_pass`` takes
the 1,000,000-call figure for docs/PERFORMANCE.md, with the daemon in its own process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid

import numpy as np
import pytest
from sqlalchemy import func, select

from e2e.conftest import Harness, MakeHarness
from pbx.simulator import CallResult, SimCall
from recorderd.cli.demo import speech
from recorderd.config.retention import RetentionConfig
from recorderd.daemon.lifecycle import check_startup
from recorderd.records.audio import decrypt_recording
from recorderd.retention.diskguard import Usage
from storage import retention_log
from storage.audio import parse_au
from storage.db import open_database
from storage.models import Call
from support.retention_seed import Clock, seed_bulk

pytestmark = pytest.mark.timeout(120)

TOTAL = int(os.environ.get("RECORDERD_REAPER_LOAD", "10000"))
RETENTION = RetentionConfig.model_validate(
    {"default": "raw", "policies": {"raw": {"keep": {"days": 31}}}, "policy_change_grace_h": 0}
)


def inbound() -> SimCall:
    return SimCall(
        caller="0311112222",
        dialled="0668585050",
        caller_audio=speech("caller")[:16000],
        agent_audio=speech("agent")[:16000],
    )


def recorded_exactly(h: Harness, result: CallResult) -> bool:
    with open_database(h.config.db_url, migrate=False)[1]() as s:
        row = s.get(Call, str(uuid.UUID(result.variables["RECORDING_ID"])))
    assert row is not None and row.audio_path is not None and row.status == "completed", row.failure_reason
    _rate, _ch, samples = parse_au(decrypt_recording(h.data_dir / row.audio_path, [h.identity]).au)
    return bool(np.array_equal(np.frombuffer(samples, "<i2"), np.frombuffer(result.spy_pcm, "<i2")))


async def lag_probe(lags: list[float], stop: asyncio.Event) -> None:
    """How late the event loop wakes a 10 ms timer: what every AudioSocket frame waits for too."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - t - 0.01)


async def test_a_pass_over_a_large_catalogue_never_costs_a_live_frame(make_harness: MakeHarness) -> None:
    h = await make_harness()
    reaper = h.daemon.reaper
    assert reaper is not None and h.daemon.manager is not None
    if reaper.last is None:  # the start-up pass, with the harness's no-retention configuration
        await reaper.next_pass()
    now = dt.datetime.now(dt.UTC)
    sessions = open_database(h.config.db_url)[1]
    due = seed_bulk(h.config, sessions, TOTAL, TOTAL // 10, now, keep_days=31)
    reaper.clock = Clock(now)

    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(lag_probe(lags, stop))
    finished = asyncio.ensure_future(reaper.next_pass())
    new = h.config.model_copy(update={"retention": RETENTION})
    h.daemon.reload(new, check_startup(new))  # what SIGHUP does, once the checks pass
    results: list[CallResult] = []
    while not finished.done():  # calls keep arriving, three at a time, for the whole pass
        results += await asyncio.gather(*(h.sim.run_call(inbound()) for _ in range(3)))
    report = await finished
    stop.set()
    await probe
    await h.daemon.manager.drain()

    assert report.refused is None and report.policy_changed
    assert report.deleted == len(due) and not any(d.path.exists() for d in due)
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Call.audio_deleted_at.is_not(None))) == len(due)
        assert len(retention_log.entries(s, actions=["delete"])) == len(due)
    assert len(results) >= 3 and all(recorded_exactly(h, r) for r in results)
    # What matters is above: every frame of every call during the pass, recorded exactly. The lag is
    # a guard against a pass run on the event loop (its batches would stall it for seconds); its bound
    # leaves room for a loaded 2-core host, where a thread holding the GIL delays a timer ~1 s.
    assert max(lags) < 2.0, f"event loop stalled {max(lags):.3f} s"


async def test_a_full_disk_refuses_new_recordings_and_deletes_nothing(make_harness: MakeHarness) -> None:
    h = await make_harness()
    reaper = h.daemon.reaper
    assert reaper is not None
    first = await h.call(inbound())
    reaper.disk.usage = lambda _p: Usage(100 * 2**30, 0, 100 * 2**20)  # 100 MB free of 100 GB
    reaper.disk.check()
    refused = await h.call(inbound())
    assert refused.variables.get("RECORDING_STATUS") == "failed" and refused.spy_uuid is None
    rows = h.rows()
    assert [(r.status, r.failure_reason) for r in rows] == [("completed", None), ("failed", "disk_full")]
    assert recorded_exactly(h, first)  # the earlier recording is untouched
    reaper.disk.usage = lambda _p: Usage(100 * 2**30, 0, 50 * 2**30)
    reaper.disk.check()
    assert (await h.call(inbound())).variables.get("RECORDING_STATUS") == "recording"
