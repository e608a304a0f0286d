"""The AudioSocket server's batch mode over real loopback TCP: ``coalesce_audio`` + ``read_low_water``
(SO_RCVLOWAT), as the daemon runs it, on asyncio's loop and, where installed, on uvloop."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pbx.audiosocket.protocol import Audio, AudioSocketParser, encode_audio, encode_uuid
from pbx.audiosocket.server import AudioSocketPeer, AudioSocketServer
from support.captures import audiosocket_captures, sidecar

LOW_WATER = 10 * 323
LOOPS = ["asyncio", "uvloop"]


class Batches:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.got = asyncio.Event()
        self.closed: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def audio_received(self, payload: bytes) -> None:
        self.payloads.append(payload)
        self.got.set()

    def connection_closed(self, error: str | None) -> None:
        assert not self.closed.done()
        self.closed.set_result(error)


def run_on(loop_name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if loop_name == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            pytest.skip("uvloop is not installed (optional extra)")
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(asyncio.wait_for(main(), 20))


class Handlers:
    """on_connect: one ``Batches`` per UUID; ``get`` waits until that UUID has connected."""

    def __init__(self) -> None:
        self.by_uuid: dict[uuid.UUID, Batches] = {}
        self.peers: dict[uuid.UUID, AudioSocketPeer] = {}
        self.arrived: dict[uuid.UUID, asyncio.Event] = {}

    def __call__(self, u: uuid.UUID, peer: AudioSocketPeer) -> Batches:
        self.peers[u] = peer
        self.by_uuid[u] = Batches()
        self.arrived.setdefault(u, asyncio.Event()).set()
        return self.by_uuid[u]

    async def get(self, u: uuid.UUID) -> Batches:
        await self.arrived.setdefault(u, asyncio.Event()).wait()
        return self.by_uuid[u]


async def _server(handlers: Handlers) -> AudioSocketServer:
    server = AudioSocketServer(handlers, coalesce_audio=True, read_low_water=LOW_WATER)
    await server.start("127.0.0.1", 0)
    return server


@pytest.mark.parametrize("loop_name", LOOPS)
def test_first_frame_at_once_then_batches_and_the_tail_at_eof(loop_name: str) -> None:
    async def main() -> None:
        handlers = Handlers()
        server = await _server(handlers)
        u = uuid.uuid4()
        frames = [bytes([i]) * 320 for i in range(33)]
        _r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(encode_uuid(u) + encode_audio(frames[0]))
        h = await handlers.get(u)
        await h.got.wait()  # the first frame is never held back (a call may wait for it)
        assert h.payloads == [frames[0]]
        for f in frames[1:5]:  # below the low-water mark: the kernel keeps them
            w.write(encode_audio(f))
            await w.drain()
        await asyncio.sleep(0.2)
        assert len(h.payloads) == 1
        for f in frames[5:30]:  # past it: delivered in batches, in order
            w.write(encode_audio(f))
        await w.drain()
        for _ in range(200):
            if sum(len(p) for p in h.payloads) >= 20 * 320:
                break
            await asyncio.sleep(0.01)
        assert len(h.payloads) < 20  # batched, not one call per frame
        w.write(b"".join(encode_audio(f) for f in frames[30:]))  # a tail below the mark, then EOF
        w.write_eof()
        assert await h.closed is None
        assert b"".join(h.payloads) == b"".join(frames)
        w.close()
        await server.close()

    run_on(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_captures_whole_over_tcp(loop_name: str) -> None:
    captures: list[Path] = audiosocket_captures()

    async def main() -> None:
        handlers = Handlers()
        server = await _server(handlers)
        for path in captures:
            data = path.read_bytes()
            _r, w = await asyncio.open_connection("127.0.0.1", server.port)
            pos = 0
            for _t, n in sidecar(path)["recv"]:  # Asterisk's real chunking, without its pauses
                w.write(data[pos : pos + n])
                pos += n
            await w.drain()
            w.write_eof()
            u = uuid.UUID(sidecar(path)["uuid"])
            batches = await handlers.get(u)
            assert await batches.closed is None
            parser = AudioSocketParser()
            parser.receive_data(data)
            parser.receive_data(b"")
            expected = b"".join(e.payload for e in parser.events() if isinstance(e, Audio))
            assert b"".join(batches.payloads) == expected
            assert len(expected) == 320 * sidecar(path)["frame_count"]
            w.close()
        await server.close()

    run_on(loop_name, main)


async def _until(cond: Callable[[], bool]) -> None:
    for _ in range(300):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 3 s")


@pytest.mark.parametrize("loop_name", LOOPS)
def test_read_promptly_hands_over_what_the_mark_held_and_says_how_much(loop_name: str) -> None:
    """A pause in the audio: the frames below the low-water mark must not wait for the next talk
    spurt. read_promptly() reports them (as audio bytes) and they arrive at once; read_batched()
    brings the mark back."""

    async def main() -> None:
        handlers = Handlers()
        server = await _server(handlers)
        u = uuid.uuid4()
        frames = [bytes([i + 1]) * 320 for i in range(40)]
        _r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(encode_uuid(u) + encode_audio(frames[0]))
        h = await handlers.get(u)
        await h.got.wait()
        w.write(b"".join(encode_audio(f) for f in frames[1:5]))  # held by the mark
        await w.drain()
        await asyncio.sleep(0.2)
        assert len(h.payloads) == 1
        peer = handlers.peers[u]
        assert peer.read_promptly() == 4 * 320
        await _until(lambda: len(b"".join(h.payloads)) == 5 * 320)
        w.write(encode_audio(frames[5]))  # one frame alone is delivered now
        await _until(lambda: len(b"".join(h.payloads)) == 6 * 320)
        peer.read_batched()
        w.write(b"".join(encode_audio(f) for f in frames[6:9]))
        await w.drain()
        await asyncio.sleep(0.2)
        assert len(b"".join(h.payloads)) == 6 * 320  # held again
        w.write(b"".join(encode_audio(f) for f in frames[9:]))
        w.write_eof()
        assert await h.closed is None
        assert b"".join(h.payloads) == b"".join(frames)
        assert peer.read_promptly() == 0  # ended: nothing, no error
        w.close()
        await server.close()

    run_on(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_behind_says_when_the_kernel_holds_what_would_wake_the_reader(loop_name: str) -> None:
    """The timeline asks this before taking a spell without reads for a pause: bytes that already
    make the socket readable mean the loop is late, not the PBX quiet. The writes below come from
    a blocking socket in the loop's own thread, so the loop cannot read them in between."""

    async def main() -> None:
        handlers = Handlers()
        server = await _server(handlers)
        u = uuid.uuid4()
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        sock.setblocking(True)
        sock.sendall(encode_uuid(u) + encode_audio(b"\1" * 320))
        h = await handlers.get(u)
        await h.got.wait()  # the first frame is in: the low-water mark is set
        peer = handlers.peers[u]
        assert peer.behind() == 0
        sock.sendall(encode_audio(b"\2" * 320) * 4)
        assert peer.behind() == 0  # below the mark: the kernel would not wake the reader
        sock.sendall(encode_audio(b"\3" * 320) * 6)
        assert peer.behind() == 10 * 320  # readable, not read yet
        await _until(lambda: len(b"".join(h.payloads)) == 11 * 320)
        assert peer.behind() == 0
        peer.read_promptly()
        sock.sendall(encode_audio(b"\4" * 320))
        assert peer.behind() == 320  # reading promptly: any byte makes it readable
        await _until(lambda: len(b"".join(h.payloads)) == 12 * 320)
        sock.close()
        assert await h.closed is None
        assert peer.behind() == 0  # ended: nothing, no error
        await server.close()

    run_on(loop_name, main)
