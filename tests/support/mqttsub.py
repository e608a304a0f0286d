"""A test-side MQTT subscriber: collects every message under a prefix, awaits the one a test needs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiomqtt


@dataclass(frozen=True)
class Received:
    topic: str
    body: dict[str, object]
    retain: bool


class Subscriber:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._changed = asyncio.Condition()

    async def _pump(self, client: aiomqtt.Client) -> None:
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            async with self._changed:
                self.messages.append(Received(str(m.topic), json.loads(payload), bool(m.retain)))
                self._changed.notify_all()

    async def expect(
        self, topic: str, where: Callable[[dict[str, object]], bool] = lambda _b: True, within: float = 30
    ) -> Received:
        """The first message (already received or still to come) on ``topic`` that matches."""
        async with asyncio.timeout(within), self._changed:
            seen = 0
            while True:
                for m in self.messages[seen:]:
                    if m.topic == topic and where(m.body):
                        return m
                seen = len(self.messages)
                await self._changed.wait()

    def on(self, topic: str) -> list[dict[str, object]]:
        return [m.body for m in self.messages if m.topic == topic]


@contextlib.asynccontextmanager
async def subscribe(host: str, port: int, pattern: str) -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    async with aiomqtt.Client(host, port, identifier=None) as client:
        await client.subscribe(pattern, qos=1)
        pump = asyncio.create_task(sub._pump(client))
        try:
            yield sub
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await pump
