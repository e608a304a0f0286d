"""The daemon and the PBX simulator, both real, on loopback, with real files and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pbx.simulator import CallResult, PbxSimulator, SimCall
from recorderd.config import Config, parse_config
from recorderd.daemon.lifecycle import Daemon, Endpoints
from storage.age import generate_identity
from storage.db import open_database
from storage.models import Call
from support import backend
from support.running import Running, start_daemon, start_simulator

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
    """Build a harness; keyword overrides: advertise, ami_enabled, ami_port, with_prompt, channels."""
    started: list[tuple[Running | None, PbxSimulator]] = []

    async def build(*, advertise: str = "", ami_enabled: bool = True, ami_port: int | None = None,
                    with_prompt: bool = True, real_time: bool = False,
                    channels: str = "mono") -> Harness:  # fmt: skip
        """``real_time``: the simulator at speed 1 and recordings on the real clock (production's
        timeline); otherwise SPEED times faster, frames stored end to end."""
        root = tmp_path / f"h{len(started)}"
        sim = await start_simulator(root, AMI_SECRET, 1.0 if real_time else SPEED, with_prompt=with_prompt)
        started.append((None, sim))
        identity, recipient = generate_identity()
        text = BASE_CONFIG.format(
            data_dir=root / "data",
            advertise=advertise,
            ami_enabled="true" if ami_enabled else "false",
            ami_port=ami_port if ami_port is not None else sim.ami_port,
            ami_secret=AMI_SECRET,
            recipient=recipient,
        )
        config = parse_config(backend.config_line() + f'channels = "{channels}"\n' + text)
        run = await start_daemon(
            config, sim, wait_ami=ami_enabled and ami_port is None, real_timeline=real_time
        )
        started[-1] = (run, sim)
        return Harness(root, config, identity, sim, run.daemon, run.endpoints)

    yield build
    for run, sim in started:
        if run is not None:
            await run.close()
        await sim.close()
