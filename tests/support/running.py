"""The daemon in-process beside the PBX simulator, wired together the way Asterisk and recorderd are.

The daemon needs the PBX's AMI port and the PBX needs the daemon's AGI port: the simulator starts
first (its AMI listening), the daemon is configured with that port, and once it has bound its
listeners the simulator is pointed at its AGI port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from announce import builtin_prompt
from pbx.simulator import PbxSimulator
from recorderd.config import Config
from recorderd.daemon.lifecycle import Daemon, Endpoints


async def start_simulator(
    root: Path, secret: str, speed: float, *, with_prompt: bool = True, ami_read: str = "all"
) -> PbxSimulator:
    """A started simulator whose sounds directory holds the built-in Japanese prompt (unless not)."""
    sounds = root / "sounds"
    (sounds / "recorderd").mkdir(parents=True)
    if with_prompt:
        shutil.copyfile(builtin_prompt("ja"), sounds / "recorderd" / "announce-ja.wav")
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret=secret, sounds_dir=sounds, speed=speed,
                       ami_read=ami_read)  # fmt: skip
    await sim.start()
    return sim


@dataclass
class Running:
    daemon: Daemon
    endpoints: Endpoints
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def start_daemon(
    config: Config, sim: PbxSimulator, *, wait_ami: bool = True, real_timeline: bool = False
) -> Running:
    """Run ``Daemon(config)`` until ``close()``; READY within 10 s, and the AMI link up if asked.

    ``real_timeline``: recordings follow the real clock as in production (the simulator must then
    run at speed 1). Otherwise the simulator runs faster than real time and its frames are kept
    end to end, so tests can compare the stored audio with what it streamed byte for byte.
    """
    if real_timeline and sim.speed != 1:
        raise ValueError("a real timeline needs the simulator at speed 1")
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    daemon = Daemon(config, on_ready=ready.set_result, media_clock=time.monotonic if real_timeline else None)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        endpoints = await asyncio.wait_for(asyncio.shield(ready), 10)
        sim.set_agi_target("127.0.0.1", endpoints.agi_port)
        if wait_ami:
            await asyncio.wait_for(daemon.ami_up.wait(), 10)
    except BaseException:
        stop.set()  # never leave a daemon running behind a failed start
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 30)
        raise
    return Running(daemon, endpoints, stop, task)
