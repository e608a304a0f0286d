"""Thin asyncio shell around ``AudioSocketParser``: a TCP server Asterisk's AudioSocket channels
connect to. An ``asyncio.Protocol`` (not streams) because every call delivers 50 frames/s and a
callback per frame is the cheapest path from the socket to the recorder.

Per connection: wait for the UUID (bounded), ask ``on_connect`` for a handler, then pass every
audio payload to it. The handler's ``connection_closed`` is called exactly once, whatever ends
the connection, so it can always seal its recording.

Two options trade a little latency for far less work per frame when thousands of calls stream at
once (see docs/PERFORMANCE.md): ``coalesce_audio`` hands the handler all the frames one read
brought as one payload (one call instead of one per frame), and ``read_low_water`` asks the kernel
(SO_RCVLOWAT) to wake us only once that many bytes are queued, so one recv() carries several
frames instead of one. It is set only after the first audio frame, so the first frame (which a
call may be waiting for) is never held back; EOF and errors always wake us at once. A handler that
needs exact arrival times for a while (a pause in the audio: the frames below the mark would wait
in the kernel until the next talk spurt) calls ``AudioSocketPeer.read_promptly()``, and
``read_batched()`` when the audio flows again.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import termios
import typing
import uuid
from collections.abc import Callable

from pbx.audiosocket.protocol import (
    NEED_DATA,
    Audio,
    AudioSocketParser,
    Dtmf,
    Hangup,
    Identified,
    PeerError,
    encode_hangup,
)
from pbx.errors import PeerProtocolError
from pbx.listen import Listener
from pbx.peerlog import PeerLog

log = logging.getLogger("pbx.audiosocket")

_READ_BUFFER = 64 * 1024


class AudioSocketHandler(typing.Protocol):
    def audio_received(self, payload: bytes) -> None:
        """One slin payload (normally 320 bytes = 20 ms), or with ``coalesce_audio`` the payloads of
        consecutive frames joined, in order. Must not block: it runs on the loop."""

    def connection_closed(self, error: str | None) -> None:
        """Called once. None: orderly end (peer EOF/hangup, or our ``hangup()``); else a reason."""


class AudioSocketPeer:
    """Our handle on one identified AudioSocket connection."""

    def __init__(self, proto: _Connection, peername: str, uuid: uuid.UUID) -> None:
        self._proto = proto
        self.peername = peername
        self.uuid = uuid

    def hangup(self) -> None:
        """Ask Asterisk to end the AudioSocket channel (0x00), then close; an orderly end."""
        self._proto.end(None, send_hangup=True)

    def abort(self) -> None:
        """Drop the connection at once, unsent data discarded; the handler sees ``"aborted"``."""
        self._proto.end("aborted", abort=True)

    def read_promptly(self) -> int:
        """Wake for every byte from now on (no low-water mark), and say how many audio payload
        bytes were already waiting, in the kernel or half-parsed: they are delivered next.
        Counted as 20 ms frames (323 bytes on the wire for 320 of audio), what Asterisk sends."""
        return self._proto.read_promptly()

    def read_batched(self) -> None:
        """Back to the server's low-water mark (if it has one)."""
        self._proto.read_batched()

    def behind(self) -> int:
        """If the kernel holds what already makes this connection readable (its low-water mark, or
        any byte when reading promptly), the event loop has not got to it yet: the audio payload
        bytes waiting (20 ms frames assumed, as ``read_promptly``). Else 0. One ioctl."""
        return self._proto.behind()


OnConnect = Callable[[uuid.UUID, AudioSocketPeer], AudioSocketHandler | None]


class _Connection(asyncio.BufferedProtocol):
    """asyncio reads straight into the server's read buffer (recv_into): no new bytes object of
    ``max_size`` (256 KiB) per read, which costs more than the read itself (docs/PERFORMANCE.md)."""

    def __init__(self, server: AudioSocketServer) -> None:
        self._server = server
        self._parser = AudioSocketParser(server._max_payload)
        self._transport: asyncio.Transport | None = None
        self._handler: AudioSocketHandler | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ended = False
        self._end_reason: str | None = None
        self._coalesce = server._coalesce_audio
        self._low_water = server._read_low_water  # applied once, when the first audio arrives
        self._prompt = False  # read_promptly() in force: do not (re)apply the low-water mark
        self.peername = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it: no isinstance.
        self._transport = typing.cast(asyncio.Transport, transport)
        addr = transport.get_extra_info("peername")
        self.peername = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        self._server._connections.add(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._server._uuid_timeout, self._uuid_timeout)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._ended:
            return
        self._parser.receive_data(self._server._read_buffer[:nbytes])  # copied: the buffer is shared
        self._drain()

    def data_received(self, data: bytes) -> None:
        """The same for a caller that hands us bytes (not used by asyncio's transports)."""
        if self._ended:
            return
        self._parser.receive_data(data)
        self._drain()

    def eof_received(self) -> bool:
        if not self._ended:
            self._parser.receive_data(b"")
            self._drain()
        return False  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if not self._ended:
            reason = f"connection lost: {exc}" if exc is not None else "connection closed"
            self.end(reason if self._handler is not None else None)

    def end(self, error: str | None, *, send_hangup: bool = False, abort: bool = False) -> None:
        """Finish the connection once: notify the handler, then close the transport."""
        if self._ended:
            return
        self._ended = True
        self._end_reason = error
        if self._timer is not None:
            self._timer.cancel()
        handler, self._handler = self._handler, None
        if handler is not None:
            try:
                handler.connection_closed(error)
            except Exception:
                log.exception("AudioSocket %s: connection_closed handler failed", self.peername)
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if abort:
            transport.abort()
            return
        if send_hangup:
            transport.write(encode_hangup())
        transport.close()

    def _drain(self) -> None:
        """Hand every complete message to the handler; a bad peer or handler ends only this link."""
        try:
            if self._coalesce:
                self._drain_coalesced()
            else:
                for event in self._parser.events():
                    self._dispatch(event)
                    if self._ended:
                        return
        except PeerProtocolError as exc:
            self._server.peerlog.warning(self.peername, "protocol error: %s", exc)
            self.end(f"protocol error: {exc}", abort=True)
        except Exception as exc:
            log.exception("AudioSocket %s: handler failed", self.peername)
            self.end(f"handler error: {exc!r}", abort=True)

    def _dispatch(self, event: object) -> None:
        if type(event) is Audio:
            if self._handler is not None:
                self._handler.audio_received(event.payload)
        elif isinstance(event, Identified):
            self._identified(event.uuid)
        elif isinstance(event, Hangup):
            self.end(None)
        elif isinstance(event, PeerError):
            log.warning("AudioSocket %s: peer reported error code %s", self.peername, event.code)
        elif isinstance(event, Dtmf):
            log.debug("AudioSocket %s: DTMF %r ignored", self.peername, event.digit)

    def _drain_coalesced(self) -> None:
        parser = self._parser
        while True:
            handler = self._handler
            if handler is not None:
                audio = parser.take_audio()
                if audio:
                    handler.audio_received(audio)
                    if self._ended:
                        return
                    if self._low_water and not self._prompt:
                        self._set_low_water(self._low_water)
                        self._low_water = 0
            event = parser.next_event()
            if event is NEED_DATA:
                return
            self._dispatch(event)  # a lone frame take_audio left (only before the handler), or control
            if self._ended:
                return

    def _socket(self) -> typing.Any:
        return self._transport.get_extra_info("socket") if self._transport is not None else None

    def _set_low_water(self, low_water: int) -> None:
        sock = self._socket()
        if sock is None:
            return
        try:
            # Lowering it wakes the reader at once if bytes are queued (Linux tcp_set_rcvlowat).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, low_water)
        except OSError as exc:  # not fatal: we only read more often
            log.debug("AudioSocket %s: SO_RCVLOWAT not set: %s", self.peername, exc)

    def read_promptly(self) -> int:
        if self._ended:
            return 0
        if not self._prompt and self._server._read_low_water and not self._low_water:
            self._set_low_water(1)  # the mark was applied: take it away
        self._prompt = True
        waiting = self._parser.pending + self._unread()
        frames = -(-waiting // 323)
        return max(0, waiting - 3 * frames)

    def _unread(self) -> int:
        """Bytes waiting in the kernel's receive queue (FIONREAD); 0 if that cannot be known."""
        sock = self._socket()
        if sock is None:
            return 0
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError) as exc:
            log.debug("AudioSocket %s: FIONREAD failed: %s", self.peername, exc)
            return 0
        return int(struct.unpack("i", raw)[0])

    def behind(self) -> int:
        if self._ended:
            return 0
        batched = self._server._read_low_water and not self._low_water and not self._prompt
        unread = self._unread()
        if unread < (self._server._read_low_water if batched else 1):
            return 0
        return unread - 3 * -(-unread // 323)

    def read_batched(self) -> None:
        if not self._prompt or self._ended:
            return
        self._prompt = False
        if self._server._read_low_water and not self._low_water:
            self._set_low_water(self._server._read_low_water)

    def _identified(self, u: uuid.UUID) -> None:
        if self._timer is not None:
            self._timer.cancel()
        peer = AudioSocketPeer(self, self.peername, u)
        handler = self._server._on_connect(u, peer)  # exceptions: caught in _drain, close this one
        if handler is None:
            self._server.peerlog.info(self.peername, "UUID %s refused", u)
            self.end(None, send_hangup=True)
            return
        if not self._ended:
            self._handler = handler
            return
        # on_connect already ended the connection through ``peer``: still tell the handler once.
        try:
            handler.connection_closed(self._end_reason)
        except Exception:
            log.exception("AudioSocket %s: connection_closed handler failed", self.peername)

    def _uuid_timeout(self) -> None:
        self._server.peerlog.warning(self.peername, "no UUID within %ss, closing", self._server._uuid_timeout)
        self.end(None, abort=True)


class AudioSocketServer:
    def __init__(
        self,
        on_connect: OnConnect,
        *,
        max_payload: int = 4096,
        uuid_timeout: float = 5.0,
        coalesce_audio: bool = False,
        read_low_water: int = 0,
    ) -> None:
        if read_low_water < 0:
            raise ValueError("read_low_water must be >= 0")
        self._on_connect = on_connect
        self._max_payload = max_payload
        self._uuid_timeout = uuid_timeout
        self.peerlog = PeerLog(log, "AudioSocket")  # junk connections: one line per peer per interval
        self._coalesce_audio = coalesce_audio
        self._read_low_water = read_low_water
        # One read buffer for every connection: each read is parsed (and copied) before the next.
        self._read_buffer = memoryview(bytearray(_READ_BUFFER))
        self._connections: set[_Connection] = set()
        self._server: Listener | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = Listener(lambda: _Connection(self), self.peerlog, logger=log)
        await self._server.start(host, port)

    @property
    def port(self) -> int:
        port = None if self._server is None else self._server.port
        if port is None:
            raise RuntimeError("AudioSocketServer is not started")
        return port

    async def close(self) -> None:
        """Stop accepting and end every connection; handlers see ``"server closing"``."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.end("server closing")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.peerlog.flush_all()
