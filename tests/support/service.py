"""recorderd as a real process under a stand-in for systemd: $NOTIFY_SOCKET and stdout (journald)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Notify:
    """systemd's side of $NOTIFY_SOCKET: an abstract datagram socket, read continuously as the
    manager does (an unread socket fills after net.unix.max_dgram_qlen datagrams, about 10)."""

    def __init__(self) -> None:
        self.address = f"@recorderd-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.address[1:].encode())
        self.sock.setblocking(False)
        self.seen: list[dict[str, str]] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            async with self._changed:
                self.seen.append(dict(line.split("=", 1) for line in data.decode().splitlines()))
                self._changed.notify_all()

    async def expect(self, key: str, value: str | None = None, *, after: int = 0, within: float = 15) -> int:
        """Index of the first datagram at or after ``after`` that sets ``key`` (to ``value``)."""
        async with asyncio.timeout(within), self._changed:
            while True:
                for i, msg in enumerate(self.seen[after:], after):
                    if key in msg and (value is None or msg[key] == value):
                        return i
                await self._changed.wait()

    def close(self) -> None:
        self._reader.cancel()
        self.sock.close()


class Service:
    """The daemon process; its stdout is what journald would receive."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorderd.cli", "run", "--config", str(self.config), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT), **self.env},
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode()
            async with self._changed:
                self.raw.append(line)
                with contextlib.suppress(ValueError):
                    self.lines.append(json.loads(line))
                self._changed.notify_all()

    async def expect_log(self, event: str, where: Callable[[dict[str, Any]], bool] = lambda _r: True,
                         within: float = 15) -> dict[str, Any]:  # fmt: skip
        async with asyncio.timeout(within), self._changed:
            while True:
                for rec in self.lines:
                    if rec.get("event") == event and where(rec):
                        return rec
                await self._changed.wait()

    def kill(self) -> None:
        """Teardown: a test that failed half-way must not leave a daemon running."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def wait(self, sig: int | None = None) -> int:
        assert self.proc is not None
        if sig is not None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)
        return code


Spawn = Callable[[Path, dict[str, str]], Service]  # the `spawn` fixture (tests/conftest.py)
