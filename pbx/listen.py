"""A TCP listener whose accept loop backs off when the process runs out of file descriptors.

asyncio's own server loop (3.11) logs "socket.accept() out of system resource" with a traceback
for every one of up to ``backlog`` attempts per wake-up and schedules a retry for each: measured,
~350 error lines a second while a local process holds every descriptor. This one accepts the same
way (a reader callback on the listening socket, up to ``BACKLOG`` connections per wake-up, no extra
hop per connection), but out of descriptors (or kernel memory) it stops watching the socket, waits
(doubling up to ``backoff_max``), and says so through the server's per-peer log: once, then a count
per interval. Every accepted socket goes to ``connect_accepted_socket``.
"""

from __future__ import annotations

import asyncio
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
        self._delay = backoff_first
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._where = ""
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
        self._sock, self._loop = sock, loop
        self._where = "listener {}:{}".format(*sock.getsockname()[:2])
        loop.add_reader(sock.fileno(), self._accept_ready)

    @property
    def port(self) -> int | None:
        return None if self._sock is None else int(self._sock.getsockname()[1])

    def close(self) -> None:
        """Stop accepting; connections already made carry on."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._sock = None

    async def wait_closed(self) -> None:
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)

    def _accept_ready(self) -> None:
        sock, loop = self._sock, self._loop
        assert sock is not None and loop is not None
        for _ in range(BACKLOG):
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _TRANSIENT:
                    continue
                self._back_off(exc)
                return
            self._delay = self._first
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(self._factory, conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshake_done)

    def _back_off(self, exc: OSError) -> None:
        """Out of descriptors (or anything else accept() refuses): stop watching the socket for a
        while; pending connections wait in the kernel's backlog meanwhile."""
        assert self._sock is not None and self._loop is not None
        self.deferred += 1
        why = exc.strerror or str(exc)
        if exc.errno in _OUT_OF_RESOURCES:
            self._peerlog.warning(
                self._where, "cannot accept (%s): backing off; connections wait in the backlog", why
            )
        else:
            self._log.error("%s: accept() failed: %s; retrying", self._where, why)
        self._loop.remove_reader(self._sock.fileno())
        self._retry = self._loop.call_later(self._delay, self._resume)
        self._delay = min(self._delay * 2, self._max)

    def _resume(self) -> None:
        self._retry = None
        if self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept_ready)

    def _handshake_done(self, task: asyncio.Task[object]) -> None:
        self._handshakes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.warning("connection setup failed: %s", task.exception())
