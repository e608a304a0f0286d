"""AgiServer over real loopback TCP, against a fake Asterisk that replays the captures.

The fake writes Asterisk's chunks exactly as captured and, for each chunk our side sent in the
capture, reads exactly that many bytes from the server and requires them to be identical. So a
passing replay proves the server speaks byte-for-byte like the FastAGI server that made the
capture, including the half-close and the wait for Asterisk's final HANGUP and FIN.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from pbx.agi.protocol import Response, originate_spy
from pbx.agi.server import AgiClosedError, AgiServer, AgiSession
from support.captures import FIXTURES, chunks, sidecar

AGI = FIXTURES / "agi"
Handler = Callable[[AgiSession], Awaitable[None]]


async def fake_asterisk(port: int, capture: Path, *, gate: asyncio.Event | None = None) -> None:
    """Replay ``capture`` as Asterisk. ``gate``: wait for it after the first chunk."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(5):
            for i, chunk in enumerate(chunks(capture)):
                if chunk.src == "asterisk":
                    if chunk.data:
                        writer.write(chunk.data)
                        await writer.drain()
                    else:
                        writer.write_eof()
                elif chunk.data:
                    assert await reader.readexactly(len(chunk.data)) == chunk.data
                else:
                    assert await reader.read(1) == b""  # the server half-closed
                if i == 0 and gate is not None:
                    await gate.wait()
            assert await reader.read() == b""  # and is now fully closed
    finally:
        writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[AgiServer]]]:
    """Start AgiServers on a free port; a handler's unexpected exception fails the test (the
    server itself only logs it, which is the behaviour under test elsewhere)."""
    servers: list[AgiServer] = []
    errors: list[BaseException] = []

    async def start(handler: Handler, *, allow_errors: bool = False, **kwargs: float) -> AgiServer:
        async def checked(session: AgiSession) -> None:
            try:
                await handler(session)
            except Exception as exc:
                if not allow_errors:
                    errors.append(exc)
                raise

        server = AgiServer(checked, **kwargs)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()
    assert not errors


def replaying_handler(capture: Path, seen: list[AgiSession]) -> Handler:
    """A handler that sends the capture's commands as raw lines and checks every answer."""
    commands = sidecar(capture)["commands"]

    async def handler(session: AgiSession) -> None:
        seen.append(session)
        assert dict(session.env.values) == sidecar(capture)["env"]
        for cmd in commands:
            r = await session.command(cmd["sent"])
            lines = [x for x in cmd["received_lines"] if x != "HANGUP"]
            assert f"{r.code}{'-' if r.usage else ' '}{r.text}" == lines[0]

    return handler


@pytest.mark.parametrize("name", [p.stem for p in sorted(AGI.glob("*.txt"))])
async def test_replay_every_capture(name: str, serve: Callable[..., Awaitable[AgiServer]]) -> None:
    capture = AGI / f"{name}.txt"
    seen: list[AgiSession] = []
    server = await serve(replaying_handler(capture, seen))
    await fake_asterisk(server.port, capture)
    await server.close()
    assert len(seen) == 1
    assert seen[0].closed


async def test_hangup_during_stream_file(
    serve: Callable[..., Awaitable[AgiServer]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pbx.agi")
    results: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        assert session.env.uniqueid == "1795323205.12"
        assert session.env.calleridname == "SIPp Caller"
        results["uniqueid"] = await session.get_variable("UNIQUEID")
        assert not session.hung_up
        played = await session.stream_file("custom/agent-speech")
        results["hung_up_after_stream"] = session.hung_up
        await session.wait_hangup()  # the unsolicited HANGUP that follows the -1
        results["again"] = await session.get_variable("UNIQUEID")
        results["beep"] = await session.stream_file("beep")
        results["status"] = await session.command("CHANNEL STATUS")
        results["set"] = await session.set_variable("RECORDER_STATUS", "after-hangup")
        results["played"] = played

    server = await serve(handler, close_timeout=5.0)
    await fake_asterisk(server.port, AGI / "hangup-during-stream-file.txt")
    await server.close()
    played = results["played"]
    assert isinstance(played, Response)
    assert played.hangup
    assert played.endpos == 24000
    assert results["hung_up_after_stream"] is True
    assert results["uniqueid"] == results["again"] == "1795323205.12"
    beep = results["beep"]
    assert isinstance(beep, Response)
    assert beep.dead_channel
    assert results["set"] == Response(200, 1, None, None, "result=1")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_recording_sequence_with_helpers(serve: Callable[..., Awaitable[AgiServer]]) -> None:
    async def handler(session: AgiSession) -> None:
        uid = await session.get_variable("UNIQUEID")
        assert uid is not None
        assert uid == session.env.uniqueid
        spy = originate_spy("127.0.0.1:9092", uuid.UUID("3b822974-3568-4aae-8706-5af766fb4539"), uid)
        assert (await session.command(spy)).result == 0
        assert (await session.exec("Playback", "beep")).result == 0
        assert (await session.stream_file("beep")).endpos == 3404
        await session.command("SET VARIABLE RECORDING_ID 8d460e2fcbbe43bab466c6583553aa80")

    server = await serve(handler)
    await fake_asterisk(server.port, AGI / "recording-sequence-sip.txt")


async def test_bad_env_closes_only_that_connection(
    serve: Callable[..., Awaitable[AgiServer]], caplog: pytest.LogCaptureFixture
) -> None:
    capture = AGI / "local-inbound.txt"
    seen: list[AgiSession] = []
    server = await serve(replaying_handler(capture, seen))
    gate = asyncio.Event()
    good = asyncio.create_task(fake_asterisk(server.port, capture, gate=gate))

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nthis is not an agi line\n\n")
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the server, nothing sent
    writer.close()
    gate.set()
    await good
    assert len(seen) == 1
    assert any("protocol error" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_handler_failure_is_contained(
    serve: Callable[..., Awaitable[AgiServer]], caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def handler(session: AgiSession) -> None:
        nonlocal calls
        calls += 1
        await session.verbose("recorder: inbound call 1795323123.1", 1)
        raise RuntimeError("boom")

    server = await serve(handler, allow_errors=True)
    capture = AGI / "local-inbound.txt"
    for _ in range(2):  # the server survives and still ends each conversation properly
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for c in [c for c in chunks(capture) if c.src == "asterisk"][:2]:
            writer.write(c.data)
        async with asyncio.timeout(5):
            assert await reader.readline() == b'VERBOSE "recorder: inbound call 1795323123.1" 1\n'
            writer.write(b"200 result=1\n")
            assert await reader.read() == b""  # half-closed after the failure
            writer.write(b"HANGUP\n")
            writer.write_eof()
        writer.close()
    assert calls == 2
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError, RuntimeError]


async def test_idle_hangup_wakes_the_handler_and_timeout_closes(
    serve: Callable[..., Awaitable[AgiServer]],
) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(session: AgiSession) -> None:
        await session.wait_hangup()  # e.g. while waiting for the AudioSocket stream
        assert session.hung_up
        try:
            await session.command("GET VARIABLE UNIQUEID", timeout=0.2)
        except TimeoutError:
            outcome.set_result("timeout")
        with pytest.raises(AgiClosedError):
            await session.command("NOOP")

    server = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_uniqueid: 1.1\n\nHANGUP\n")
    async with asyncio.timeout(5):
        assert await reader.readline() == b"GET VARIABLE UNIQUEID\n"
        assert await reader.read() == b""  # no answer: the server gives up on the connection
        assert await outcome == "timeout"
    writer.close()


async def test_env_timeout_and_early_eof(serve: Callable[..., Awaitable[AgiServer]]) -> None:
    called = False

    async def handler(session: AgiSession) -> None:
        nonlocal called
        called = True

    server = await serve(handler, env_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n")  # never finishes the environment
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write_eof()  # a port probe: connect and close
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    assert not called


async def test_close_cancels_stuck_handlers(serve: Callable[..., Awaitable[AgiServer]]) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await serve(handler, close_timeout=0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n\n")
    await started.wait()
    async with asyncio.timeout(5):
        await server.close()
        assert cancelled.is_set()
        assert await reader.read() == b""
    writer.close()
