"""A TCP proxy that can break the connections it carries: the fault injector for links we do not own.

Put it between the daemon and a peer (the AMI server, an AudioSocket client) and then

- ``reset_all()``: send RST both ways at once, as a crashed peer or a middlebox does;
- ``cut_after(n)``: forward the next connection's first ``n`` client bytes, then reset it (or,
  with ``mode="eof"``, close it cleanly), so the daemon sees a frame cut in half and then
  ECONNRESET (or EOF).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger on, timeout 0: close() sends RST instead of FIN and drops unsent data.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    forwarded: int = 0  # client -> upstream bytes

    def reset(self) -> None:
        for w in (self.client, self.upstream):
            _rst(w)


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.pairs: list[_Pair] = []
        self.connections = 0
        self._cut: tuple[int, str] | None = None
        self.cut_done: asyncio.Future[int] | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut_after(self, nbytes: int, mode: str = "reset") -> asyncio.Future[int]:
        """Arm a one-shot cut for the next connection; the future gives the bytes forwarded."""
        assert mode in ("reset", "eof")
        self._cut = (nbytes, mode)
        self.cut_done = asyncio.get_running_loop().create_future()
        return self.cut_done

    def reset_all(self) -> int:
        pairs, self.pairs = self.pairs, []
        for p in pairs:
            p.reset()
        return len(pairs)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(writer)
            return
        self.connections += 1
        pair = _Pair(writer, up_writer)
        cut, self._cut = self._cut, None
        self.pairs.append(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, pair, cut)),
            asyncio.create_task(self._pump(up_reader, writer, None, None)),
        ]

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, pair: _Pair | None,
        cut_at: tuple[int, str] | None,
    ) -> None:  # fmt: skip
        try:
            while data := await src.read(65536):
                if pair is not None and cut_at is not None and pair.forwarded + len(data) >= cut_at[0]:
                    cut, mode = cut_at
                    dst.write(data[: cut - pair.forwarded])
                    await dst.drain()
                    pair.forwarded = cut
                    if mode == "reset":
                        pair.reset()
                    else:
                        pair.client.close()
                        pair.upstream.close()
                    if self.cut_done is not None and not self.cut_done.done():
                        self.cut_done.set_result(cut)
                    return
                dst.write(data)
                await dst.drain()
                if pair is not None:
                    pair.forwarded += len(data)
            if dst.can_write_eof():
                dst.write_eof()
        except (ConnectionError, OSError):
            with contextlib.suppress(OSError):
                _rst(dst)

    async def close(self) -> None:
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
