"""A local process pretending to be Asterisk: what any program on the recording host can do.

It opens an AGI session with an environment of its choosing, answers whatever the daemon asks
(``200 result=1``, ``ORIGINATE_STATUS`` = SUCCESS), reads the spy's UUID out of the daemon's
``EXEC Originate AudioSocket/<host:port>/<uuid>…`` and opens that AudioSocket itself, to stream
whatever audio it likes at whatever pace. Written from the wire format, not with recorderd's code.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field

_ORIGINATE = re.compile(r"AudioSocket/([^/]+):(\d+)/([0-9a-fA-F-]{32,36})")


def env_lines(uniqueid: str, *, caller: str = "0399998888", dialled: str = "0668585050") -> bytes:
    env = {
        "agi_network": "yes",
        "agi_network_script": "inbound",
        "agi_channel": "SIP/forged-00000001",
        "agi_type": "SIP",
        "agi_uniqueid": uniqueid,
        "agi_callerid": caller,
        "agi_dnid": dialled,
        "agi_extension": dialled,
        "agi_context": "from-trunk",
        "agi_priority": "3",
    }
    return "".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n"


@dataclass
class Forged:
    commands: list[str] = field(default_factory=list)
    spy: tuple[str, int, uuid.UUID] | None = None  # where and under which UUID to stream
    audio: asyncio.StreamWriter | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)  # the AudioSocket is open

    async def agi(self, host: str, port: int, uniqueid: str, *, local_addr: str | None = None) -> None:
        """Run the AGI side until the daemon closes it; every command gets a plausible yes."""
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(local_addr, 0) if local_addr else None
        )
        writer.write(env_lines(uniqueid))
        try:
            while line := await asyncio.wait_for(reader.readline(), 30):
                cmd = line.decode().strip()
                self.commands.append(cmd)
                if m := _ORIGINATE.search(cmd):
                    self.spy = (m.group(1), int(m.group(2)), uuid.UUID(m.group(3)))
                if cmd.startswith("GET VARIABLE ORIGINATE_STATUS"):
                    writer.write(b"200 result=1 (SUCCESS)\n")
                elif cmd.startswith("GET VARIABLE"):
                    writer.write(b"200 result=0\n")
                elif cmd.startswith("STREAM FILE"):
                    writer.write(b"200 result=0 endpos=12000\n")
                else:
                    writer.write(b"200 result=1\n")
                if self.spy is not None and self.audio is None and "ORIGINATE_STATUS" in cmd:
                    await self._connect_spy()
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _connect_spy(self) -> None:
        assert self.spy is not None
        host, port, spy_uuid = self.spy
        _r, w = await asyncio.open_connection(host, port)
        w.write(bytes([0x01, 0x00, 0x10]) + spy_uuid.bytes)
        self.audio = w
        self.connected.set()

    async def send(self, frames: list[bytes]) -> None:
        assert self.audio is not None
        self.audio.write(b"".join(bytes([0x10, len(f) >> 8, len(f) & 0xFF]) + f for f in frames))
        await self.audio.drain()

    async def hang_up(self) -> None:
        if self.audio is not None:
            self.audio.close()
            await self.audio.wait_closed()
