"""The events hub without a broker: bookkeeping, masking, bounded queue, backoff."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pytest

from recorderd.config import MqttConfig
from recorderd.daemon.events import Events, backoff
from support.mosquitto import free_port


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    top = list(itertools.islice(backoff(0.5, 8.0, rng=lambda: 1.0), 7))
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = list(itertools.islice(backoff(0.5, 8.0, rng=lambda: 0.0), 3))
    assert low == [0.25, 0.5, 1.0]


def test_events_and_alerts_are_recorded_without_mqtt() -> None:
    ev = Events(None)
    ev.event("call_started", call_id="c1", direction="inbound", local="0668585050", remote="0311112222")
    ev.alert("pbx_link_down", state_detail="connection refused")
    ev.alert("pbx_link_down", state_detail="still refused")  # already open: refreshed, not repeated
    assert [r["kind"] for r in ev.recent] == ["call_started", "pbx_link_down"]
    assert ev.open_alerts["pbx_link_down"]["state_detail"] == "still refused"
    ev.resolve("pbx_link_down")
    ev.resolve("pbx_link_down")  # not open any more: nothing happens
    assert ev.open_alerts == {}
    assert [(r["kind"], r.get("state")) for r in ev.recent] == [
        ("call_started", None), ("pbx_link_down", "raised"), ("pbx_link_down", "resolved"),
    ]  # fmt: skip
    assert ev.queued == 0  # nothing to publish to


def test_numbers_are_masked_whatever_the_caller_passes() -> None:
    ev = Events(None)
    ev.event("call_ended", call_id="c1", local="0668585050", remote="09012345678", line="general")
    last = ev.last["call_ended"]
    assert last["local"] == "066*****50" and last["remote"] == "090******78"
    assert "0668585050" not in json.dumps(list(ev.recent))


def test_transient_alert_is_never_open() -> None:
    ev = Events(None)
    ev.alert("recording_failed", transient=True, call_id="c1", reason="no_audio")
    assert ev.open_alerts == {}
    assert ev.last["recording_failed"]["transient"] is True


def test_kind_must_be_a_plain_topic_level() -> None:
    ev = Events(None)
    for bad in ("call/started", "Call", "a+b", "#", ""):
        with pytest.raises(ValueError, match="event kind"):
            ev.event(bad)


async def test_a_dead_broker_costs_queued_messages_not_time() -> None:
    cfg = MqttConfig(host="127.0.0.1", port=free_port(), queue_size=100, reconnect_max_s=0.2)
    ev = Events(cfg, first_backoff_s=0.05)
    task = asyncio.create_task(ev.run())
    await asyncio.sleep(0)  # a yield, not a wait: run() is now inside its first connect attempt
    t0 = time.perf_counter()
    for i in range(1000):
        ev.event("call_started", call_id=f"c{i}")
    assert time.perf_counter() - t0 < 0.5  # the call path never waits for the broker
    assert ev.queued == 100 and ev.dropped == 900
    assert not ev.connected
    t0 = time.perf_counter()
    await ev.aclose(bound_s=2)
    await asyncio.wait_for(task, 1)  # run() ends with aclose, even mid-backoff
    assert time.perf_counter() - t0 < 2.5


async def test_alert_from_another_thread_lands_on_the_loop() -> None:
    ev = Events(None)
    task = asyncio.create_task(ev.run())
    await task  # without [mqtt] run() returns at once, but remembers the loop
    seen = asyncio.Event()
    loop = asyncio.get_running_loop()

    def worker() -> None:
        ev.alert("disk_low", free_mb=10)
        loop.call_soon_threadsafe(seen.set)

    threading.Thread(target=worker).start()
    await asyncio.wait_for(seen.wait(), 5)
    assert "disk_low" in ev.open_alerts


def test_snapshot_shape() -> None:
    cfg = MqttConfig(host="broker.example", topic_prefix="recorderd/toyonaka")
    ev = Events(cfg)
    ev.alert("disk_low", free_mb=10)
    snap = ev.snapshot()
    assert snap["mqtt"] == {
        "enabled": True, "broker": "broker.example:1883", "connected": False, "since": None,
        "published": 0, "dropped": 0, "queued": 1, "last_error": None,
    }  # fmt: skip
    assert [a["kind"] for a in snap["open_alerts"]] == ["disk_low"]  # type: ignore[attr-defined]
    assert ev.status_topic == "recorderd/toyonaka/status"


def test_a_callers_field_cannot_overwrite_ours() -> None:
    ev = Events(None)
    ev.alert("pbx_link_down", state="disconnected", ts="yesterday")
    rec = ev.open_alerts["pbx_link_down"]
    assert (rec["kind"], rec["state"]) == ("pbx_link_down", "raised") and rec["ts"] != "yesterday"
    assert list(rec)[:2] == ["ts", "kind"]
