"""AmiClient over real loopback TCP against a fake AMI server that replays Asterisk 20 captures.

Every wait is on an asyncio.Event or future (via ``Watch.until`` / queues), never a sleep; the
timeouts only bound a failing test.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pbx.ami.client import AmiClient, AmiNotConnected
from pbx.ami.protocol import Message
from support.captures import FIXTURES, from_asterisk

AMI = FIXTURES / "ami"
LOCAL = from_asterisk(AMI / "local-call.txt")  # banner, login ok (a1), originate ok (a2), events…
PINGS = from_asterisk(AMI / "ping-coresettings.txt")  # …, Pong (a2), CoreSettings (a3), …
WRONG = from_asterisk(AMI / "login-wrong-secret.txt")  # banner, Error (b1), FIN
SHUTDOWN = from_asterisk(AMI / "shutdown-core-stop-now.txt")  # banner, login ok (s1), Shutdown, FIN
SPY = from_asterisk(AMI / "spy-originate-local.txt")
SIP = from_asterisk(AMI / "sip-call.txt")
USER, SECRET = "recorder", "recorder-secret"
LIMIT = 5.0  # bounds a failing wait; passing tests never get near it


def with_id(chunk: bytes, old: str, new: str) -> bytes:
    """Replay a recorded reply for our own ActionID (the client numbers its actions itself)."""
    before, after = f"ActionID: {old}\r\n".encode(), f"ActionID: {new}\r\n".encode()
    assert before in chunk
    return chunk.replace(before, after)


def event_names(data: bytes) -> list[str]:
    """Event names straight from the raw bytes, independent of the parser under test."""
    return [line[7:].decode() for line in data.split(b"\r\n") if line.startswith(b"Event: ")]


class Peer:
    """One accepted connection, seen from the fake Asterisk."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.actions: list[dict[str, str]] = []

    async def read_action(self) -> dict[str, str] | None:
        try:
            block = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        fields = dict(line.split(": ", 1) for line in block.decode().split("\r\n") if line)
        self.actions.append(fields)
        return fields

    async def send(self, *chunks: bytes) -> None:
        try:
            for chunk in chunks:  # one write per recorded recv(), as Asterisk sent them
                self.writer.write(chunk)
                await self.writer.drain()
        except ConnectionError:
            pass  # the client hung up on us, which some tests expect

    async def login(self, banner: bytes = LOCAL[0], reply: bytes = LOCAL[1], old_id: str = "a1") -> str:
        await self.send(banner)
        action = await self.read_action()
        assert action is not None
        assert action["Action"] == "Login"
        assert (action["Username"], action["Secret"], action["Events"]) == (USER, SECRET, "on")
        await self.send(with_id(reply, old_id, action["ActionID"]))
        return action["ActionID"]

    async def serve(self, answer: Callable[[Peer, dict[str, str]], Awaitable[None]] | None = None) -> None:
        """Answer Pings with the recorded Pong; hand other actions to ``answer``; stop at EOF."""
        while (action := await self.read_action()) is not None:
            if action["Action"] == "Ping":
                await self.send(with_id(PINGS[2], "a2", action["ActionID"]))
            elif answer is not None:
                await answer(self, action)

    def close(self) -> None:
        self.writer.close()


Scenario = Callable[[Peer], Awaitable[None]]


async def logged_in(peer: Peer) -> None:
    await peer.login()
    await peer.serve()


class FakeAmi:
    """Loopback server: the n-th connection runs ``scenarios[n]`` (the last one repeats)."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.scenarios = scenarios
        self.peers: asyncio.Queue[Peer] = asyncio.Queue()
        self.count = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[Exception] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(reader, writer)
        scenario = self.scenarios[min(self.count, len(self.scenarios) - 1)]
        self.count += 1
        self.peers.put_nowait(peer)
        try:
            await scenario(peer)
        except Exception as exc:  # surfaced by running(), or the test would only see a symptom
            self.errors.append(exc)
        finally:
            peer.close()

    async def next_peer(self) -> Peer:
        async with asyncio.timeout(LIMIT):
            return await self.peers.get()


class Watch:
    """Collects on_event / on_state calls and lets a test wait for a condition on them."""

    def __init__(self, raise_on: str | None = None) -> None:
        self.events: list[Message] = []
        self.states: list[tuple[str, str | None]] = []
        self.timeline: list[str] = []  # states and event names, interleaved as they happened
        self._changed = asyncio.Event()
        self._raise_on = raise_on

    def on_event(self, message: Message) -> None:
        self.events.append(message)
        self.timeline.append(f"event:{message.name}")
        self._changed.set()
        if message.name == self._raise_on:
            raise RuntimeError("a bug in the daemon's event handler")

    def on_state(self, state: str, detail: str | None) -> None:
        self.states.append((state, detail))
        self.timeline.append(state)
        self._changed.set()

    def count(self, state: str) -> int:
        return sum(1 for s, _ in self.states if s == state)

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(LIMIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def running(
    scenarios: list[Scenario], watch: Watch, **options: Any
) -> AsyncIterator[tuple[FakeAmi, AmiClient]]:
    fake = FakeAmi(scenarios)
    server = await asyncio.start_server(fake._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options = {"backoff_initial": 0.01, "backoff_max": 0.05, "connect_timeout": 2.0, **options}
    client = AmiClient(
        "127.0.0.1", port, USER, SECRET, on_event=watch.on_event, on_state=watch.on_state, **options
    )
    task = asyncio.create_task(client.run())
    try:
        yield fake, client
        assert not fake.errors, fake.errors
        assert not task.done(), "run() must survive everything the server does"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        for t in fake._tasks:
            t.cancel()
        await asyncio.gather(*fake._tasks, return_exceptions=True)
        await server.wait_closed()


# --- tests ------------------------------------------------------------------------------------


async def test_login_and_event_delivery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pbx.ami")
    replay = LOCAL[2:-1]  # Originate reply (nobody asked: dropped), every event, Goodbye; no FIN
    expected = event_names(LOCAL[1] + b"".join(replay))
    watch = Watch(raise_on="Newexten")  # a failing handler must not stop delivery

    async def scenario(peer: Peer) -> None:
        await peer.login()
        await peer.send(*replay)
        await peer.serve()

    async with running([scenario], watch) as (_fake, client):
        await watch.until(lambda: len(watch.events) == len(expected))
        assert [m.name for m in watch.events] == expected
        assert expected[:2] == ["FullyBooted", "SuccessfulAuth"]
        assert "Hangup" in expected
        # The login reply shares its recv() with FullyBooted/SuccessfulAuth: "connected" comes first.
        assert watch.timeline[:3] == ["connecting", "connected", "event:FullyBooted"]
        assert watch.states[1] == ("connected", "Asterisk Call Manager/9.0.0")
        assert len(watch.states) == 2
        assert client.connected
    assert "on_event failed" in caplog.text
    assert watch.states[-1] == ("disconnected", "stopped")
    assert SECRET not in caplog.text


async def test_wrong_secret_reports_auth_failed_and_keeps_retrying(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pbx.ami")

    async def refused(peer: Peer) -> None:
        await peer.send(WRONG[0])
        action = await peer.read_action()
        assert action is not None
        assert action["Action"] == "Login"
        await peer.send(with_id(WRONG[1], "b1", action["ActionID"]))
        # WRONG[2] is the FIN: the handler returning closes the socket.

    watch = Watch()
    async with running([refused], watch, backoff_max=0.05) as (_fake, client):
        await watch.until(lambda: watch.count("auth_failed") >= 2)  # retried at backoff_max
        assert ("auth_failed", "Authentication failed") in watch.states
        assert watch.count("connected") == 0
        assert not client.connected
        with pytest.raises(AmiNotConnected):
            await client.action("Ping")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "pbx.ami"]
    assert errors
    assert all(USER in r.getMessage() for r in errors)
    assert SECRET not in caplog.text


async def test_shutdown_then_reconnect() -> None:
    watch = Watch()
    reconnected = asyncio.Event()

    async def shutting_down(peer: Peer) -> None:
        await peer.login(SHUTDOWN[0], SHUTDOWN[1], "s1")
        await watch.until(lambda: watch.count("connected") == 1)
        await peer.send(SHUTDOWN[2])  # Event: Shutdown, then (handler returns) FIN

    async def back_again(peer: Peer) -> None:
        await peer.login()
        reconnected.set()
        await peer.serve()

    async with running([shutting_down, back_again], watch) as (fake, client):
        first, second = await fake.next_peer(), await fake.next_peer()
        async with asyncio.timeout(LIMIT):
            await reconnected.wait()
        await watch.until(lambda: watch.count("connected") == 2)
        assert "Shutdown" in [m.name for m in watch.events]
        assert [s for s, _ in watch.states] == [
            "connecting",
            "connected",
            "disconnected",
            "connecting",
            "connected",
        ]
        assert "shutting down" in (watch.states[2][1] or "")
        logins = [a["ActionID"] for p in (first, second) for a in p.actions if a["Action"] == "Login"]
        assert len(logins) == 2
        assert len(set(logins)) == 2
        assert (await client.action("Ping")).get("Ping") == "Pong"


async def test_actions_get_their_own_response_amid_events() -> None:
    got_both = asyncio.Event()
    seen: dict[str, str] = {}

    async def answer(peer: Peer, action: dict[str, str]) -> None:
        seen[action["Action"]] = action["ActionID"]
        if len(seen) < 2:
            return
        got_both.set()
        stream = b"".join(
            [
                *SIP[3:6],
                with_id(PINGS[3], "a3", seen["CoreSettings"]),
                b"Response: Success\r\nActionID: nobody-asked\r\n\r\n",
                *SIP[6:9],
                with_id(PINGS[4], "a4", seen["CoreStatus"]),
                SIP[9],
            ]
        )
        rng = random.Random(7)
        cuts = sorted(rng.sample(range(1, len(stream)), 60))
        await peer.send(*(stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)))

    async def scenario(peer: Peer) -> None:
        await peer.login()
        await peer.serve(answer)

    watch = Watch()
    async with running([scenario], watch) as (_fake, client):
        await watch.until(lambda: client.connected)
        settings, status = await asyncio.gather(client.action("CoreSettings"), client.action("CoreStatus"))
        assert got_both.is_set()
        assert settings.action_id == seen["CoreSettings"]
        assert settings.get("AsteriskVersion") == "20.20.1"
        assert status.action_id == seen["CoreStatus"]
        assert status.get("CoreStartupDate") is not None
        expected = event_names(LOCAL[1] + b"".join(SIP[3:10]))
        await watch.until(lambda: len(watch.events) == len(expected))
        assert [m.name for m in watch.events] == expected


async def test_originate_response_event_does_not_answer_the_action() -> None:
    # The OriginateResponse event carries the Originate's ActionID and a "Response:" field; sent first
    # here, it must reach on_event and leave the action waiting for the real response.
    async def answer(peer: Peer, action: dict[str, str]) -> None:
        if action["Action"] == "Originate":
            blocks = b"".join(SPY).split(b"\r\n\r\n")
            event = next(
                b for b in blocks if b.startswith(b"Event: OriginateResponse") and b"ActionID: a3" in b
            )
            event += b"\r\n\r\n"
            await peer.send(
                with_id(event, "a3", action["ActionID"]), with_id(SPY[3], "a2", action["ActionID"])
            )

    async def scenario(peer: Peer) -> None:
        await peer.login()
        await peer.serve(answer)

    watch = Watch()
    async with running([scenario], watch) as (_fake, client):
        await watch.until(lambda: client.connected)
        reply = await client.action(
            "Originate", {"Channel": "AudioSocket/127.0.0.1:9092/x/c(slin)", "Async": "true"}
        )
        assert reply.is_response
        assert reply.get("Message") == "Originate successfully queued"
        event = next(m for m in watch.events if m.name == "OriginateResponse")
        assert event.action_id == reply.action_id
        assert event.get("Response") == "Success"


async def test_pending_action_fails_when_the_link_drops() -> None:
    asked = asyncio.Event()

    async def drop_on_action(peer: Peer) -> None:
        await peer.login()

        async def answer(peer: Peer, action: dict[str, str]) -> None:
            asked.set()
            peer.writer.transport.abort()  # no reply; a reset rather than a polite FIN

        await peer.serve(answer)

    watch = Watch()
    async with running([drop_on_action, logged_in], watch) as (_fake, client):
        await watch.until(lambda: client.connected)
        with pytest.raises(AmiNotConnected):
            await client.action("CoreStatus")
        assert asked.is_set()
        await watch.until(lambda: watch.count("connected") == 2)
        assert (await client.action("Ping")).get("Ping") == "Pong"


@pytest.mark.parametrize(
    "garbage",
    [
        b"this line has no colon\r\n\r\n",
        b"Event: Newchannel\r\nCallerIDName: \x82\xa0\r\n\r\n",
        b"X" * 100_000,
    ],
    ids=["no-colon", "not-utf8", "100kb-line"],
)
async def test_malformed_server_closes_only_the_link(
    garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def malformed(peer: Peer) -> None:
        await peer.login()
        await peer.send(garbage)
        await peer.serve()

    watch = Watch()
    async with running([malformed, logged_in], watch) as (_fake, client):
        await watch.until(lambda: watch.count("connected") == 2)
        assert watch.states[2][0] == "disconnected"
        assert (await client.action("Ping")).get("Ping") == "Pong"
    assert any(r.levelno == logging.WARNING and "ended" in r.getMessage() for r in caplog.records)


async def test_missing_pong_means_a_dead_link() -> None:
    async def silent(peer: Peer) -> None:
        await peer.login()
        while await peer.read_action() is not None:
            pass  # reads the Pings, never answers: a hung Asterisk

    watch = Watch()
    async with running([silent, logged_in], watch, ping_interval=0.05, action_timeout=0.2):
        await watch.until(lambda: watch.count("connected") == 2)
        assert "no reply to Ping" in (watch.states[2][1] or "")


async def test_action_timeout_keeps_the_link() -> None:
    late: list[str] = []

    async def answer(peer: Peer, action: dict[str, str]) -> None:
        if action["Action"] == "CoreStatus":
            late.append(action["ActionID"])  # answered only after the next action arrives
        elif late:
            await peer.send(with_id(PINGS[4], "a4", late.pop()), with_id(PINGS[3], "a3", action["ActionID"]))

    async def scenario(peer: Peer) -> None:
        await peer.login()
        await peer.serve(answer)

    watch = Watch()
    async with running([scenario], watch) as (_fake, client):
        await watch.until(lambda: client.connected)
        with pytest.raises(TimeoutError):
            await client.action("CoreStatus", timeout=0.1)
        reply = await client.action("CoreSettings")  # the late CoreStatus reply arrives first: dropped
        assert reply.get("AMIversion") == "9.0.0"
        assert client.connected
        assert watch.count("disconnected") == 0


class SpyRandom(random.Random):
    """Records the upper bound of each backoff draw and sleeps 0 s, so the test runs fast."""

    def __init__(self) -> None:
        super().__init__(0)
        self.bounds: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append(b)
        return a


async def test_backoff_grows_is_capped_and_resets_after_login() -> None:
    async def hang_up(peer: Peer) -> None:
        return  # FIN before the banner

    async def login_then_hang_up(peer: Peer) -> None:
        await peer.login()

    rng = SpyRandom()
    watch = Watch()
    scenarios = [hang_up] * 4 + [login_then_hang_up, hang_up, logged_in]
    async with running(scenarios, watch, backoff_initial=0.01, backoff_max=0.04, rng=rng) as (_fake, _client):
        await watch.until(lambda: watch.count("connected") == 2)
        assert rng.bounds == pytest.approx([0.01, 0.02, 0.04, 0.04, 0.01, 0.02])


async def test_connection_refused_is_retried() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    watch = Watch()
    client = AmiClient(
        "127.0.0.1",
        port,
        USER,
        SECRET,
        on_event=watch.on_event,
        on_state=watch.on_state,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    task = asyncio.create_task(client.run())
    try:
        await watch.until(lambda: watch.count("disconnected") >= 3)
        assert "ConnectionRefusedError" in (watch.states[1][1] or "")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
