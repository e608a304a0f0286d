"""The daemon as a real process: SIGKILL mid-call, restart recovery, SIGTERM with calls in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pbx.simulator import PbxSimulator, SimCall
from recorderd.cli.demo import speech
from recorderd.records.audio import decrypt_recording
from storage.age import generate_identity
from storage.audio import parse_au
from storage.db import open_database
from storage.models import Call
from storage.vault import salvage, sha256_file

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
CALLER, AGENT = speech("caller"), speech("agent")
CHUNK = 65536 + 16


class DaemonProcess:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, object] = {}
        self.lines: list[str] = []

    async def start(self) -> dict[str, object]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorderd.cli", "run", "--config", str(self.config), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        )  # fmt: skip
        _STARTED.append(self)
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, "daemon exited before ready:\n" + "\n".join(self.lines)
                line = raw.decode()
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == "ready":
                        self.ready = record
                        return record

    async def expect_event(self, name: str, within: float = 30) -> None:
        """Read the daemon's log until a record of event ``name`` (or find it among those read)."""

        def seen(line: str) -> bool:
            with contextlib.suppress(ValueError):
                return bool(json.loads(line).get("event") == name)
            return False

        if any(seen(line) for line in self.lines):
            return
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"daemon exited before {name}:\n" + "\n".join(self.lines)
                self.lines.append(raw.decode())
                if seen(self.lines[-1]):
                    return

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        assert self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), 30)
        self.lines += rest.decode().splitlines()
        return await asyncio.wait_for(self.proc.wait(), 30)


def config_text(root: Path, ami_port: int, recipient: str) -> str:
    return f"""
data_dir = "{root / "data"}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
port = {ami_port}
secret = "p-secret"
[encryption]
recipients = ["{recipient}"]
[defaults]
inbound = "record"
"""


_STARTED: list[DaemonProcess] = []


@pytest.fixture(autouse=True)
async def _kill_leftover_daemons() -> AsyncIterator[None]:
    """A failed assertion must not leave a daemon process running on the machine."""
    yield
    while _STARTED:
        d = _STARTED.pop()
        if d.proc is not None and d.proc.returncode is None:
            d.proc.kill()
            await d.proc.wait()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[PbxSimulator, DaemonProcess, str]]:
    identity, recipient = generate_identity()
    # Real time: the daemon process keeps the real timeline (a simulator running faster than the
    # clock would see its extra frames dropped as ahead of it).
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret="p-secret", speed=1.0)
    await sim.start()
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(config_text(tmp_path, sim.ami_port, recipient))
    daemon = DaemonProcess(cfg)
    ready = await daemon.start()
    sim.set_agi_target("127.0.0.1", int(str(ready["agi_port"])))
    yield sim, daemon, identity
    if daemon.proc is not None and daemon.proc.returncode is None:
        daemon.proc.kill()
        await daemon.proc.wait()
    await sim.close()


def rows(data_dir: Path) -> list[Call]:
    _e, sessions = open_database(f"sqlite:///{data_dir / 'recorderd.db'}", migrate=False)
    with sessions() as s:
        return list(s.query(Call))


async def wait_for_parts(data_dir: Path, min_bytes: int, count: int = 1) -> list[Path]:
    """The daemon is another process: watch its files grow (bounded), there is no event to await."""
    async with asyncio.timeout(30):
        while True:
            parts = [p for p in data_dir.rglob("*.age.part") if p.stat().st_size >= min_bytes]
            if len(parts) >= count:
                return parts
            await asyncio.sleep(0.05)


async def test_sigkill_mid_call_leaves_a_salvageable_part_and_restart_marks_it(
    setup: tuple[PbxSimulator, DaemonProcess, str], tmp_path: Path
) -> None:
    sim, daemon, identity = setup
    data_dir = tmp_path / "data"
    call = asyncio.create_task(sim.run_call(SimCall(caller="0311112222", dialled="0668585050",
                                                    caller_audio=CALLER, agent_audio=AGENT)))  # fmt: skip
    [part] = await wait_for_parts(data_dir, 200 + 2 * CHUNK)
    assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    with contextlib.suppress(Exception):
        await asyncio.wait_for(call, 30)

    s = salvage(part, [identity])
    assert not s.complete and s.chunks >= 2
    rate, channels, samples = parse_au(s.data)
    assert (rate, channels) == (8000, 1) and len(samples) >= 2 * 65536 - 100
    # No plaintext anywhere: neither byte order of a stretch of the caller's speech.
    probe_le = CALLER[8000:8064]
    probe_be = bytes(b for pair in zip(probe_le[1::2], probe_le[::2], strict=True) for b in pair)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            body = f.read_bytes()
            assert probe_le not in body and probe_be not in body, f

    [row] = rows(data_dir)
    assert row.status == "recording"  # as the killed daemon left it
    restarted = DaemonProcess(daemon.config)
    ready = await restarted.start()
    assert ready["recovered_rows"] == 1
    [row] = rows(data_dir)
    assert row.status == "incomplete" and row.failure_reason == "daemon stopped during recording"
    assert row.audio_path is not None and row.audio_path.endswith(".age.part")
    assert row.audio_sha256 == sha256_file(part)
    assert await restarted.stop() == 0


async def test_sigterm_seals_every_call_in_flight(
    setup: tuple[PbxSimulator, DaemonProcess, str], tmp_path: Path
) -> None:
    sim, daemon, identity = setup
    data_dir = tmp_path / "data"
    calls = [asyncio.create_task(sim.run_call(SimCall(caller=f"03111100{i:02d}", dialled="0668585050",
                                                      caller_audio=CALLER, agent_audio=AGENT)))
             for i in range(3)]  # fmt: skip
    await wait_for_parts(data_dir, 200 + CHUNK, count=3)  # each has a chunk on disk
    assert await daemon.stop(signal.SIGTERM) == 0
    await asyncio.gather(*calls, return_exceptions=True)
    assert any('"sealed_recordings": 3' in line for line in daemon.lines), daemon.lines[-5:]
    found = rows(data_dir)
    assert len(found) == 3
    for row in found:
        assert (row.status, row.failure_reason) == ("incomplete", "shutdown")
        assert row.audio_path is not None and row.audio_path.endswith(".age")
        dec = decrypt_recording(data_dir / row.audio_path, [identity])
        assert dec.complete and len(dec.au) > 1000  # sealed: a valid age file with its final chunk
    assert not list(data_dir.rglob("*.part"))
