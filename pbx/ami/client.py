"""Asyncio shell around the sans-IO AMI core: one long-lived, self-healing manager session.

:meth:`AmiClient.run` connects, logs in with ``Events: on``, hands every event to ``on_event`` and
pings Asterisk; when the link ends for any reason it reconnects with capped exponential backoff and
full jitter. :meth:`AmiClient.action` sends an action and waits for the response carrying its ActionID.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pbx.ami.protocol import NEED_DATA, AmiClientConnection, Banner, Closed, Message, encode_action
from pbx.errors import PeerProtocolError

__all__ = ["AmiClient", "AmiNotConnected", "backoff_delay"]

log = logging.getLogger("pbx.ami")

_READ_SIZE = 65536
_T = TypeVar("_T")


class AmiNotConnected(Exception):
    """There is no logged-in AMI link: not connected yet, reconnecting, or the link dropped mid-action."""


class _LinkEnded(Exception):
    """The current link is over (EOF, Shutdown, silence); the message says why."""


class _AuthFailed(Exception):
    """Asterisk refused the Login; the message is Asterisk's own ``Message:`` text."""


def backoff_delay(failures: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(cap, initial * 2**failures)]``.

    The randomness keeps several daemons (or restarts) from hammering a recovering PBX in lockstep.
    """
    return rng.uniform(0.0, min(cap, initial * 2.0 ** min(failures, 64)))


class AmiClient:
    """A reconnecting AMI client; see the module docstring.

    ``on_event`` and ``on_state`` are called synchronously from the reader, so they must not block.
    Order is guaranteed per link: ``connecting``, ``connected`` (detail: the banner), the events of
    that session, then ``disconnected`` (detail: why) or ``auth_failed`` (detail: Asterisk's message).
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_event: Callable[[Message], None],
        on_state: Callable[[str, str | None], None] | None = None,
        ping_interval: float = 20.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 5.0,
        action_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        if min(ping_interval, backoff_initial, connect_timeout, action_timeout) <= 0:
            raise ValueError("intervals, timeouts and backoff_initial must be positive")
        if backoff_max < backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        self._host, self._port = host, port
        self._username, self._secret = username, secret
        self._on_event, self._on_state = on_event, on_state
        self._ping_interval = ping_interval
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._connect_timeout, self._action_timeout = connect_timeout, action_timeout
        self._rng = rng if rng is not None else random.Random()
        self._ids = itertools.count(1)  # never reset, so ids stay unique across reconnects
        # ActionID -> (future for the caller, optional hook run synchronously by the reader)
        self._pending: dict[str, tuple[asyncio.Future[Message], Callable[[Message], None] | None]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._connected = False
        self._running = False
        self._failures = 0
        self._state: str | None = None

    @property
    def connected(self) -> bool:
        """True while logged in; actions are accepted only then."""
        return self._connected

    async def run(self) -> None:
        """Keep a logged-in link to Asterisk until cancelled. Never returns otherwise."""
        if self._running:
            raise RuntimeError("AmiClient.run() is already running")
        self._running = True
        try:
            while True:
                delay = await self._one_link()
                await asyncio.sleep(delay)
        finally:
            self._running = False
            if self._state not in (None, "disconnected", "auth_failed"):
                self._set_state("disconnected", "stopped")

    async def _one_link(self) -> float:
        """Run one connection to its end; return how long to wait before the next attempt."""
        where = f"{self._host}:{self._port}"
        self._set_state("connecting", where)
        try:
            await self._session()
        except _AuthFailed as exc:
            # Retrying fast cannot help and floods the PBX's security log; an operator has to act.
            log.error("AMI login to %s refused for user %r: %s", where, self._username, exc)
            self._set_state("auth_failed", str(exc))
            return self._backoff_max
        except (OSError, TimeoutError, PeerProtocolError, _LinkEnded) as exc:
            detail = _describe(exc)
            log.warning("AMI link to %s ended: %s", where, detail)
            self._set_state("disconnected", detail)
        except Exception as exc:  # a bug of ours: keep the daemon's AMI alive, but say it loudly
            log.exception("AMI link to %s failed unexpectedly", where)
            self._set_state("disconnected", _describe(exc))
        delay = backoff_delay(self._failures, self._backoff_initial, self._backoff_max, self._rng)
        self._failures += 1
        return delay

    async def _session(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives as the
        # connection completes (bpo-42130), and a daemon stopping just then would never finish.
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(self._host, self._port)
        banner: asyncio.Future[Banner] = asyncio.get_running_loop().create_future()
        reading = asyncio.create_task(self._read_loop(reader, banner), name="ami-reader")
        self._writer = writer
        try:
            greeting = await self._wait(reading, banner, self._connect_timeout, "the AMI banner")
            login = {"Username": self._username, "Secret": self._secret, "Events": "on"}
            reply = await self._call(reading, "Login", login, lambda r: self._logged_in(r, greeting))
            if not _succeeded(reply):
                raise _AuthFailed(reply.get("Message") or reply.name or "login refused")
            while True:
                # Ping even when events flow: only a Pong proves Asterisk still processes our actions.
                await asyncio.wait({reading}, timeout=self._ping_interval)
                await self._call(reading, "Ping", {})
        finally:
            self._connected = False
            self._writer = None
            reading.cancel()
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(AmiNotConnected("the AMI link dropped before the response"))
            self._pending.clear()
            await asyncio.gather(reading, return_exceptions=True)  # collect its exception, if any
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _logged_in(self, reply: Message, banner: Banner) -> None:
        # Runs inside the reader, before the events that share the Login reply's recv() are
        # dispatched: on_state("connected") must come before any event of the new session.
        if not _succeeded(reply):
            return
        self._connected = True
        self._failures = 0
        log.info("AMI logged in to %s:%s as %r (%s)", self._host, self._port, self._username, banner.text)
        self._set_state("connected", banner.text)

    async def _call(
        self,
        reading: asyncio.Task[None],
        name: str,
        fields: Mapping[str, str],
        on_reply: Callable[[Message], None] | None = None,
    ) -> Message:
        """An action of the session itself (Login, Ping): a missing reply means the link is dead."""
        action_id, future = self._send(name, fields, on_reply)
        try:
            return await self._wait(reading, future, self._action_timeout, f"{name} ({action_id})")
        finally:
            self._pending.pop(action_id, None)

    @staticmethod
    async def _wait(reading: asyncio.Task[None], future: asyncio.Future[_T], limit: float, what: str) -> _T:
        # Waiting on the future itself (not a task around it) keeps the outcome deterministic: the
        # reader resolves it before it can read the EOF that often follows (Login refused, Logoff).
        either: list[asyncio.Future[Any]] = [reading, future]
        await asyncio.wait(either, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if future.done():
            return future.result()
        if reading.done():
            reading.result()  # re-raises why the link ended
            raise _LinkEnded("the AMI reader stopped")
        raise _LinkEnded(f"no reply to {what} within {limit:g} s")

    async def _read_loop(self, reader: asyncio.StreamReader, banner: asyncio.Future[Banner]) -> None:
        conn = AmiClientConnection()
        while True:
            conn.receive_data(await reader.read(_READ_SIZE))
            while (item := conn.next_event()) is not NEED_DATA:
                if isinstance(item, Closed):
                    raise _LinkEnded("Asterisk closed the connection")
                if isinstance(item, Banner):
                    banner.set_result(item)
                elif isinstance(item, Message):
                    self._dispatch(item)

    def _dispatch(self, message: Message) -> None:
        if message.is_response:
            future, on_reply = self._pending.pop(message.action_id or "", (None, None))
            if future is not None and not future.done():
                future.set_result(message)
                if on_reply is not None:
                    on_reply(message)
            else:  # e.g. the reply to an action that already timed out
                log.debug("AMI response with unknown ActionID %r dropped", message.action_id)
            return
        try:
            self._on_event(message)
        except Exception:
            log.exception("on_event failed for AMI event %r", message.name)
        if (message.name or "").lower() == "shutdown":
            # Asterisk closes a few ms later anyway; ending now makes the reason explicit.
            raise _LinkEnded(f"Asterisk is shutting down (Restart: {message.get('Restart', '?')})")

    def _send(
        self, name: str, fields: Mapping[str, str], on_reply: Callable[[Message], None] | None = None
    ) -> tuple[str, asyncio.Future[Message]]:
        if self._writer is None:
            raise AmiNotConnected("no AMI link")
        action_id = f"rd-{next(self._ids)}"
        data = encode_action(name, fields, action_id)  # UsageError on bad input, before any state
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = (future, on_reply)
        self._writer.write(data)
        return action_id, future

    async def action(
        self,
        name: str,
        fields: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (part of the agreed API)
    ) -> Message:
        """Send an action and return its response (``Response: Success``, ``Error``…).

        Raises :class:`AmiNotConnected` when not logged in or when the link drops before the
        response, and :class:`TimeoutError` after ``timeout`` (default ``action_timeout``) seconds.
        Events the action causes (e.g. ``OriginateResponse``) still go to ``on_event``.
        """
        if not self._connected:
            raise AmiNotConnected(f"not logged in to AMI at {self._host}:{self._port}")
        action_id, future = self._send(name, fields or {})
        try:
            return await asyncio.wait_for(future, self._action_timeout if timeout is None else timeout)
        finally:
            self._pending.pop(action_id, None)

    def _set_state(self, state: str, detail: str | None) -> None:
        self._state = state
        if self._on_state is None:
            return
        try:
            self._on_state(state, detail)
        except Exception:
            log.exception("on_state failed for AMI state %r", state)


def _succeeded(reply: Message) -> bool:
    return (reply.name or "").lower() == "success"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    if isinstance(exc, (_LinkEnded, PeerProtocolError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
