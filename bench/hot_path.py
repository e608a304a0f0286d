"""The event loop's CPU per AudioSocket frame, on a machine too busy for wall-clock figures.

    python -m bench.hot_path --calls 1000 --rounds 100 --mode none,timeline,timeline-late

The daemon's hot path alone, in one process: the real ``AudioSocketServer`` (coalesced reads,
``SO_RCVLOWAT`` of ten frames) on loopback, one real ``Recording`` per connection with the real
disk pool, and a sender thread that writes ten frames (200 ms) to every connection per round, then
waits until the loop has taken them all (lockstep: no frame waits on a busy machine, so every read
is the same ten frames whatever the load). The recordings follow a media clock the sender moves
by 200 ms per round, and the loop runs the timeline's tick twice a round, as ``CallManager`` does
every 100 ms. The figure is the event-loop thread's own CPU time (``thread_time``) over the
measured rounds divided by the frames it took: other processes on the machine do not count.

Modes: ``none`` (no media clock: frames end to end, what the daemon did before issue 12),
``timeline`` (the real timeline, audio flowing), ``timeline-late`` (every tenth round, one call in
ten is held back for two rounds, a pause long enough that its timeline reads promptly).
Run it on an older tree (copy ``bench/`` there) to compare trees; ``none`` is what they share.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pbx.audiosocket.server import AudioSocketPeer, AudioSocketServer
from recorderd.daemon.diskpool import DiskPool
from recorderd.daemon.recording import READ_LOW_WATER, Recording
from storage.age import generate_identity

FRAME = bytes((0x10, 0x01, 0x40)) + bytes(range(64)) * 5  # 3 + 320 bytes
ROUND = FRAME * 10  # 200 ms: what one SO_RCVLOWAT wake-up carries
ROUND_S = 0.2
WARMUP = 5


class Counting:
    """Forwards to the recording; tells the sender when a round has been taken in whole."""

    def __init__(self, bench: Bench, recording: Recording) -> None:
        self.bench, self.recording = bench, recording

    def audio_received(self, payload: bytes) -> None:
        self.recording.audio_received(payload)
        self.bench.taken(len(payload))

    def connection_closed(self, error: str | None) -> None:
        self.recording.connection_closed(error)


class Bench:
    def __init__(self, calls: int, rounds: int, mode: str, root: Path) -> None:
        self.calls, self.rounds, self.mode, self.root = calls, rounds, mode, root
        self.now = 0.0  # the media clock, moved by the sender
        self.expected = 0
        self.got = 0
        self.round_done = threading.Event()
        self.recordings: list[Recording] = []
        self.cpu: list[float] = []  # event-loop thread CPU at each round's tick
        self.frames_measured = 0
        self.prompt_reads = 0
        _identity, self.recipient = generate_identity()
        self.pool = DiskPool(threads=16)

    def taken(self, nbytes: int) -> None:
        self.got += nbytes
        if self.got >= self.expected:
            self.round_done.set()

    def on_connect(self, spy: uuid.UUID, peer: AudioSocketPeer) -> Counting:
        kwargs: dict[str, Any] = {}
        if self.mode != "none":
            if "clock" not in inspect.signature(Recording).parameters:
                raise SystemExit("this tree's Recording has no media clock: run --mode none only")
            kwargs = {"clock": lambda: self.now, "peer": _CountingPeer(peer, self)}
        path = self.root / f"{spy}.age"
        recording = Recording(str(spy), path, [self.recipient], self.pool, **kwargs)
        self.recordings.append(recording)
        return Counting(self, recording)

    def tick_all(self, mark: bool) -> None:
        for recording in self.recordings:
            tick = getattr(recording, "tick", None)
            if tick is not None:
                tick(self.now)
                tick(self.now + ROUND_S / 2)
        if mark:
            self.cpu.append(time.thread_time())

    async def run(self) -> float:
        loop = asyncio.get_running_loop()
        server = AudioSocketServer(self.on_connect, coalesce_audio=True, read_low_water=READ_LOW_WATER)
        await server.start("127.0.0.1", 0)
        socks = []
        for _ in range(self.calls):
            s = socket.socket()
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", server.port))
            s.setblocking(True)
            s.sendall(bytes((0x01, 0, 16)) + uuid.uuid4().bytes + FRAME)  # the first frame: read at once
            socks.append(s)
        self.expected = 320 * self.calls
        await loop.run_in_executor(None, self.round_done.wait, 60)
        sender = threading.Thread(target=self._send, args=(loop, socks), daemon=True)
        sender.start()
        await loop.run_in_executor(None, sender.join)
        for s in socks:
            s.close()
        await asyncio.wait_for(asyncio.gather(*(r.done for r in self.recordings)), 120)
        await server.close()
        self.pool.shutdown()
        cpu = self.cpu[-1] - self.cpu[0]
        return 1e6 * cpu / self.frames_measured

    def _send(self, loop: asyncio.AbstractEventLoop, socks: list[socket.socket]) -> None:
        late: set[int] = set()
        for r in range(1, self.rounds + 1):
            self.now = r * ROUND_S
            if self.mode == "timeline-late" and r % 10 == 0:
                late = set(range(r // 10 % 10, self.calls, 10))  # held back this round and the next
            elif self.mode == "timeline-late" and r % 10 == 2:
                late = set()
            self.round_done.clear()
            send = [s for i, s in enumerate(socks) if i not in late]
            self.expected += 3200 * len(send)
            for s in send:
                s.sendall(ROUND)
            if not self.round_done.wait(60):
                raise RuntimeError(f"round {r}: the loop took {self.got} of {self.expected} bytes")
            if r > WARMUP:
                self.frames_measured += 10 * len(send)
            ticked = threading.Event()
            loop.call_soon_threadsafe(self._tick_then, r >= WARMUP, ticked)
            ticked.wait(60)

    def _tick_then(self, mark: bool, done: threading.Event) -> None:
        try:
            self.tick_all(mark)
        finally:
            done.set()


class _CountingPeer:
    """The real peer, counting how often a timeline asks it to read promptly."""

    def __init__(self, peer: AudioSocketPeer, bench: Bench) -> None:
        self._peer, self._bench = peer, bench

    def read_promptly(self) -> int:
        self._bench.prompt_reads += 1
        return self._peer.read_promptly()

    def read_batched(self) -> None:
        self._peer.read_batched()

    def behind(self) -> int:  # absent from trees before it: the timeline then does not ask
        return int(self._peer.behind())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=100, help="rounds of 200 ms of audio per call")
    p.add_argument("--mode", default="none,timeline", help="comma-separated: none, timeline, timeline-late")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    for _ in range(args.repeat):
        for mode in args.mode.split(","):
            with tempfile.TemporaryDirectory(prefix="bench-hot-") as tmp:
                bench = Bench(args.calls, args.rounds, mode, Path(tmp))
                us = asyncio.run(bench.run())
                frames, prompt = bench.frames_measured, bench.prompt_reads
                print(f"{mode:14s} N={args.calls}: event loop {us:.2f} µs CPU per frame "
                      f"({frames:,} frames; prompt reads {prompt})", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
