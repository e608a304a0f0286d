"""The daemon and the PBX simulator, both real, on loopback, with real files and SQLite."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from announce import builtin_prompt
from pbx.simulator import CallResult, PbxSimulator, SimCall
from recorderd.config import Config, parse_config
from recorderd.daemon import Daemon, Endpoints
from storage.age import generate_identity
from storage.db import open_database
from storage.models import Call

SPEED = 25.0
AMI_SECRET = "e2e-secret"

BASE_CONFIG = """
timezone = "Asia/Tokyo"
data_dir = "{data_dir}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
advertise = "{advertise}"
first_frame_timeout_s = 2.0
[ami]
enabled = {ami_enabled}
host = "127.0.0.1"
port = {ami_port}
secret = "{ami_secret}"
ping_interval_s = 5.0
[encryption]
recipients = ["{recipient}"]
[announcements.ja]
sound = "recorderd/announce-ja"
[defaults]
inbound = "exclude"
outbound = "exclude"
[[lines]]
name = "general"
numbers = ["06-6858-5050", "06-6858-2525"]
announcement = "ja"
[[lines]]
name = "kokoro"
numbers = ["06-6858-1111"]
action = "exclude"
[[lines]]
name = "staff-out"
direction = "outbound"
numbers = ["201"]
"""


@dataclass
class Harness:
    root: Path
    config: Config
    identity: str
    sim: PbxSimulator
    daemon: Daemon
    endpoints: Endpoints
    results: list[CallResult] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    async def call(self, call: SimCall) -> CallResult:
        result = await self.sim.run_call(call)
        assert self.daemon.manager is not None
        await self.daemon.manager.drain()
        return result

    def rows(self) -> list[Call]:
        _e, sessions = open_database(self.config.db_url, migrate=False)
        with sessions() as s:
            return list(s.query(Call).order_by(Call.started_at))

    def row(self, call_id: str) -> Call:
        matches = [r for r in self.rows() if r.id.replace("-", "") == call_id.replace("-", "")]
        assert len(matches) == 1, f"no single row for {call_id}"
        return matches[0]

    def files(self) -> list[Path]:
        return sorted(p for p in self.data_dir.rglob("*") if p.is_file())


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[MakeHarness]:
    """Build a harness; keyword overrides: advertise, ami_enabled, ami_port, with_prompt."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None], PbxSimulator]] = []

    async def build(*, advertise: str = "", ami_enabled: bool = True, ami_port: int | None = None,
                    with_prompt: bool = True) -> Harness:  # fmt: skip
        root = tmp_path / f"h{len(stops)}"
        sounds = root / "sounds"
        (sounds / "recorderd").mkdir(parents=True)
        if with_prompt:
            shutil.copyfile(builtin_prompt("ja"), sounds / "recorderd" / "announce-ja.wav")
        identity, recipient = generate_identity()
        sim = PbxSimulator(
            agi_host="127.0.0.1", agi_port=0, ami_secret=AMI_SECRET, sounds_dir=sounds, speed=SPEED
        )
        await sim.start()
        text = BASE_CONFIG.format(
            data_dir=root / "data",
            advertise=advertise,
            ami_enabled="true" if ami_enabled else "false",
            ami_port=ami_port if ami_port is not None else sim.ami_port,
            ami_secret=AMI_SECRET,
            recipient=recipient,
        )
        config = parse_config(text)
        ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
        daemon = Daemon(config, on_ready=ready.set_result)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        endpoints = await asyncio.wait_for(asyncio.shield(ready), 10)
        sim.set_agi_target("127.0.0.1", endpoints.agi_port)
        stops.append((stop, task, sim))
        if ami_enabled and ami_port is None:
            await asyncio.wait_for(daemon.ami_up.wait(), 10)
        return Harness(root, config, identity, sim, daemon, endpoints)

    yield build
    for stop, task, sim in stops:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sim.close()
