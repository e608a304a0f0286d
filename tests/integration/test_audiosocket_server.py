"""AudioSocketServer over real loopback TCP, fed with the Asterisk 20.20.1 captures."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from pbx.audiosocket.protocol import Audio, AudioSocketParser, encode_audio, encode_hangup, encode_uuid
from pbx.audiosocket.server import AudioSocketPeer, AudioSocketServer
from support.captures import audiosocket_captures, sidecar

CAPTURES = audiosocket_captures()


class Recorder:
    """A handler that keeps what it gets and resolves ``closed`` with the close reason."""

    def __init__(self, peer: AudioSocketPeer) -> None:
        self.peer = peer
        self.payloads: list[bytes] = []
        self.closed: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.first_audio = asyncio.Event()

    def audio_received(self, payload: bytes) -> None:
        self.payloads.append(payload)
        self.first_audio.set()

    def connection_closed(self, error: str | None) -> None:
        assert not self.closed.done(), "connection_closed called twice"
        self.closed.set_result(error)


class Accept:
    """on_connect: record every connection; refuse the UUIDs in ``refuse``."""

    def __init__(self, refuse: set[uuid.UUID] | None = None) -> None:
        self.refuse = refuse or set()
        self.recorders: dict[uuid.UUID, Recorder] = {}
        self.arrived: dict[uuid.UUID, asyncio.Event] = {}

    def __call__(self, u: uuid.UUID, peer: AudioSocketPeer) -> Recorder | None:
        assert peer.uuid == u
        self.arrived.setdefault(u, asyncio.Event()).set()
        if u in self.refuse:
            return None
        self.recorders[u] = Recorder(peer)
        return self.recorders[u]

    async def wait(self, u: uuid.UUID) -> None:
        await self.arrived.setdefault(u, asyncio.Event()).wait()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[AudioSocketServer]]]:
    servers: list[AudioSocketServer] = []

    async def start(on_connect: Accept, **kwargs: float) -> AudioSocketServer:
        server = AudioSocketServer(on_connect, **kwargs)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def frames_of(path: Path) -> list[bytes]:
    parser = AudioSocketParser()
    parser.receive_data(path.read_bytes())
    parser.receive_data(b"")
    return [e.payload for e in parser.events() if isinstance(e, Audio)]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
async def test_capture_over_tcp(path: Path, serve: Callable[..., Awaitable[AudioSocketServer]]) -> None:
    accept = Accept()
    server = await serve(accept)
    data = path.read_bytes()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    pos = 0
    for _t, n in sidecar(path)["recv"]:  # the real recv() chunking, without the real pauses
        writer.write(data[pos : pos + n])
        pos += n
    await writer.drain()
    writer.write_eof()  # Asterisk never sends 0x00: EOF is the hangup
    u = uuid.UUID(sidecar(path)["uuid"])
    async with asyncio.timeout(5):
        await accept.wait(u)
        assert await accept.recorders[u].closed is None
        assert await reader.read() == b""
    writer.close()
    assert accept.recorders[u].payloads == frames_of(path)
    assert len(accept.recorders[u].payloads) == sidecar(path)["frame_count"]


async def test_refused_uuid(
    serve: Callable[..., Awaitable[AudioSocketServer]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pbx.audiosocket")
    u = uuid.uuid4()
    server = await serve(Accept(refuse={u}))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_uuid(u) + encode_audio(b"\0" * 320))
    async with asyncio.timeout(5):
        assert await reader.read() == encode_hangup()  # 0x00 tells Asterisk to end the channel, then FIN
    writer.close()
    assert any("refused" in r.getMessage() for r in caplog.records)


async def test_protocol_error_closes_only_that_connection(
    serve: Callable[..., Awaitable[AudioSocketServer]],
) -> None:
    accept = Accept()
    server = await serve(accept)
    good, bad = uuid.uuid4(), uuid.uuid4()
    frame = encode_audio(bytes(range(160)) * 2)

    _gr, gw = await asyncio.open_connection("127.0.0.1", server.port)
    gw.write(encode_uuid(good) + frame)
    br, bw = await asyncio.open_connection("127.0.0.1", server.port)
    bw.write(encode_uuid(bad) + frame + b"\x10\xff\xff")  # a 65535-byte claim
    async with asyncio.timeout(5):
        reason = await _closed(accept, bad)
        assert reason is not None
        assert reason.startswith("protocol error:")
        assert await read_until_closed(br) == b""
        gw.write(frame * 3)
        gw.write_eof()
        assert await _closed(accept, good) is None
    assert accept.recorders[good].payloads == [frame[3:]] * 4
    assert accept.recorders[bad].payloads == [frame[3:]]
    for w in (gw, bw):
        w.close()


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before closing; an abort may show as EOF or as a reset."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def _closed(accept: Accept, u: uuid.UUID) -> str | None:
    await accept.wait(u)
    return await accept.recorders[u].closed


async def test_handler_error_and_uuid_timeout(
    serve: Callable[..., Awaitable[AudioSocketServer]], caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(Recorder):
        def audio_received(self, payload: bytes) -> None:
            raise ValueError("disk full")

    failing: list[Failing] = []
    connected = asyncio.Event()

    def on_connect(u: uuid.UUID, peer: AudioSocketPeer) -> Failing:
        failing.append(Failing(peer))
        connected.set()
        return failing[-1]

    server = await serve(on_connect, uuid_timeout=0.2)
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_uuid(uuid.uuid4()) + encode_audio(b"\0" * 320))
    async with asyncio.timeout(5):
        await connected.wait()
        assert (await failing[0].closed or "").startswith("handler error: ValueError")
    writer.close()
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)

    silent_r, silent_w = await asyncio.open_connection("127.0.0.1", server.port)  # never sends a UUID
    async with asyncio.timeout(5):
        assert await read_until_closed(silent_r) == b""
    silent_w.close()


async def test_peer_hangup_and_server_close(serve: Callable[..., Awaitable[AudioSocketServer]]) -> None:
    accept = Accept()
    server = await serve(accept)
    a, b = uuid.uuid4(), uuid.uuid4()
    ar, aw = await asyncio.open_connection("127.0.0.1", server.port)
    aw.write(encode_uuid(a) + encode_audio(b"\0" * 320))
    br, bw = await asyncio.open_connection("127.0.0.1", server.port)
    bw.write(encode_uuid(b) + encode_audio(b"\0" * 320))
    async with asyncio.timeout(5):
        await accept.wait(a)
        await accept.recorders[a].first_audio.wait()
        accept.recorders[a].peer.hangup()  # we end the stream: 0x00, then FIN
        assert await ar.read() == encode_hangup()
        assert await accept.recorders[a].closed is None
        await accept.wait(b)
        cr, cw = await asyncio.open_connection("127.0.0.1", server.port)
        c = uuid.uuid4()
        cw.write(encode_uuid(c))
        await accept.wait(c)
        accept.recorders[c].peer.abort()
        assert await accept.recorders[c].closed == "aborted"
        assert await read_until_closed(cr) == b""
        cw.close()
        await server.close()
        assert await accept.recorders[b].closed == "server closing"
        assert await br.read() == b""
    for w in (aw, bw):
        w.close()
