"""Where `ledger verify` finds the newest checkpoint by itself: the directories the daemon writes
them to (``[ledger] checkpoint_dirs``) and the retained MQTT message (when ``[mqtt]`` is set).

Looking is not an act on the records (no ledger entry of its own); the verification that uses what
was found is, and its entry names the checkpoint (recorderd/service/records.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from recorderd.config import Config
from storage import checkpoints, ledger, signing

MQTT_WAIT_S = 3.0  # a retained message arrives at once after subscribing, or not at all


@dataclass
class Verification:
    report: ledger.Report
    newest: checkpoints.Found | None  # the checkpoint the ledger was held to, given or found
    age_s: float | None  # how old it was at the verification
    searched: list[str] = field(default_factory=list)  # where we looked
    notes: list[str] = field(default_factory=list)  # checkpoints or places that could not be used


@dataclass
class Search:
    found: list[checkpoints.Found] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def search(config: Config, trusted_key: str | None, given: Sequence[ledger.Checkpoint] = ()) -> Search:
    """Every usable checkpoint: ``given`` (files a person saved), the configured directories, MQTT."""
    out = Search(found=[checkpoints.Found(cp, "given") for cp in given])
    for directory in config.ledger.checkpoint_dirs:
        out.searched.append(str(directory))
        found, problems = checkpoints.read_dir(directory, trusted_key)
        out.found += found
        out.notes += problems
    if config.mqtt is not None:
        where = f"mqtt://{config.mqtt.host}:{config.mqtt.port}/{_topic(config)}"
        out.searched.append(where)
        try:
            text = _run(lambda: _retained(config))
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            out.notes.append(f"{where}: unreachable ({exc})")
            text = None
        if text is not None:
            try:
                out.found.append(checkpoints.Found(ledger.Checkpoint.from_json(text, trusted_key), where))
            except signing.SigningError as exc:
                out.notes.append(f"{where}: {exc}")
    return out


def _run(make: Callable[[], Coroutine[Any, Any, str | None]]) -> str | None:
    """Run the MQTT look-up to its end from synchronous code, even when the caller's thread already
    runs an event loop (the web console): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _topic(config: Config) -> str:
    assert config.mqtt is not None
    return f"{config.mqtt.topic_prefix}/{checkpoints.MQTT_TOPIC}"


def mqtt_client(config: Config, timeout: float) -> aiomqtt.Client:
    """A client of the configured broker ([mqtt]: host, credentials, TLS), for a one-off exchange."""
    mqtt = config.mqtt
    assert mqtt is not None
    tls = aiomqtt.TLSParameters(ca_certs=str(mqtt.tls_ca_file) if mqtt.tls_ca_file else None)
    return aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=mqtt.username,
        password=mqtt.resolved_password(),
        tls_params=tls if mqtt.tls else None,
        timeout=timeout,
    )


async def _retained(config: Config) -> str | None:
    async with mqtt_client(config, MQTT_WAIT_S) as client:
        await client.subscribe(_topic(config), qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(MQTT_WAIT_S):
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        return bytes(payload).decode("utf-8", "replace")
                    return str(payload)
    return None
