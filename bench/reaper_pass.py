"""A retention pass over a large catalogue inside the running daemon, while live calls stream (issue 3).

    python -m bench.reaper_pass --calls 100000 --due 0.1 --live 20

One process, as in production: recorderd's ``Daemon`` (its reaper task included) and the PBX
simulator speaking AGI, AMI and AudioSocket over loopback in real time (one 20 ms frame per call
every 20 ms). The catalogue: ``--calls`` finished calls in SQLite, the oldest ``--due`` fraction past
a 31-day policy and backed by real files. The policy arrives by a reload (SIGHUP's path), so the
pass computes the expiry of every row (a policy change) and then deletes the due files in batches,
with the intent protocol, directory fsyncs and one retention-log (and ledger) entry each, while
``--live`` calls are kept in progress. Reported: the pass's duration and phases, the event loop's
lateness on a 10 ms timer (every frame waits for the loop too) before and during the pass, and
whether every live recording is, byte for byte, what the simulator streamed (no lost frame).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import hashlib
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from announce import builtin_prompt
from bench.common import DOC, Section, loadavg, percentile, table, write_section
from pbx.simulator import CallResult, PbxSimulator, SimCall
from recorderd import logs
from recorderd.access import decrypt_recording
from recorderd.config import parse_config
from recorderd.daemon import Daemon, Endpoints
from recorderd.demo import speech
from recorderd.retention_config import RetentionConfig
from storage.age import generate_identity
from storage.audio import parse_au
from storage.db import open_database
from storage.models import COMPLETED, Call

CONFIG = """
data_dir = "{data}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
port = {ami_port}
secret = "bench"
[encryption]
recipients = ["{recipient}"]
[announcements.ja]
sound = "recorderd/announce-ja"
[[lines]]
name = "general"
numbers = ["06-6858-5050"]
announcement = "ja"
"""
RETENTION = RetentionConfig.model_validate(
    {"default": "raw", "policies": {"raw": {"keep": {"days": 31}}}, "policy_change_grace_h": 0}
)


def seed(data: Path, db_url: str, total: int, due: int, now: dt.datetime) -> None:
    _e, sessions = open_database(db_url)
    rows = []
    for i in range(total):
        old = i < due
        started = now - dt.timedelta(days=36 + i % 300 if old else i % 29, minutes=i % 600)
        cid = str(uuid.UUID(int=i + 1))
        rel = f"recordings/{started:%Y/%m/%d}/{cid}.age"
        blob = cid.encode() * 64  # stands in for ciphertext; only due files are ever opened
        if old:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            (data / rel).write_bytes(blob)
        rows.append(
            {
                "id": cid,
                "direction": "inbound",
                "line": "general",
                "started_at": started,
                "ended_at": started + dt.timedelta(minutes=2),
                "status": COMPLETED,
                "audio_path": rel,
                "audio_bytes": len(blob),
                "audio_sha256": hashlib.sha256(blob).hexdigest(),
            }
        )
    with sessions.begin() as s:
        for i in range(0, total, 10_000):
            s.execute(insert(Call), rows[i : i + 10_000])


class GcPauses:
    """Full collections stop every thread, the event loop included: time them to explain the max."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []  # (start, ms) of generation-2 collections
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.monotonic()
        elif info["generation"] == 2:
            self.pauses.append((self._start, (time.monotonic() - self._start) * 1000))


async def lag_probe(lags: list[tuple[float, float]], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        lags.append((t, loop.time() - t - 0.01))


async def run(args: argparse.Namespace, root: Path) -> dict[str, object]:
    sounds = root / "sounds"
    (sounds / "recorderd").mkdir(parents=True)
    shutil.copyfile(builtin_prompt("ja"), sounds / "recorderd" / "announce-ja.wav")
    identity, recipient = generate_identity()
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret="bench", sounds_dir=sounds, speed=1.0)
    await sim.start()
    config = parse_config(CONFIG.format(data=root / "data", ami_port=sim.ami_port, recipient=recipient))
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    seed(config.data_dir, config.db_url, args.calls, int(args.calls * args.due), now)
    seeded_s = time.perf_counter() - t0
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    daemon = Daemon(config, on_ready=ready.set_result)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    sim.set_agi_target("127.0.0.1", (await ready).agi_port)
    await asyncio.wait_for(daemon.ami_up.wait(), 10)
    reaper = daemon.reaper
    assert reaper is not None
    if reaper.last is None:
        await reaper.next_pass()  # the start-up pass (no policy yet)

    voice = speech("caller")[: 16000 * 2], speech("agent")[: 16000 * 2]
    results: list[CallResult] = []
    calls_stop = asyncio.Event()

    async def caller() -> None:
        while not calls_stop.is_set():
            results.append(
                await sim.run_call(
                    SimCall(
                        caller="0311112222", dialled="0668585050", caller_audio=voice[0], agent_audio=voice[1]
                    )
                )
            )

    lags: list[tuple[float, float]] = []
    gcs = GcPauses()
    probe_stop = asyncio.Event()
    probe = asyncio.create_task(lag_probe(lags, probe_stop))
    callers = [asyncio.create_task(caller()) for _ in range(args.live)]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(args.baseline)  # live calls only: the baseline lateness
    pass_start = loop.time()
    finished = asyncio.ensure_future(reaper.next_pass())
    daemon.reload(config.model_copy(update={"retention": RETENTION}))
    report = await finished
    pass_end = loop.time()
    calls_stop.set()
    await asyncio.gather(*callers)
    probe_stop.set()
    await probe
    assert daemon.manager is not None
    await daemon.manager.drain()
    lost = 0
    _e, sessions = open_database(config.db_url, migrate=False)
    with sessions() as s:
        for r in results:
            row = s.get(Call, str(uuid.UUID(r.variables["RECORDING_ID"])))
            assert row is not None and row.audio_path is not None
            au = decrypt_recording(config.data_dir / row.audio_path, [identity]).au
            stored = np.frombuffer(parse_au(au)[2], "<i2")
            streamed = np.frombuffer(r.spy_pcm, "<i2")
            lost += abs(len(streamed) - len(stored)) // 160 + int(not np.array_equal(stored, streamed))
    stop.set()
    await task
    await sim.close()
    during = [lag * 1000 for t, lag in lags if pass_start <= t <= pass_end]
    before = [lag * 1000 for t, lag in lags if t < pass_start]
    gc_ms = [ms for t, ms in gcs.pauses if pass_start <= t <= pass_end]
    return {
        "calls": args.calls,
        "due": int(args.calls * args.due),
        "deleted": report.deleted,
        "pass_s": pass_end - pass_start,
        "seeded_s": seeded_s,
        "live": args.live,
        "recorded": len(results),
        "lost": lost,
        "before": before,
        "during": during,
        "gc": f"{len(gc_ms)} / {max(gc_ms, default=0):.0f} ms",
    }


def body(r: dict[str, object]) -> str:
    before, during = r["before"], r["during"]
    assert isinstance(before, list) and isinstance(during, list)
    pass_s = float(r["pass_s"])  # type: ignore[arg-type]

    def q(v: list[float]) -> str:
        return f"{percentile(v, 50):.1f} / {percentile(v, 99):.1f} / {max(v, default=float('nan')):.1f}"

    rows = [
        [
            f"{r['calls']:,}",
            f"{r['due']:,}",
            f"{r['deleted']:,}",
            f"{pass_s:.1f} s",
            f"{int(r['deleted']) / pass_s:,.0f}/s",
            q(before),
            q(during),
            f"{r['live']}",
            f"{r['recorded']}",
            f"{r['gc']}",
            f"{r['lost']}",
        ],  # type: ignore[call-overload]
    ]
    return (
        "Retention pass inside the running daemon (policy applied by reload: every row's expiry computed, "
        "then the due files deleted with intents, directory fsyncs and a log + ledger entry each), while "
        "live calls stream in real time through the simulator in the same process. The loop's worst "
        "lateness is a full garbage collection (it stops every thread, the loop included); frames wait "
        "in the socket buffers meanwhile and none is lost.\n\n"
        + table(
            [
                "catalogued",
                "due",
                "deleted",
                "pass",
                "deletions",
                "loop lateness before p50/p99/max ms",
                "during the pass",
                "live calls",
                "recordings checked",
                "full GCs / longest",
                "lost frames",
            ],
            rows,
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--due", type=float, default=0.1)
    p.add_argument("--live", type=int, default=20, help="calls kept in progress during the pass")
    p.add_argument("--baseline", type=float, default=5.0, help="seconds of live calls before the pass")
    p.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    args = p.parse_args(argv)
    load = loadavg()
    logs.configure(json=True, stream=open("/dev/null", "w"), level=40)  # noqa: SIM115
    with tempfile.TemporaryDirectory(prefix="bench-reaper-", dir=args.dir) as tmp:
        r = asyncio.run(run(args, Path(tmp)))
    print(body(r))
    if args.doc != "-":
        write_section(Section("reaper_pass", body(r), load), Path(args.doc))
    return 1 if r["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
