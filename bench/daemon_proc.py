"""The daemon under test, in its own process: recorderd's ``Daemon``, started the way ``recorderd run``
starts it (same configuration loader, logging set-up and event loop), plus timing probes.

    python -m bench.daemon_proc CONFIG --log FILE --probes FILE.json

Prints one JSON line ``{"ready": ..., "agi_port": ..., "audiosocket_port": ...}`` on stdout when
the daemon is READY; SIGTERM stops it the way systemd does, then the probes are written.

The load generator writes its send time (CLOCK_MONOTONIC ns, one clock for all processes) into
the first 8 bytes of every frame's payload, so the daemon knows how old each frame is:

* ``arrival``: sent by the PBX → handed to the call's ``Recording`` by the event loop, for every
  frame of one call in ten (the other calls pay nothing);
* ``handoff``: for the frame that completes a 64 KiB block, sent → the disk thread starts on it;
* ``durable``: for that same frame, sent → its age chunk is encrypted, written and fsynced.

Also timed: every full garbage collection, and one forced on SIGUSR1 (with the calls live).
Development knobs, never used for the published figures: ``BENCH_AUDIOSOCKET`` (server options),
``BENCH_SWITCH_INTERVAL`` (``sys.setswitchinterval``), ``BENCH_DISK_THREADS`` (disk pool size).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pbx.audiosocket import server as server_mod
from recorderd import logs
from recorderd.config import load_config
from recorderd.daemon import diskpool as diskpool_mod
from recorderd.daemon import lifecycle as daemon_mod
from recorderd.daemon import recording
from recorderd.daemon.lifecycle import Daemon, Endpoints

try:
    from recorderd.cli.daemon import freeze_startup_objects, reloader, run_event_loop
    from recorderd.daemon.sdnotify import Notifier
except ImportError:  # a tree from before issue 6 (baseline runs): asyncio's loop, no freeze or reload

    def freeze_startup_objects() -> None:
        pass

    run_event_loop = asyncio.run
    reloader = None  # type: ignore[assignment]

FRAME = 320
SAMPLES: dict[str, list[tuple[int, ...]]] = {
    "arrival": [],
    "handoff": [],
    "durable": [],
    "write": [],
    "gc2": [],
    "forced_gc": [],
}


def install_gc_probe() -> None:
    """Full (generation 2) collections stop every thread, the event loop included: time each."""
    started = 0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if info.get("generation") != 2:
            return
        now = time.monotonic_ns()
        if phase == "start":
            started = now
        elif started:
            SAMPLES["gc2"].append((now, now - started))

    gc.callbacks.append(on_gc)


def _sent_ns(block: bytes | bytearray | memoryview) -> int | None:
    if len(block) < FRAME or len(block) % FRAME:
        return None  # not whole generator frames (the AU header, a short tail)
    sent = int.from_bytes(block[-FRAME : -FRAME + 8], "little")
    return sent or None  # 0: a silent frame the real timeline added (the generator fell behind)


def install_overrides() -> None:
    """Development only: ``BENCH_AUDIOSOCKET="coalesce_audio=1,read_low_water=3230"`` overrides the
    daemon's AudioSocketServer options, to compare settings without editing the daemon."""
    spec = os.environ.get("BENCH_AUDIOSOCKET")
    if not spec:
        return
    opts = {k: int(v) for k, v in (kv.split("=") for kv in spec.split(","))}
    real = server_mod.AudioSocketServer

    def make(on_connect: Any, **kwargs: Any) -> Any:
        return real(on_connect, **(kwargs | opts))

    setattr(daemon_mod, "AudioSocketServer", make)  # noqa: B010 - the daemon's own name for it


def install_probes(every: int = 10) -> None:
    rec = recording.Recording
    init, write = rec.__init__, rec._write
    count = 0

    def probed_init(self: recording.Recording, *args: Any, **kwargs: Any) -> None:
        nonlocal count
        init(self, *args, **kwargs)
        count += 1
        if count % every == 0:  # one call in ``every``: every frame's delay, oldest of a batch too
            received = self.audio_received

            def probed_received(payload: bytes) -> None:
                now = time.monotonic_ns()
                if len(payload) % FRAME == 0:
                    arrival = SAMPLES["arrival"]
                    for i in range(0, len(payload), FRAME):
                        arrival.append((now, now - int.from_bytes(payload[i : i + 8], "little")))
                received(payload)

            self.audio_received = probed_received  # type: ignore[method-assign]

    def probed_write(self: recording.Recording, pcm_le: bytes | bytearray) -> None:
        start = time.monotonic_ns()
        write(self, pcm_le)
        end = time.monotonic_ns()
        sent = _sent_ns(pcm_le)
        if sent is not None and len(pcm_le) >= recording.FLUSH_BYTES:
            SAMPLES["handoff"].append((start, start - sent))
            SAMPLES["durable"].append((end, end - sent))
            SAMPLES["write"].append((end, end - start))

    rec.__init__ = probed_init  # type: ignore[method-assign]
    rec._write = probed_write  # type: ignore[method-assign]


async def serve(config_path: Path) -> None:
    config = load_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def full_collection() -> None:  # SIGUSR1: how long a full GC stops the loop with the calls live
        t0 = time.monotonic_ns()
        gc.collect()
        t1 = time.monotonic_ns()
        SAMPLES["forced_gc"].append((t1, t1 - t0, len(gc.get_objects())))

    loop.add_signal_handler(signal.SIGUSR1, full_collection)

    def ready(endpoints: Endpoints) -> None:
        freeze_startup_objects()  # as `recorderd run` does once READY
        line = {
            "ready": time.monotonic_ns(),
            "agi_port": endpoints.agi_port,
            "audiosocket_port": endpoints.audiosocket_port,
            "loop": type(loop).__module__,
        }
        print(json.dumps(line), flush=True)

    daemon = Daemon(config, on_ready=ready)
    if reloader is not None:  # SIGHUP as `recorderd run` has it (bench.reaper_pass applies a policy so)
        loop.add_signal_handler(signal.SIGHUP, reloader(config_path, daemon, Notifier.from_environment()))
    await daemon.run(stop)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--log", required=True)
    p.add_argument("--probes", required=True)
    args = p.parse_args()
    with open(args.log, "a", encoding="utf-8") as log_stream:
        logs.configure(json=True, stream=log_stream)
        install_probes()
        install_gc_probe()
        if os.environ.get("BENCH_SWITCH_INTERVAL"):  # development only
            sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
        if os.environ.get("BENCH_DISK_THREADS"):  # development only
            real_pool = diskpool_mod.DiskPool
            n = int(os.environ["BENCH_DISK_THREADS"])
            setattr(daemon_mod, "DiskPool", lambda threads=4, **kw: real_pool(n, **kw))  # noqa: B010
        install_overrides()
        run_event_loop(serve(Path(args.config)))
    out: dict[str, Any] = {k: v for k, v in SAMPLES.items()}
    Path(args.probes).write_text(json.dumps(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
