"""The simulated AMI server: banner, Login, Ping, Logoff, events, and ``core stop now``.

Byte layouts are copied from ``ami/ping-coresettings.txt``, ``ami/login-wrong-secret*.txt`` and
``ami/shutdown-core-stop-now*.txt``. Lines end in ``\\r\\n``; like manager.c we also accept a bare
``\\n`` from clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable

from pbx.simulator.channel import Fields
from pbx.simulator.clock import SimClock

__all__ = ["AmiServer"]

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
_WRONG_SECRET_DELAY_S = 1.0  # manager.c sleeps about 1 s before answering a failed Login
_CORE_SETTINGS = (
    ("AMIversion", "9.0.0"),
    ("AsteriskVersion", "20.20.1"),
    ("SystemName", ""),
    ("CoreMaxCalls", "0"),
    ("CoreMaxLoadAvg", "0.000000"),
    ("CoreRunUser", ""),
    ("CoreRunGroup", ""),
    ("CoreMaxFilehandles", "0"),
    ("CoreRealTimeEnabled", "No"),
    ("CoreCDRenabled", "No"),
    ("CoreHTTPenabled", "No"),
    ("SoundsSearchCustomDir", "No"),
)


def _block(*fields: tuple[str, str]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\n"


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.classes: frozenset[str] | None = None  # None: every event class
        self.session_id = f"0x{secrets.randbits(44):x}"
        self.local = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = writer.get_extra_info("peername") or ("127.0.0.1", 0)

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def wants(self, privilege: str) -> bool:
        if not self.authenticated:
            return False
        return self.classes is None or any(c in self.classes for c in privilege.split(",") if c != "all")

    def addresses(self) -> list[tuple[str, str]]:
        return [
            ("SessionID", self.session_id),
            ("LocalAddress", f"IPV4/TCP/{self.local[0]}/{self.local[1]}"),
            ("RemoteAddress", f"IPV4/TCP/{self.remote[0]}/{self.remote[1]}"),
        ]


class AmiServer:
    def __init__(self, clock: SimClock, username: str, secret: str, current_calls: Callable[[], int],
                 read: frozenset[str] | None = None) -> None:  # fmt: skip
        """``read``: the user's ``read =`` classes in manager.conf (None: ``all``, as in the captures);
        Asterisk sends a session only events of classes both its user and its ``Events:`` allow."""
        self._read = read
        self._clock = clock
        self._username = username
        self._secret = secret
        self._current_calls = current_calls
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        # Every action a client sent, by name as written ("Login", "Ping", "Originate"): what
        # Asterisk's "manager set debug on" shows, so tests can tell what the daemon asked for.
        self.actions: list[str] = []
        self._started_at = clock.wall()
        self.processed_calls = 0
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._started_at = self._clock.wall()
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    # -- events --------------------------------------------------------------------------------

    def publish(self, name: str, privilege: str, fields: Fields) -> None:
        """Send one event to every logged-in session that subscribed to its class."""
        head = (("Event", name), ("Privilege", privilege), ("Timestamp", self._clock.timestamp()))
        data = _block(*head, *fields)
        if self._read is not None and not any(c in self._read for c in privilege.split(",") if c != "all"):
            return
        for s in list(self._sessions):
            if s.wants(privilege):
                s.send(data)

    # -- lifecycle -----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """``core stop now``: ``Event: Shutdown`` to logged-in clients, then FIN to everyone."""
        if self._server is not None:
            self._server.close()
        self.publish("Shutdown", "system,all", [("Shutdown", "Cleanly"), ("Restart", "False")])
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in list(self._sessions):
            s.writer.close()  # flushes what is buffered, then FIN; the reader then sees EOF
        # Not cancelled: asyncio logs cancelled stream handlers as errors; they end on EOF.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- one connection ------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = _Session(reader, writer)
        self._sessions.add(session)
        try:
            session.send(BANNER)
            while (action := await self._read_action(reader)) is not None:
                if not await self._handle(session, action):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._sessions.discard(session)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    @staticmethod
    async def _read_action(reader: asyncio.StreamReader) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                return None  # EOF (a partial last line is dropped, as manager.c does)
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                if headers:
                    return headers
                continue
            key, sep, value = text.partition(":")
            if sep:
                headers.setdefault(key.strip().lower(), value.lstrip(" \t"))

    async def _handle(self, s: _Session, m: dict[str, str]) -> bool:
        """Answer one action; False when the connection must close."""
        self.actions.append(m.get("action", ""))
        action = m.get("action", "").lower()
        aid = [("ActionID", m["actionid"])] if "actionid" in m else []

        def reply(response: str, *fields: tuple[str, str]) -> None:
            s.send(_block(("Response", response), *aid, *fields))

        if not action:
            reply("Error", ("Message", "Missing action in request"))
        elif action == "login":
            return await self._login(s, m, reply)
        elif action == "logoff":
            reply("Goodbye", ("Message", "Thanks for all the fish."))
            return False
        elif not s.authenticated:
            reply("Error", ("Message", "Permission denied"))
        elif action == "ping":
            reply("Success", ("Ping", "Pong"), ("Timestamp", self._clock.timestamp()))
        elif action == "coresettings":
            reply("Success", *_CORE_SETTINGS)
        elif action == "corestatus":
            reply("Success", *self._core_status())
        else:
            reply("Error", ("Message", "Invalid/unknown command"))
        return True

    async def _login(self, s: _Session, m: dict[str, str], reply: Callable[..., None]) -> bool:
        user = m.get("username", "")
        if user == self._username and m.get("secret") == self._secret:
            s.authenticated = True
            s.classes = _event_classes(m.get("events"))
            uptime = str(int(self._clock.wall() - self._started_at))
            reply("Success", ("Message", "Authentication accepted"))
            booted = (("Uptime", uptime), ("LastReload", uptime), ("Status", "Fully Booted"))
            if self._read is None or "system" in self._read:  # a user without it never sees it
                s.send(_block(("Event", "FullyBooted"), ("Privilege", "system,all"), *booted))
            tv = self._clock.event_tv()
            self.publish(
                "SuccessfulAuth",
                "security,all",
                [
                    ("EventTV", tv),
                    ("Severity", "Informational"),
                    ("Service", "AMI"),
                    ("EventVersion", "1"),
                    ("AccountID", user),
                    *s.addresses(),
                    ("UsingPassword", "0"),
                    ("SessionTV", tv),
                ],
            )
            return True
        # Other clients hear about it at once; the failing client waits about a second.
        name, version = ("InvalidPassword", "2") if user == self._username else ("InvalidAccountID", "1")
        head = [("EventTV", self._clock.event_tv()), ("Severity", "Error"), ("Service", "AMI")]
        tail = [("EventVersion", version), ("AccountID", user), *s.addresses()]
        self.publish(name, "security,all", [*head, *tail, ("SessionTV", "1970-01-01T00:00:00.000+0000")])
        await self._clock.sleep(_WRONG_SECRET_DELAY_S)
        reply("Error", ("Message", "Authentication failed"))
        return False

    def _core_status(self) -> list[tuple[str, str]]:
        started = time.gmtime(self._started_at)
        date, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
        return [
            ("CoreStartupDate", date),
            ("CoreStartupTime", clock),
            ("CoreReloadDate", date),
            ("CoreReloadTime", clock),
            ("CoreCurrentCalls", str(self._current_calls())),
            ("CoreProcessedCalls", str(self.processed_calls)),
        ]


def _event_classes(events: str | None) -> frozenset[str] | None:
    """Login ``Events:``: on/absent = everything, off = nothing, else a list of classes."""
    if events is None or events.strip().lower() in ("on", "yes", "true", "all"):
        return None
    if events.strip().lower() in ("off", "no", "false"):
        return frozenset()
    return frozenset(c.strip().lower() for c in events.split(","))
