"""A TCP listener whose accept loop backs off when the process runs out of file descriptors.

asyncio's own server loop (3.11) logs "socket.accept() out of system resource" with a traceback
for every one of up to ``backlog`` attempts per wake-up and schedules a retry for each: measured,
~350 error lines a second while a local process holds every descriptor. Here one task accepts;
out of descriptors (or kernel memory) it waits, doubling up to ``backoff_max``, and says so once
per interval with a count; every accepted socket goes to ``connect_accepted_socket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

from pbx.peerlog import PeerLog

_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_TRANSIENT = (errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EAGAIN)
BACKLOG = 511


class Listener:
    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        peerlog: PeerLog,
        *,
        logger: logging.Logger,
        backoff_first: float = 0.05,
        backoff_max: float = 1.0,
    ) -> None:
        self._factory = protocol_factory
        self._peerlog = peerlog
        self._log = logger
        self._first, self._max = backoff_first, backoff_max
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[object]] = set()
        self.deferred = 0  # accept attempts put off for want of descriptors

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _name, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._task = loop.create_task(self._accept_loop(sock), name=f"accept-{addr}")

    @property
    def port(self) -> int | None:
        return None if self._sock is None else int(self._sock.getsockname()[1])

    def close(self) -> None:
        """Stop accepting; connections already made carry on."""
        if self._task is not None:
            self._task.cancel()
        if self._sock is not None:
            self._sock.close()

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._sock = None

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        where = "listener {}:{}".format(*sock.getsockname()[:2])
        delay = self._first
        while True:
            try:
                conn, _addr = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in _TRANSIENT:
                    continue
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                self.deferred += 1
                why = exc.strerror
                self._peerlog.warning(
                    where, "cannot accept (%s): backing off; connections wait in the backlog", why
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max)
                continue
            delay = self._first
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(self._factory, conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshake_done)

    def _handshake_done(self, task: asyncio.Task[object]) -> None:
        self._handshakes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.warning("connection setup failed: %s", task.exception())
