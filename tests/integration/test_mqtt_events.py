"""The events publisher against a real Mosquitto: retained status, events, alerts, outages."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from recorderd.config import MqttConfig
from recorderd.daemon.events import Events
from support.mosquitto import Mosquitto
from support.mqttsub import subscribe

pytestmark = pytest.mark.timeout(60)
PREFIX = "recorderd/test-site"


def cfg(broker: Mosquitto, **kw: object) -> MqttConfig:
    return MqttConfig.model_validate(
        {
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": PREFIX,
            "reconnect_max_s": 0.5,
            "client_id": f"recorderd-test-{time.monotonic_ns()}",
            **kw,
        }
    )


@pytest.fixture
async def events(mosquitto: Mosquitto) -> AsyncIterator[Events]:
    ev = Events(cfg(mosquitto), first_backoff_s=0.1)
    task = asyncio.create_task(ev.run())
    yield ev
    await ev.aclose()
    task.cancel()


def online(b: dict[str, object]) -> bool:
    return b.get("state") == "online"


async def test_status_events_alerts_and_a_clean_stop(mosquitto: Mosquitto, events: Events) -> None:
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as sub:
        status = await sub.expect(f"{PREFIX}/status", online)
        assert status.body["pid"]
        events.event("call_started", call_id="c1", direction="inbound", line="general",
                     local="0668585050", remote="0311112222")  # fmt: skip
        started = await sub.expect(f"{PREFIX}/events/call_started")
        assert started.body["local"] == "066*****50" and started.body["remote"] == "031*****22"
        assert not started.retain and started.body["ts"]
        events.alert("pbx_link_down", detail="connection refused")
        raised = await sub.expect(f"{PREFIX}/alerts/pbx_link_down")
        assert raised.body["state"] == "raised" and raised.body["detail"] == "connection refused"
        events.resolve("pbx_link_down")
        await sub.expect(f"{PREFIX}/alerts/pbx_link_down", lambda b: b["state"] == "resolved")

        events.alert("disk_low", free_mb=100)
        await sub.expect(f"{PREFIX}/alerts/disk_low")
    # A monitor that connects later still learns the state: retained status and open alert.
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as late:
        assert (await late.expect(f"{PREFIX}/status")).retain
        disk = await late.expect(f"{PREFIX}/alerts/disk_low")
        assert disk.retain and disk.body["state"] == "raised"
        await events.aclose()
        stopped = await late.expect(f"{PREFIX}/status", lambda b: b["state"] == "offline")
        assert stopped.body["reason"] == "stopped"
    assert events.published >= 4 and events.dropped == 0


async def test_broker_restart_reconnects_and_delivers_what_was_queued(
    mosquitto: Mosquitto, events: Events
) -> None:
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as sub:
        await sub.expect(f"{PREFIX}/status", online)
        events.alert("metadata_writer_stalled", error="database is locked")
        await sub.expect(f"{PREFIX}/alerts/metadata_writer_stalled")
    mosquitto.stop()  # SIGKILL: no goodbye, retained messages gone (persistence false)
    for i in range(5):  # while the broker is away: queued, never blocking
        events.event("call_ended", call_id=f"c{i}", status="completed")
    assert events.queued >= 5
    mosquitto.start()
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as sub:
        await sub.expect(f"{PREFIX}/status", online, within=15)
        # The restarted broker forgot the retained alert: recorderd re-published the open one.
        assert (await sub.expect(f"{PREFIX}/alerts/metadata_writer_stalled")).body["state"] == "raised"
        await sub.expect(f"{PREFIX}/events/call_ended", lambda b: b["call_id"] == "c4")
        assert {b["call_id"] for b in sub.on(f"{PREFIX}/events/call_ended")} == {f"c{i}" for i in range(5)}
    assert events.dropped == 0


async def test_a_silent_broker_never_blocks_and_close_is_bounded() -> None:
    # Accepts TCP, never answers CONNECT: the worst broker, one that hangs rather than refuses.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        ev = Events(MqttConfig(host="127.0.0.1", port=port, queue_size=50), first_backoff_s=0.1)
        task = asyncio.create_task(ev.run())
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        for i in range(500):
            ev.event("call_started", call_id=f"c{i}")
            ev.alert("recording_failed", transient=True, call_id=f"c{i}")
        assert time.perf_counter() - t0 < 0.5
        assert ev.queued == 50 and ev.dropped == 950
        t0 = time.perf_counter()
        await ev.aclose(bound_s=1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert time.perf_counter() - t0 < 3
        assert not ev.connected
