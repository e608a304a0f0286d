"""Concurrent real-time calls into one daemon process pinned to one core (issue 6, part 1).

    python -m bench.concurrent_calls --calls 100,500,1000,2000 --seconds 30
    python -m bench.concurrent_calls --calls 100,500,1000,2000 --seconds 30 --postgres

``--postgres`` puts the catalogue on a throwaway PostgreSQL cluster (bench/postgres.py) whose server
runs on the load generator's core; ``--database-url`` on a database of your own.

For each N: a fresh data directory and key, the daemon (``bench.daemon_proc``: recorderd's own
``Daemon`` as ``recorderd run`` starts it, plus per-chunk timing probes) in its own process pinned
to core 0, and this load generator pinned to core 1. The generator plays Asterisk:

* **AGI, for real**: per call a FastAGI connection with an outbound call's environment; it answers
  the daemon's ``EXEC Originate AudioSocket/…`` (parsing the call id from the dial string),
  ``GET VARIABLE ORIGINATE_STATUS`` (SUCCESS) and the ``SET VARIABLE``s, then ``HANGUP`` + FIN.
  So the daemon's call path runs whole: policy, metadata rows (SQLite or PostgreSQL), key wrapping,
  the spy wait.
* **AudioSocket, for real**: per call a loopback TCP connection that sends the UUID, then one
  20 ms frame (320 bytes slin) every 20 ms, paced by a clock, calls spread evenly over the 20 ms
  (as independent channels are), until hang-up (FIN).
* **Not exercised**: AMI (disabled: no answer/hang-up events, so each call waits the daemon's
  1 s hang-up grace only when AMI is up, i.e. never here), the announcement (outbound calls have
  none), ChanSpy itself. The simulator (pbx/simulator) covers those, but costs far more per call
  than the daemon does, so it cannot drive thousands of calls from one core.

Each frame's payload carries the generator's send time (CLOCK_MONOTONIC ns) and its tick number,
so afterwards every stored recording is decrypted and checked frame by frame: lost frames are
frames generated minus frames stored, and the stored ticks must be in order.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from bench.common import (
    DOC,
    REPO,
    Section,
    core_busy,
    core_times,
    cpu_seconds,
    loadavg,
    main_thread_cpu_seconds,
    percentile,
    pin,
    rss_mib,
    self_cpu_seconds,
    table,
    write_section,
)
from bench.postgres import Catalogue, add_arguments, catalogue, config_line, sqlalchemy_url
from storage.age import generate_identity
from storage.audio import parse_au
from storage.db import open_database
from storage.models import COMPLETED, UNVERIFIED
from storage.models import Call as CallRow
from storage.vault import decrypt_file

FRAME_PAYLOAD = 320
FRAME = bytes((0x10, FRAME_PAYLOAD >> 8, FRAME_PAYLOAD & 0xFF))  # AudioSocket audio header
TICK_S = 0.020
GROUPS = 10  # calls spread over 10 phases of 2 ms inside each 20 ms tick
MAX_PENDING = 50 * (FRAME_PAYLOAD + 3)  # 1 s of audio queued in the generator; beyond it, drop
ARRIVAL_P99_LIMIT_MS = 500.0  # "keeps up": no frame waits in a growing backlog
DURABLE_P99_LIMIT_MS = 1000.0  # "keeps up": the disk threads keep pace too (no block queue building)
SETTLE_S = 5.0  # after the last call is set up, before the window: > one 64 KiB block (4.1 s)
MAX_LAG_S = 0.1  # the generator skips (and counts) phases it is later than this for
DAEMON_CORE, LOADGEN_CORE = 0, 1

CONFIG = """
timezone = "Asia/Tokyo"
data_dir = "{data_dir}"
[agi]
listen = "127.0.0.1:0"
env_timeout_s = 30.0
[audiosocket]
listen = "127.0.0.1:0"
first_frame_timeout_s = 10.0
[ami]
enabled = false
[encryption]
recipients = ["{recipient}"]
[defaults]
inbound = "exclude"
outbound = "exclude"
[[lines]]
name = "staff-out"
direction = "outbound"
numbers = ["201"]
"""

_DIAL = re.compile(r"AudioSocket/([^/]+):(\d+)/([0-9a-fA-F-]{36})/")


def agi_env(i: int) -> bytes:
    """An outbound call's FastAGI environment, as in fixtures/asterisk-20/agi/outbound-to-pstn."""
    number = f"03{10000000 + i:08d}"
    env = {
        "agi_network": "yes",
        "agi_network_script": "outbound",
        "agi_request": "agi://127.0.0.1/outbound",
        "agi_channel": f"PJSIP/201-{i:08x}",
        "agi_language": "ja",
        "agi_type": "PJSIP",
        "agi_uniqueid": f"1795323221.{i}",
        "agi_version": "20.20.1",
        "agi_callerid": "201",
        "agi_calleridname": "Ext 201",
        "agi_dnid": number,
        "agi_rdnis": "unknown",
        "agi_context": "to-pstn",
        "agi_extension": number,
        "agi_priority": "1",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140171837281984",
    }
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()


@dataclass(eq=False)
class Call:
    index: int
    group: int
    sock: socket.socket | None = None
    call_id: str | None = None
    first_tick: int | None = None
    generated: int = 0
    dropped: int = 0  # the generator's 1 s queue was full: the daemon was that far behind
    pending: bytearray = field(default_factory=bytearray)
    stop: bool = False
    error: str | None = None
    hung_up: float | None = None  # time.monotonic() of the hang-up (FIN on the AudioSocket)


class Streamer(threading.Thread):
    """The media clock: every 2 ms, one frame to each call of one phase group (non-blocking send)."""

    def __init__(self) -> None:
        super().__init__(name="streamer", daemon=True)
        self.groups: list[list[Call]] = [[] for _ in range(GROUPS)]
        self.running = True
        self.lags: list[float] = []  # seconds behind schedule, per phase
        self.record_lag = False
        self.backpressure = 0  # sends that could not be completed at once
        self.skipped = 0  # phases skipped because the generator itself was late
        self._filler = bytes(range(256)) + bytes(FRAME_PAYLOAD - 12 - 256)

    def add(self, call: Call) -> None:
        self.groups[call.group].append(call)  # list.append is atomic under the GIL

    def run(self) -> None:
        period = TICK_S / GROUPS
        k = 0
        next_t = time.monotonic()
        frame_len = len(FRAME) + FRAME_PAYLOAD
        while self.running:
            now = time.monotonic()
            if now < next_t:
                time.sleep(next_t - now)
                now = time.monotonic()
            elif now - next_t > MAX_LAG_S:
                # The generator itself fell behind (its core is busy): skip the missed phases rather
                # than burst them, and say so; their frames are never generated, so never "lost".
                missed = int((now - next_t) / period)
                self.skipped += missed
                k += missed
                next_t += missed * period
            if self.record_lag:
                self.lags.append(now - next_t)
            tick, group = divmod(k, GROUPS)
            frame = FRAME + struct.pack("<QI", time.monotonic_ns(), tick) + self._filler
            for call in self.groups[group]:
                if call.stop:
                    continue
                if call.first_tick is None:
                    call.first_tick = tick
                call.generated += 1
                if call.pending:
                    self._queue(call, frame)
                    continue
                try:
                    n = call.sock.send(frame)  # type: ignore[union-attr]
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    call.error = f"send: {exc}"
                    call.stop = True
                    continue
                if n != frame_len:
                    self.backpressure += 1
                    call.pending += frame[n:]
            k += 1
            next_t += period

    def _queue(self, call: Call, frame: bytes) -> None:
        if len(call.pending) + len(frame) > MAX_PENDING:
            call.dropped += 1
        else:
            call.pending += frame
        self.flush(call)

    @staticmethod
    def flush(call: Call) -> None:
        assert call.sock is not None
        try:
            n = call.sock.send(call.pending)
        except BlockingIOError:
            return
        except OSError as exc:
            call.error = f"send: {exc}"
            call.stop = True
            return
        del call.pending[:n]


class LoadGenerator:
    def __init__(self, agi_port: int, calls: int, rate: float) -> None:
        self.agi_port = agi_port
        self.calls = [Call(i, i % GROUPS) for i in range(calls)]
        self.rate = rate
        self.streamer = Streamer()
        self.failures: collections.Counter[str] = collections.Counter()

    async def place_all(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i, call in enumerate(self.calls):
            delay = start + i / self.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._agi(call)))
        await asyncio.gather(*tasks)

    async def _agi(self, call: Call) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.agi_port)
        except OSError as exc:
            self.failures[f"agi connect: {exc}"] += 1
            return
        try:
            writer.write(agi_env(call.index))
            while line := await reader.readline():
                command = line.decode().rstrip("\n")
                if command.startswith("EXEC Originate"):
                    m = _DIAL.search(command)
                    if m is None:
                        self.failures["unparsable Originate"] += 1
                        writer.write(b"200 result=-1\n")
                        continue
                    await self._spy(call, m.group(1), int(m.group(2)), m.group(3))
                    writer.write(b"200 result=0\n")
                elif command.startswith("GET VARIABLE ORIGINATE_STATUS"):
                    writer.write(b"200 result=1 (SUCCESS)\n" if call.sock else b"200 result=1 (FAILED)\n")
                else:  # SET VARIABLE RECORDING_ID / RECORDING_STATUS
                    if "RECORDING_STATUS" in command and '"recording"' not in command:
                        self.failures[f"status: {command}"] += 1
                    writer.write(b"200 result=1\n")
            writer.write(b"HANGUP\n")  # the server half-closed: Asterisk says HANGUP, then FIN
        except (OSError, ConnectionError) as exc:
            self.failures[f"agi: {exc}"] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _spy(self, call: Call, host: str, port: int, call_id: str) -> None:
        """What Asterisk's AudioSocket channel does once the Originate runs: connect, send the UUID."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            sock.send(bytes((0x01, 0, 16)) + uuid.UUID(call_id).bytes)
        except OSError as exc:
            self.failures[f"audiosocket: {exc}"] += 1
            sock.close()
            return
        call.sock, call.call_id = sock, call_id
        self.streamer.add(call)

    async def hang_up_all(self) -> None:
        """Stop the media, let queued frames out (bounded), then close: the hang-up (FIN)."""
        for call in self.calls:
            call.stop = True
        deadline = time.monotonic() + 10
        while any(c.pending and c.error is None for c in self.calls) and time.monotonic() < deadline:
            for c in self.calls:
                if c.pending and c.error is None:
                    Streamer.flush(c)
            await asyncio.sleep(0.02)
        for call in self.calls:
            if call.sock is not None:
                call.hung_up = time.monotonic()
                call.sock.close()


@dataclass
class Result:
    calls: int
    established: int
    generated: int = 0
    stored: int = 0
    dropped_at_source: int = 0
    misordered_files: int = 0
    unreadable_files: int = 0
    completed_rows: int = 0  # sealed: 'completed' or 'unverified'
    silence_frames: int = 0  # added by the daemon's real timeline
    daemon_cpu: float = 0.0
    loop_cpu: float = 0.0  # the event loop thread alone
    loadgen_cpu: float = 0.0
    cores: list[float] = field(default_factory=list)  # busy % per CPU, softirq included
    rss_idle: float = 0.0
    rss: float = 0.0
    rss_peak: float = 0.0
    arrival: tuple[float, float, float] = (0.0, 0.0, 0.0)  # p50, p99, max (ms)
    handoff: tuple[float, float, float] = (0.0, 0.0, 0.0)
    durable: tuple[float, float, float] = (0.0, 0.0, 0.0)
    write: tuple[float, float, float] = (0.0, 0.0, 0.0)  # one block in the disk thread: seal+write+fsync
    samples: int = 0
    lag: tuple[float, float] = (0.0, 0.0)
    backpressure: int = 0
    gc: tuple[int, float] = (0, 0.0)  # full collections in the window, longest (ms)
    forced_gc: tuple[float, int] = (0.0, 0)  # one full collection forced mid-window: ms, objects
    offered: float = 0.0  # frames per second per call actually sent in the window (nominal 50)
    skipped: int = 0  # 2 ms phases the generator skipped in the window (its own overload)
    failures: dict[str, int] = field(default_factory=dict)
    loop: str = ""
    backend: str = "sqlite"  # the catalogue: sqlite or postgresql

    @property
    def lost(self) -> int:
        return self.generated - self.stored

    @property
    def us_per_frame(self) -> tuple[float, float]:
        """Daemon CPU µs per frame received: (all threads, event loop alone)."""
        fps = self.offered * self.established
        if not fps:
            return (float("nan"), float("nan"))
        return (1e4 * self.daemon_cpu / fps, 1e4 * self.loop_cpu / fps)

    @property
    def valid(self) -> bool:
        """The generator kept pace (50 frames/s per call): otherwise the run says nothing."""
        return self.offered > 49.0

    @property
    def keeps_up(self) -> bool:
        return (
            self.lost == 0
            and self.established == self.calls
            and self.misordered_files == 0
            and self.daemon_cpu < 95.0
            and self.arrival[1] < ARRIVAL_P99_LIMIT_MS
            and self.durable[1] < DURABLE_P99_LIMIT_MS
            and self.valid
        )


def _stats(samples: list[list[int]], start: int, end: int) -> tuple[tuple[float, float, float], int]:
    values = [d / 1e6 for t, d in samples if start <= t <= end]
    if not values:
        return (float("nan"), float("nan"), float("nan")), 0
    return (percentile(values, 50), percentile(values, 99), max(values)), len(values)


def verify(data_dir: Path, identity: str, calls: list[Call], result: Result, db_url: str = "") -> None:
    """Decrypt every recording and check its frames: count, order; count the run's sealed rows in
    the catalogue (``db_url``; empty: the SQLite file in ``data_dir``)."""
    for call in calls:
        if call.call_id is None:
            continue
        result.generated += call.generated
        result.dropped_at_source += call.dropped
        found = list(data_dir.glob(f"recordings/*/*/*/{call.call_id}.age"))
        if len(found) != 1:
            result.unreadable_files += 1
            continue
        out = io.BytesIO()
        try:
            decrypt_file(found[0], [identity], out)
            _rate, _ch, pcm = parse_au(out.getvalue())
        except Exception:
            result.unreadable_files += 1
            continue
        n = len(pcm) // FRAME_PAYLOAD
        if n:
            frames = np.frombuffer(pcm[: n * FRAME_PAYLOAD], dtype=np.uint8).reshape(n, FRAME_PAYLOAD)
            # The daemon keeps the real timeline: a pause (here: the generator falling behind by
            # more than the jitter allowance) is stored as silent frames, which are not ours.
            ours = frames.any(axis=1)
            result.silence_frames += int(n - np.count_nonzero(ours))
            frames = frames[ours]
            n = len(frames)
        result.stored += n
        if n:
            ticks = frames[:, 8:12].copy().view("<u4").ravel().astype(np.int64)
            if (
                len(pcm) % FRAME_PAYLOAD
                or (n > 1 and not bool(np.all(np.diff(ticks) > 0)))
                or (call.dropped == 0 and call.first_tick is not None and int(ticks[0]) != call.first_tick)
            ):
                result.misordered_files += 1
    engine, sessions = open_database(sqlalchemy_url(db_url, data_dir), migrate=False)
    ids = [c.call_id for c in calls if c.call_id is not None]
    try:
        with sessions() as s:
            # AMI is not exercised here, so no call can be corroborated: sealed calls are "unverified".
            # Only this run's calls: a database given by URL may hold earlier runs'.
            query = select(func.count()).select_from(CallRow)
            query = query.where(CallRow.status.in_((COMPLETED, UNVERIFIED)), CallRow.id.in_(ids))
            result.completed_rows = int(s.execute(query).scalar_one())
    finally:
        engine.dispose()


def run_one(
    n: int,
    seconds: float,
    rate: float,
    root: Path,
    loop_name: str,
    profile: Path | None = None,
    settle: float = SETTLE_S,
    db: Catalogue | None = None,
) -> Result:
    identity, recipient = generate_identity()
    run_dir = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=root))  # N may be given twice: runs apart
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True)
    config = run_dir / "recorderd.toml"
    db_url = db.fresh() if db else ""
    text = config_line(db_url) + CONFIG.format(data_dir=data_dir, recipient=recipient)
    config.write_text(text, encoding="utf-8")
    probes = run_dir / "probes.json"
    proc, ready = spawn_daemon(config, probes, loop_name, {DAEMON_CORE})
    try:
        result = Result(n, 0, loop=ready.get("loop", "?"), backend=db.name if db else "sqlite")
        time.sleep(0.5)
        result.rss_idle = rss_mib(proc.pid)[0]
        gen = LoadGenerator(ready["agi_port"], n, rate)
        gen.streamer.start()
        asyncio.run(gen.place_all())
        result.established = sum(1 for c in gen.calls if c.sock is not None)
        time.sleep(settle)  # every call streaming, its first chunk (and its set-up work) on disk
        spy = _start_profiler(profile, n, proc.pid, seconds) if profile else None
        cpu0, own0, t0, c0 = cpu_seconds(proc.pid), self_cpu_seconds(), time.monotonic_ns(), core_times()
        main0 = main_thread_cpu_seconds(proc.pid)
        frames0, skipped0 = sum(c.generated for c in gen.calls), gen.streamer.skipped
        gen.streamer.record_lag = True
        time.sleep(seconds)
        gen.streamer.record_lag = False
        frames1, skipped1 = sum(c.generated for c in gen.calls), gen.streamer.skipped
        cpu1, own1, t1, c1 = cpu_seconds(proc.pid), self_cpu_seconds(), time.monotonic_ns(), core_times()
        main1 = main_thread_cpu_seconds(proc.pid)
        result.cores = core_busy(c0, c1)
        if spy is not None:
            spy.wait()
        result.rss, result.rss_peak = rss_mib(proc.pid)
        wall = (t1 - t0) / 1e9
        result.daemon_cpu = 100 * (cpu1 - cpu0) / wall
        result.loop_cpu = 100 * (main1 - main0) / wall
        result.loadgen_cpu = 100 * (own1 - own0) / wall
        lags = gen.streamer.lags
        result.lag = (percentile(lags, 99) * 1e3, max(lags, default=0.0) * 1e3)
        result.backpressure = gen.streamer.backpressure
        result.offered = (frames1 - frames0) / wall / max(1, result.established)
        result.skipped = skipped1 - skipped0
        os.kill(proc.pid, signal.SIGUSR1)  # after the window: time one full GC with every call live
        time.sleep(1.0)
        asyncio.run(gen.hang_up_all())
        gen.streamer.running = False
        _wait_sealed(data_dir, result.established, timeout=120)
    finally:
        stop_daemon(proc, f"N={n}")
    read_probes(probes, result, t0, t1)
    result.failures = dict(gen.failures)
    verify(data_dir, identity, gen.calls, result, db_url)
    return result


def spawn_daemon(
    config: Path, probes: Path, loop_name: str, cores: set[int]
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``bench.daemon_proc`` on ``config``, pinned to ``cores``; returns once it says READY."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, RECORDERD_EVENT_LOOP=loop_name, PYTHONPATH=path)
    cmd = [sys.executable, "-m", "bench.daemon_proc", str(config), "--log", str(config.with_suffix(".log")),
           "--probes", str(probes)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, env=env, cwd=REPO, preexec_fn=lambda: pin(cores) and None
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the daemon on {config} exited before READY (see {config.with_suffix('.log')})"
            )
        ready: dict[str, Any] = json.loads(line)
    except BaseException:
        stop_daemon(proc, str(config))
        raise
    return proc, ready


def stop_daemon(proc: subprocess.Popen[bytes], what: str) -> None:
    """SIGTERM as systemd sends it; a daemon still there after 60 s is killed and reported."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:  # never leave it running
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{what}: the daemon did not exit within 60 s of SIGTERM (killed)") from None


def read_probes(probes: Path, result: Result, t0: int, t1: int) -> None:
    """The daemon's timing probes (written when it stopped), within the window [t0, t1] (ns)."""
    samples: dict[str, list[list[int]]] = json.loads(probes.read_text())
    result.arrival, result.samples = _stats(samples["arrival"], t0, t1)
    result.handoff, _ = _stats(samples["handoff"], t0, t1)
    result.durable, _ = _stats(samples["durable"], t0, t1)
    result.write, _ = _stats(samples.get("write", []), t0, t1)
    gc2 = [d / 1e6 for t, d, *_ in samples.get("gc2", []) if t0 <= t <= t1]
    result.gc = (len(gc2), max(gc2, default=0.0))
    forced = samples.get("forced_gc", [])
    if forced:
        result.forced_gc = (forced[-1][1] / 1e6, forced[-1][2])


def _start_profiler(out_dir: Path, n: int, pid: int, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy (sampling, non-blocking: it never pauses the daemon) over the window, collapsed stacks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("py-spy")
    out = out_dir / f"calls-{n}.txt"
    cmd = [str(exe), "record", "--nonblocking", "--threads", "--rate", "100", "--duration",
           str(int(seconds)), "--format", "raw", "--output", str(out), "--pid", str(pid)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_sealed(data_dir: Path, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = list(data_dir.glob("recordings/*/*/*/*.part"))
        sealed = list(data_dir.glob("recordings/*/*/*/*.age"))
        if not parts and len(sealed) >= expected:
            return
        time.sleep(0.2)


def _fmt(t: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.1f}" for v in t)


def report(results: list[Result], seconds: float, settle: float = SETTLE_S, backend: str = "") -> str:
    rows = []
    for r in results:
        per_call = (r.rss - r.rss_idle) * 1024 / r.calls if r.calls else 0.0
        rows.append([
            r.calls, f"{r.established}", f"{r.generated:,}", f"{r.stored:,}", f"**{r.lost}**",
            f"{r.daemon_cpu:.0f} % ({r.loop_cpu:.0f} %)", _fmt(r.us_per_frame),
            _fmt(r.arrival), _fmt(r.handoff), _fmt(r.durable),
            f"{r.rss:.0f} ({per_call:.0f} KiB/call)",
            f"{r.gc[0]} / {r.gc[1]:.0f} / {r.forced_gc[0]:.0f} ({r.forced_gc[1] / 1000:.0f}k objects)",
            f"{r.offered:.1f} fps, {r.loadgen_cpu:.0f} %, {_fmt(r.lag)}",
            "yes" if r.keeps_up else ("**no**" if r.valid else "n/a: generator starved"),
        ])  # fmt: skip
    best = max((r.calls for r in results if r.keeps_up), default=0)
    notes = []
    for r in results:
        bad = dict(r.failures)
        if r.unreadable_files or r.misordered_files or bad or r.completed_rows != r.established:
            notes.append(
                f"- N={r.calls}: {r.unreadable_files} unreadable, {r.misordered_files} misordered files; "
                f"{r.completed_rows} sealed rows; generator failures {bad or 'none'}"
            )
        if r.silence_frames:
            notes.append(
                f"- N={r.calls}: {r.silence_frames:,} silent frames stored by the real timeline (from"
                " each call's last frame to its hang-up being handled, and wherever no frame came for"
                " 250 ms or more)"
            )
        if r.dropped_at_source:
            notes.append(
                f"- N={r.calls}: {r.dropped_at_source} frames dropped at the source (1 s queue full)"
            )
    body = table(
        ["calls", "set up", "frames generated", "frames stored", "lost", "daemon CPU (event loop)",
         "CPU µs/frame all / loop", "arrival ms p50/p99/max", "sent→disk thread ms p50/p99/max",
         "sent→fsynced ms p50/p99/max", "daemon RSS MiB", "full GCs: count / longest ms / forced ms",
         "offered per call, loadgen CPU, lag ms p99/max", "keeps up"],
        rows,
    )  # fmt: skip
    return (
        (backend + "\n\n" if backend else "")
        + f"Event loop: `{results[0].loop if results else '?'}`. Steady-state window {seconds:g} s per row, "
        f"starting {settle:g} s after the last call was set up.\n\n{body}\n\n"
        f"**Largest N that keeps up: {best}** (zero lost frames, every call set up and streaming at "
        f"50 frames/s, daemon CPU < 95 % of its core, arrival p99 < {ARRIVAL_P99_LIMIT_MS:g} ms, "
        f"sent→fsynced p99 < {DURABLE_P99_LIMIT_MS:g} ms).\n"
        + ("\n" + "\n".join(notes) + "\n" if notes else "")
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", default="100,500,1000,2000", help="comma-separated N to run")
    p.add_argument("--seconds", type=float, default=30.0, help="steady-state window per N")
    p.add_argument("--rate", type=float, default=200.0, help="calls set up per second")
    p.add_argument("--settle", type=float, default=SETTLE_S, help="seconds between set-up and window")
    p.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    p.add_argument("--loop", default=os.environ.get("RECORDERD_EVENT_LOOP", "asyncio"),
                   choices=["asyncio", "uvloop"], help="the daemon's event loop")  # fmt: skip
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--profile", help="directory for py-spy collapsed stacks of the daemon, one per N")
    p.add_argument(
        "--section",
        help="the block of the doc to (re)write (default: concurrent_calls, "
        "concurrent_calls_postgresql on PostgreSQL)",
    )
    add_arguments(p)
    p.add_argument("--note", default="", help="a line to put above the table (e.g. which tree ran)")
    args = p.parse_args(argv)
    load = loadavg()
    pin({LOADGEN_CORE})
    sys.setswitchinterval(0.0005)  # the media thread must not wait 5 ms for the GIL during set-up
    results = []
    # After pin(): a PostgreSQL server started here inherits the load generator's core.
    with tempfile.TemporaryDirectory(prefix="bench-calls-", dir=args.dir) as tmp, catalogue(args) as db:
        backend = db.describe(DAEMON_CORE, LOADGEN_CORE)
        print(backend, flush=True)
        for n in (int(x) for x in args.calls.split(",")):
            profile = Path(args.profile) if args.profile else None
            r = run_one(n, args.seconds, args.rate, Path(tmp), args.loop, profile, args.settle, db)
            results.append(r)
            print(
                f"N={n} on {r.backend}: lost {r.lost} of {r.generated}, daemon CPU {r.daemon_cpu:.0f} % "
                f"(loop {r.loop_cpu:.0f} %), µs/frame {_fmt(r.us_per_frame)}, "
                f"arrival p50/p99/max {_fmt(r.arrival)} ms, to disk thread {_fmt(r.handoff)} ms, "
                f"durable {_fmt(r.durable)} ms (in the disk thread {_fmt(r.write)} ms), "
                f"RSS {r.rss:.0f} MiB, full GCs {r.gc[0]} (max {r.gc[1]:.0f} ms), "
                f"loadgen CPU {r.loadgen_cpu:.0f} % lag {_fmt(r.lag)} ms "
                f"offered {r.offered:.1f} fps/call, skipped {r.skipped}, "
                f"cores busy {' / '.join(f'{c:.0f} %' for c in r.cores)}, "
                f"keeps up: {r.keeps_up}",
                flush=True,
            )
    if args.json:
        print(json.dumps([r.__dict__ | {"lost": r.lost, "keeps_up": r.keeps_up} for r in results]))
    if args.doc != "-":
        text = (args.note + "\n\n" if args.note else "") + report(results, args.seconds, args.settle, backend)
        section = args.section or (
            "concurrent_calls" if db.name == "sqlite" else f"concurrent_calls_{db.name}"
        )
        write_section(Section(section, text, load), Path(args.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
