"""Events and alerts: what the daemon tells the people watching it, over MQTT when configured.

Everything here is fire-and-forget for the caller. ``event()``, ``alert()`` and ``resolve()`` are
plain functions that append to a bounded in-memory queue and return; one task publishes the queue
to the broker. A dead, slow or misconfigured broker therefore costs at most queued messages (the
oldest are dropped and counted), never a frame of audio or a metadata row.

Topics, under ``[mqtt] topic_prefix`` (e.g. ``recorderd/toyonaka-hall``):

- ``<prefix>/status`` (retained): ``{"state": "online", …}`` while connected; the broker publishes
  our last will ``{"state": "offline", "reason": "connection lost"}`` if we vanish (crash, SIGKILL,
  network), and a clean stop publishes ``{"state": "offline", "reason": "stopped"}``.
- ``<prefix>/events/<kind>``: call_started, call_ended, call_failed, call_excluded, reaper_run, …
- ``<prefix>/alerts/<kind>`` (retained for open/close alerts): ``{"state": "raised"|"resolved", …}``.
  Open alerts are re-published on every reconnect, so a monitor that subscribes late, or a broker
  that restarted without persistence, still sees what is wrong now.

Payloads are JSON objects with ``ts`` (UTC, ISO 8601) and ``kind``. Telephone numbers are masked
here whatever the caller passed (fields named in NUMBER_FIELDS), so no payload carries a full number.

The same records feed ``recorderctl status`` (recent events, open alerts) with or without MQTT.
Other components (the reaper, the ledger) raise their alerts through ``Daemon.events``::

    events.alert("disk_low", free_mb=812, threshold_mb=2048)   # open until resolved
    events.resolve("disk_low", free_mb=4100)
    events.alert("recording_failed", transient=True, call_id=…) # a one-off: nothing to resolve
    events.event("reaper_run", deleted=12, moved=0, needed_bytes=…)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog

from recorderd.config import MqttConfig
from recorderd.numbers import mask

log = structlog.get_logger("recorderd.events")

# Alerts the daemon raises itself; other components add their own kinds (ledger_write_failed,
# clock_anomaly, ...). Open/close alerts stay open until resolve(); transient ones are one-offs.
ALERT_KINDS = ("pbx_link_down", "recording_failed", "recording_unverified", "metadata_writer_stalled",
               "disk_low")  # fmt: skip
EVENT_KINDS = ("call_started", "call_ended", "call_failed", "call_excluded", "reaper_run")
NUMBER_FIELDS = frozenset({"local", "remote", "local_number", "remote_number", "number", "caller", "callee"})
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PUBLISH_TIMEOUT_S = 10.0  # a broker that takes longer to acknowledge is treated as gone
_MAX_ATTEMPTS = 3  # a message the broker refuses this often is dropped, not retried forever


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def backoff(first: float, cap: float, rng: Callable[[], float] = random.random) -> Iterator[float]:
    """Reconnect delays: doubling from ``first`` up to ``cap``, each scaled by 0.5-1.0 (jitter).

    Jitter keeps a site's daemons from reconnecting in lock-step after a broker restart.
    """
    delay = first
    while True:
        yield min(cap, delay) * (0.5 + rng() / 2)
        delay = min(cap, delay * 2)


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    retain: bool
    attempts: int = 0


def _jsonable(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


class Events:
    def __init__(
        self,
        mqtt: MqttConfig | None,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        recent_size: int = 50,
        first_backoff_s: float = 0.5,
    ) -> None:
        self.mqtt = mqtt
        self._clock = clock
        self.recent: deque[dict[str, object]] = deque(maxlen=recent_size)
        self.open_alerts: dict[str, dict[str, object]] = {}
        self.last: dict[str, dict[str, object]] = {}  # newest record per kind ("last reaper run")
        self.published = 0
        self.dropped = 0
        self.connected = False
        # In-process observers of every record (tests, a future push of status): called on the loop.
        self.listeners: list[Callable[[dict[str, object]], None]] = []
        self.connected_since: dt.datetime | None = None
        self.last_error: str | None = None
        self._queue: deque[_Message] = deque()
        self._limit = mqtt.queue_size if mqtt else 0
        self._first_backoff = first_backoff_s
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        prefix = mqtt.topic_prefix if mqtt else "recorderd"
        self.status_topic = f"{prefix}/status"
        self._prefix = prefix

    # -- the API other components call -----------------------------------------------------------
    def event(self, kind: str, **fields: object) -> None:
        """Something happened (a call started, the reaper ran): recorded and published once."""
        self._call(self._record, "event", kind, fields, None)

    def alert(self, kind: str, *, transient: bool = False, **fields: object) -> None:
        """Something needs a person. Open until ``resolve(kind)`` unless ``transient``.

        Raising an alert that is already open only refreshes its fields (shown by recorderctl
        status); it is not published again, so a condition checked every few seconds is one message.
        """
        self._call(self._record, "alert", kind, fields, None if transient else "raised")

    def resolve(self, kind: str, **fields: object) -> None:
        """Close an open alert; a no-op when it is not open."""
        self._call(self._record, "alert", kind, fields, "resolved")

    # -- bookkeeping (event loop thread) ---------------------------------------------------------
    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if not _KIND.match(args[1]):
            raise ValueError(f"event kind {args[1]!r}: lower-case letters, digits and '_' only")
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            # The reaper or a disk thread may report from a worker thread: hop onto the loop.
            self._loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def _record(self, category: str, kind: str, fields: dict[str, object], state: str | None) -> None:
        payload: dict[str, object] = {"ts": None, "kind": kind}  # first in the JSON, filled below
        for key, value in fields.items():
            if key in NUMBER_FIELDS and isinstance(value, str):
                value = mask(value)  # whatever the caller passed: MQTT never sees a full number
            payload[key] = _jsonable(value) if isinstance(value, dt.datetime) else value
        # Ours win over a caller's field of the same name: a monitor must be able to trust them.
        payload |= {"ts": _jsonable(self._clock()), "kind": kind}
        if category == "alert":
            payload["state"] = state or "raised"
            if state is None:
                payload["transient"] = True
        details = {k: v for k, v in payload.items() if k not in ("ts", "kind", "state")}
        if state == "raised":
            if kind in self.open_alerts:
                self.open_alerts[kind] = {**payload, "ts": self.open_alerts[kind]["ts"]}
                return
            self.open_alerts[kind] = payload
            log.warning("alert_raised", alert=kind, **details)
        elif state == "resolved":
            if self.open_alerts.pop(kind, None) is None:
                return
            log.info("alert_resolved", alert=kind, **details)
        record: dict[str, object] = {"type": category, **payload}
        self.recent.append(record)
        self.last[kind] = payload
        for listener in self.listeners:
            listener(record)
        topic = f"{self._prefix}/{'alerts' if category == 'alert' else 'events'}/{kind}"
        self._enqueue(_Message(topic, self._encode(payload), retain=state is not None))

    def publish_retained(self, subtopic: str, payload: bytes) -> bool:
        """A retained message under the prefix (the ledger checkpoint); False without [mqtt]."""
        if self.mqtt is None:
            return False
        self._enqueue(_Message(f"{self._prefix}/{subtopic}", payload, retain=True))
        return True

    def _encode(self, payload: dict[str, object]) -> bytes:
        return json.dumps(payload, ensure_ascii=False, default=_jsonable).encode()

    def _enqueue(self, msg: _Message) -> None:
        if self.mqtt is None:
            return
        if len(self._queue) >= self._limit:
            self._queue.popleft()  # keep the newest: they describe the present
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("mqtt_events_dropped", dropped=self.dropped, queue_size=self._limit)
        self._queue.append(msg)
        if self._wake is not None:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def snapshot(self) -> dict[str, object]:
        """For the status file: the link, the counters, what is open and what happened lately."""
        mqtt: dict[str, object] = {"enabled": self.mqtt is not None}
        if self.mqtt is not None:
            mqtt |= {
                "broker": f"{self.mqtt.host}:{self.mqtt.port}",
                "connected": self.connected,
                "since": _jsonable(self.connected_since) if self.connected_since else None,
                "published": self.published,
                "dropped": self.dropped,
                "queued": self.queued,
                "last_error": self.last_error,
            }
        return {
            "mqtt": mqtt,
            "open_alerts": list(self.open_alerts.values()),
            "recent": list(self.recent),
            "last": dict(self.last),
        }

    # -- the publisher task ----------------------------------------------------------------------
    def _status_payload(self, state: str, reason: str | None = None) -> bytes:
        body: dict[str, object] = {"state": state, "ts": _jsonable(self._clock())}
        if reason:
            body["reason"] = reason
        else:
            body |= {"pid": os.getpid(), "host": socket.gethostname()}
        return self._encode(body)

    def _client(self, mqtt: MqttConfig) -> aiomqtt.Client:
        tls = aiomqtt.TLSParameters(ca_certs=str(mqtt.tls_ca_file) if mqtt.tls_ca_file else None)
        return aiomqtt.Client(
            mqtt.host,
            mqtt.port,
            username=mqtt.username,
            password=mqtt.resolved_password(),
            identifier=mqtt.client_id or f"recorderd-{socket.gethostname()}",
            # The broker publishes this if we disappear without a DISCONNECT (crash, kill, cable).
            will=aiomqtt.Will(
                self.status_topic, self._status_payload("offline", "connection lost"), qos=1, retain=True
            ),
            keepalive=mqtt.keepalive_s,
            timeout=_PUBLISH_TIMEOUT_S,
            tls_params=tls if mqtt.tls else None,
        )

    async def run(self) -> None:
        """Publish until ``aclose()``; reconnect with backoff. Returns at once without [mqtt]."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        mqtt = self.mqtt
        if mqtt is None:
            self._stopped.set()
            return
        broker = f"{mqtt.host}:{mqtt.port}"
        delays = backoff(self._first_backoff, mqtt.reconnect_max_s)
        failures = 0
        try:
            while not self._closing:
                try:
                    async with self._client(mqtt) as client:
                        self.connected, self.connected_since = True, self._clock()
                        log.info("mqtt_connected", broker=broker, queued=self.queued, dropped=self.dropped)
                        failures, delays = 0, backoff(self._first_backoff, mqtt.reconnect_max_s)
                        await self._session(client)
                except aiomqtt.MqttError as exc:
                    self.last_error = str(exc) or type(exc).__name__
                except Exception as exc:
                    # A bad CA file, a vanished credential, a bug: never let the publisher take the
                    # daemon's task group (and so the recordings) down with it.
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("mqtt_publisher_error", error=self.last_error)
                finally:
                    was_connected, self.connected = self.connected, False
                if self._closing:
                    break
                failures += 1
                delay = next(delays)
                # The first failure is worth a warning; a broker down for a week is not 10,000 of them.
                if was_connected or failures == 1:
                    log.warning(
                        "mqtt_unavailable", broker=broker, error=self.last_error, retry_in_s=round(delay, 2)
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wait_closing()
        finally:
            self._stopped.set()

    async def _wait_closing(self) -> None:
        assert self._wake is not None
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def _session(self, client: aiomqtt.Client) -> None:
        assert self._wake is not None
        await client.publish(self.status_topic, self._status_payload("online"), qos=1, retain=True)
        for payload in list(self.open_alerts.values()):
            topic = f"{self._prefix}/alerts/{payload['kind']}"
            await client.publish(topic, self._encode(payload), qos=1, retain=True)
        # We subscribe to nothing: the message iterator only ends, with MqttError, when the link drops,
        # which tells us of a dead broker even while there is nothing to publish.
        watcher = asyncio.ensure_future(self._watch(client))
        try:
            while True:
                while self._queue:
                    msg = self._queue[0]
                    msg.attempts += 1
                    try:
                        await client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
                    except aiomqtt.MqttCodeError:
                        if msg.attempts < _MAX_ATTEMPTS:
                            raise
                        self._queue.popleft()
                        self.dropped += 1
                        continue
                    self._queue.popleft()
                    self.published += 1
                if self._closing:
                    await client.publish(self.status_topic, self._status_payload("offline", "stopped"),
                                         qos=1, retain=True)  # fmt: skip
                    return
                self._wake.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({woken, watcher}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woken.cancel()
                if watcher.done():
                    watcher.result()  # raises the MqttError that ended the link
                    raise aiomqtt.MqttError("disconnected")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watcher

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        async for _message in client.messages:
            pass

    async def aclose(self, bound_s: float = 3.0) -> None:
        """Publish what is queued and the retained "offline (stopped)", then disconnect (bounded)."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._stopped is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bound_s):
                await self._stopped.wait()
