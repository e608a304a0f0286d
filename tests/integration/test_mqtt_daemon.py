"""The daemon with a real broker that goes away: recording never notices; MQTT catches up after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pbx.simulator import PbxSimulator, SimCall
from recorderd.cli.demo import speech
from recorderd.config import parse_config
from recorderd.daemon.lifecycle import Daemon
from storage.age import generate_identity
from storage.db import open_database
from storage.models import Call
from support.mosquitto import Mosquitto
from support.mqttsub import subscribe
from support.running import start_daemon, start_simulator

pytestmark = pytest.mark.timeout(60)
PREFIX = "recorderd/mqtt-daemon"
SECRET = "m-secret"
AUDIO = speech("caller")[: 8000 * 2 * 2]


@pytest.fixture
async def running(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[tuple[Daemon, PbxSimulator]]:
    _identity, recipient = generate_identity()
    sim = await start_simulator(tmp_path, SECRET, 25.0, with_prompt=False)
    config = parse_config(f"""
data_dir = "{tmp_path / "data"}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
port = {sim.ami_port}
secret = "{SECRET}"
ping_interval_s = 1.0
[encryption]
recipients = ["{recipient}"]
[defaults]
inbound = "record"
[mqtt]
host = "{mosquitto.host}"
port = {mosquitto.port}
topic_prefix = "{PREFIX}"
reconnect_max_s = 0.5
[monitoring]
disk_low_free_mb = 0
""")
    run = await start_daemon(config, sim)
    yield run.daemon, sim
    await run.close()
    await sim.close()


def statuses(daemon: Daemon) -> list[str]:
    _e, sessions = open_database(daemon.config.db_url, migrate=False)
    with sessions() as s:
        return [r.status for r in s.query(Call).order_by(Call.started_at)]


async def test_broker_killed_mid_run_recording_goes_on_and_mqtt_catches_up(
    running: tuple[Daemon, PbxSimulator], mosquitto: Mosquitto
) -> None:
    daemon, sim = running
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as sub:
        await sub.expect(f"{PREFIX}/status", lambda b: b["state"] == "online")
        first = asyncio.create_task(sim.run_call(SimCall(caller="0311112222", dialled="0668585050",
                                                         caller_audio=AUDIO, agent_audio=AUDIO)))  # fmt: skip
        await sub.expect(f"{PREFIX}/events/call_started")
        mosquitto.stop()  # SIGKILL, mid-call
        await first
        # While the broker is gone: another whole call, and the PBX restarting (an alert).
        await sim.run_call(SimCall(caller="0322223333", dialled="0668585050", caller_audio=AUDIO))
        assert daemon.manager is not None
        await daemon.manager.drain()
        assert statuses(daemon) == ["completed", "completed"]
        assert daemon.events.queued >= 3 and daemon.events.dropped == 0
        link_back: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def watch(record: dict[str, object]) -> None:
            back = record["kind"] == "pbx_link_down" and record.get("state") == "resolved"
            if back and not link_back.done():
                link_back.set_result(None)

        daemon.events.listeners.append(watch)
        await sim.shutdown()
        await sim.start(ami_port=sim.ami_port)
        await asyncio.wait_for(link_back, 15)  # down (raised), back (resolved), all while MQTT is away

    mosquitto.start()
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as sub:
        await sub.expect(f"{PREFIX}/status", lambda b: b["state"] == "online", within=15)
        ended = await sub.expect(f"{PREFIX}/events/call_ended", lambda b: b["remote"] == "032*****33")
        assert ended.body["status"] == "completed"
        await sub.expect(f"{PREFIX}/alerts/pbx_link_down", lambda b: b["state"] == "resolved")
        kinds = [m.body["state"] for m in sub.messages if m.topic == f"{PREFIX}/alerts/pbx_link_down"]
        assert kinds == ["raised", "resolved"]  # what happened while the broker was away, in order
    assert daemon.events.connected and daemon.events.dropped == 0
