"""Fault injection: the daemon in-process with the PBX simulator, and a handle on what can break.

Same shape as the e2e harness (tests/e2e/conftest.py), with the knobs faults need: extra config,
a chosen data directory (a small tmpfs), and the AMI or AudioSocket path through a proxy that can
reset connections (tests/support/proxy.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.conftest import AMI_SECRET, BASE_CONFIG, SPEED, Harness
from pbx.simulator import PbxSimulator
from recorderd.config import parse_config
from storage.age import generate_identity
from support import backend
from support.proxy import TcpProxy
from support.running import Running, start_daemon, start_simulator

# Faults that need room for a whole recording even on a tiny volume: never refuse for disk space
# here (that path is tests/e2e/test_reaper_live.py), let the write itself fail.
NO_DISK_GUARD = "\n[retention]\ndisk_refuse_free_mb = 0\ndisk_warn_free_percent = 0\n"


@dataclass
class Faulty:
    h: Harness
    ami_proxy: TcpProxy | None  # between the daemon and the simulator's AMI, when asked for

    async def spy_proxy(self) -> TcpProxy:
        """Route the next spies through a proxy: Asterisk dials what the daemon advertises."""
        proxy = TcpProxy("127.0.0.1", self.h.endpoints.audiosocket_port)
        await proxy.start()
        assert self.h.daemon.manager is not None
        self.h.daemon.manager.advertise = proxy.address
        return proxy


FaultHarness = Callable[..., Awaitable[Faulty]]


@pytest.fixture
async def fault_harness(tmp_path: Path) -> AsyncIterator[FaultHarness]:
    """build(extra=TOML, data_dir=Path, ami_proxy=bool, real_time=bool) -> Faulty."""
    started: list[tuple[Running | None, PbxSimulator]] = []
    proxies: list[TcpProxy] = []

    async def build(*, extra: str = "", data_dir: Path | None = None, ami_proxy: bool = False,
                    real_time: bool = False) -> Faulty:  # fmt: skip
        """``real_time``: simulator at speed 1, recordings on the real clock (see e2e/conftest.py)."""
        root = tmp_path / f"f{len(started)}"
        sim = await start_simulator(root, AMI_SECRET, 1.0 if real_time else SPEED)
        started.append((None, sim))
        identity, recipient = generate_identity()
        ami_port, proxy = sim.ami_port, None
        if ami_proxy:
            proxy = TcpProxy("127.0.0.1", sim.ami_port)
            await proxy.start()
            proxies.append(proxy)
            ami_port = proxy.port
        text = BASE_CONFIG.format(
            data_dir=data_dir or root / "data",
            advertise="",
            ami_enabled="true",
            ami_port=ami_port,
            ami_secret=AMI_SECRET,
            recipient=recipient,
        )
        config = parse_config(backend.config_line() + text + NO_DISK_GUARD + extra)
        run = await start_daemon(config, sim, real_timeline=real_time)
        started[-1] = (run, sim)
        return Faulty(Harness(root, config, identity, sim, run.daemon, run.endpoints), proxy)

    yield build
    for run, sim in started:
        if run is not None:
            await run.close()
        await sim.close()
    for proxy in proxies:
        await proxy.close()
