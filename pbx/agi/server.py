"""Thin asyncio shell around ``AgiServerConnection``: one task per FastAGI connection.

Each connection: read the environment (bounded by ``env_timeout``), run the handler, then end the
way Asterisk expects: half-close our side, read its final ``HANGUP`` and FIN (bounded by
``close_timeout``), close. A reader task keeps consuming Asterisk's bytes while the handler runs,
so a ``HANGUP`` that arrives while we are idle (e.g. waiting for the AudioSocket stream) is seen
at once: an open AGI keeps a dead channel alive, so the handler should return promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from pbx.agi.protocol import (
    NEED_DATA,
    AgiServerConnection,
    Closed,
    Environment,
    HangupNotice,
    Response,
    exec_command,
    quote,
)
from pbx.errors import PeerProtocolError, UsageError
from pbx.listen import Listener
from pbx.peerlog import PeerLog

log = logging.getLogger("pbx.agi")

_READ_SIZE = 65536


class AgiClosedError(ConnectionError):
    """The FastAGI connection ended before the command's response arrived."""


class AgiSession:
    """One FastAGI conversation, built by AgiServer and handed to the handler.

    Commands run one at a time (the protocol has no pipelining). ``hung_up`` turns True on a
    ``HANGUP`` line, a ``result=-1`` or a 511; after that only GET/SET VARIABLE still work, and
    the handler should return soon, since the open AGI keeps the dead channel alive.
    """

    def __init__(
        self,
        core: AgiServerConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: Environment,
        peer: str,
    ) -> None:
        self.env = env
        self.peer = peer
        self.hung_up = False
        self._core = core
        self._reader = reader
        self._writer = writer
        self._pending: asyncio.Future[Response] | None = None
        self._hangup = asyncio.Event()  # set on hangup AND when the connection ends
        self._closed = asyncio.Event()
        self._error: BaseException | None = None
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"agi-reader {peer}")

    async def command(self, line: str, timeout: float | None = 10.0) -> Response:  # noqa: ASYNC109
        """Send one raw command line and wait for its response.

        Raises AgiClosedError when the connection is gone, PeerProtocolError on a bad answer and
        TimeoutError after ``timeout``. The timeout is a parameter (not left to the caller's
        ``asyncio.timeout``) because expiry must also close the connection: a late answer would
        otherwise be taken for the next command's.
        """
        if self._closed.is_set():
            raise self._error or AgiClosedError("AGI connection closed")
        data = self._core.send_command(line)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending = fut
        try:
            self._writer.write(data)
            await self._writer.drain()
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            log.warning("AGI %s: no answer to %r within %ss, closing", self.peer, line[:60], timeout)
            self._finish(AgiClosedError("AGI connection closed after a command timed out"))
            self._abort()
            raise
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, AgiClosedError):
                raise
            raise AgiClosedError(f"AGI connection lost: {exc}") from exc
        finally:
            self._pending = None

    @property
    def closed(self) -> bool:
        """The connection has ended (EOF, protocol error, or a command timed out)."""
        return self._closed.is_set()

    async def wait_hangup(self) -> None:
        """Return once the channel hung up or the connection ended."""
        await self._hangup.wait()

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, or None when it is not set (``200 result=0``)."""
        r = await self.command(f"GET VARIABLE {_bare(name)}")
        return r.data if r.ok and r.result == 1 else None

    async def get_full_variable(self, expression: str) -> str | None:
        """Evaluate an expression such as ``${CALLERID(num)}`` (functions allowed)."""
        r = await self.command(f"GET FULL VARIABLE {quote(expression)}")
        return r.data if r.ok and r.result == 1 else None

    async def set_variable(self, name: str, value: str) -> Response:
        return await self.command(f"SET VARIABLE {_bare(name)} {quote(value)}")

    async def stream_file(self, name: str, escape_digits: str = "") -> Response:
        """Play a prompt; ``result=-1`` means the caller hung up during it. No timeout, because a
        prompt can be long: Asterisk answers at its end or at the hangup."""
        return await self.command(f"STREAM FILE {_bare(name)} {quote(escape_digits)}", None)

    async def exec(self, app: str, *args: str, timeout: float | None = None) -> Response:  # noqa: ASYNC109
        """Run a dialplan application; each of ``args`` reaches it verbatim (see exec_command).
        No timeout by default: an application such as Playback runs as long as its prompt."""
        return await self.command(exec_command(app, *args), timeout)

    async def verbose(self, msg: str, level: int = 1) -> Response:
        return await self.command(f"VERBOSE {quote(msg)} {int(level)}")

    async def _read_loop(self) -> None:
        try:
            while True:
                event = self._core.next_event()
                if event is NEED_DATA:
                    self._core.receive_data(await self._reader.read(_READ_SIZE))
                elif isinstance(event, HangupNotice):
                    self._mark_hung_up()
                elif isinstance(event, Response):
                    if event.hangup or event.dead_channel:
                        self._mark_hung_up()
                    if self._pending is not None and not self._pending.done():
                        self._pending.set_result(event)
                elif isinstance(event, Closed):
                    self._finish(AgiClosedError("Asterisk closed the AGI connection"))
                    return
        except PeerProtocolError as exc:
            log.warning("AGI %s: protocol error: %s", self.peer, exc)
            self._writer.close()
            self._finish(exc)
        except (ConnectionError, OSError) as exc:
            self._finish(AgiClosedError(f"AGI connection lost: {exc}"))
        except Exception as exc:  # a bug: still never leave a command waiting forever
            log.exception("AGI %s: reader failed", self.peer)
            self._writer.close()
            self._finish(AgiClosedError(f"AGI reader failed: {exc!r}"))

    def _mark_hung_up(self) -> None:
        self.hung_up = True
        self._hangup.set()

    def _finish(self, error: BaseException) -> None:
        self._error = error
        self._closed.set()
        self._hangup.set()
        if self._pending is not None and not self._pending.done():
            self._pending.set_exception(error)

    async def _close(self, close_timeout: float) -> None:
        """Half-close, wait for Asterisk's HANGUP + FIN (bounded), then stop reading."""
        try:
            if not self._closed.is_set() and self._writer.can_write_eof():
                self._writer.write_eof()
            async with asyncio.timeout(close_timeout):
                await self._closed.wait()
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            self._abort()

    def _abort(self) -> None:
        self._reader_task.cancel()
        self._writer.close()


AgiHandler = Callable[[AgiSession], Awaitable[None]]


class AgiServer:
    def __init__(
        self,
        handler: AgiHandler,
        *,
        env_timeout: float = 5.0,
        close_timeout: float = 2.0,
        max_line: int = 8192,
        max_env_lines: int = 128,
        max_env_bytes: int = 16384,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        """``accept(peer_ip)``: False closes the connection before a byte is read from it."""
        self._handler = handler
        self._accept = accept
        self._env_timeout = env_timeout
        self._close_timeout = close_timeout
        self._limits = (max_line, max_env_lines, max_env_bytes)
        self._server: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.peerlog = PeerLog(log, "AGI")  # junk connections: one line per peer per interval

    async def start(self, host: str, port: int) -> None:
        def protocol() -> asyncio.StreamReaderProtocol:  # what asyncio.start_server builds
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self._serve)

        self._server = Listener(protocol, self.peerlog, logger=log)
        await self._server.start(host, port)

    @property
    def port(self) -> int:
        port = None if self._server is None else self._server.port
        if port is None:
            raise RuntimeError("AgiServer is not started")
        return port

    async def close(self) -> None:
        """Stop accepting; give running sessions ``close_timeout`` to finish, then cancel them."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.peerlog.flush_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = _peername(writer)
        try:
            addr = writer.get_extra_info("peername")
            host = str(addr[0]) if isinstance(addr, tuple) and addr else ""
            if self._accept is not None and not self._accept(host):
                return
            await self._conversation(reader, writer, peer)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        core = AgiServerConnection(*self._limits)
        try:
            async with asyncio.timeout(self._env_timeout):
                env = await _read_env(core, reader)
        except TimeoutError:
            self.peerlog.warning(peer, "no environment within %ss, closing", self._env_timeout)
            return
        except PeerProtocolError as exc:
            self.peerlog.warning(peer, "protocol error in environment: %s", exc)
            return
        except (ConnectionError, OSError) as exc:
            self.peerlog.info(peer, "connection lost before the environment: %s", exc)
            return
        if env is None:
            self.peerlog.info(peer, "closed before sending an environment")
            return
        session = AgiSession(core, reader, writer, env, peer)
        try:
            await self._handler(session)
        except asyncio.CancelledError:
            session._abort()
            raise
        except (AgiClosedError, PeerProtocolError) as exc:
            log.info("AGI %s (%s): handler stopped, connection ended: %s", peer, env.uniqueid, exc)
        except Exception:
            log.exception("AGI %s (%s): handler failed", peer, env.uniqueid)
        await session._close(self._close_timeout)


async def _read_env(core: AgiServerConnection, reader: asyncio.StreamReader) -> Environment | None:
    while True:
        event = core.next_event()
        if event is NEED_DATA:
            core.receive_data(await reader.read(_READ_SIZE))
        elif isinstance(event, Environment):
            return event
        else:  # only Closed can come before the environment
            return None


def _bare(word: str) -> str:
    """Variable and file names go bare on the wire, as in the captures; refuse what would need
    quoting (such a name is a bug on our side, not something to smuggle through)."""
    if not word or any(c.isspace() or c in '"\\' for c in word):
        raise UsageError(f"bad AGI name {word!r}")
    return word


def _peername(writer: asyncio.StreamWriter) -> str:
    addr = writer.get_extra_info("peername")
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
