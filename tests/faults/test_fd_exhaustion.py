"""Out of file descriptors (issue 12 item 9): a local process holds connections until the daemon has
no descriptor left. asyncio's own accept loop wrote ~350 error lines a second (with tracebacks);
the listener now backs off and says so once, and accepts again when descriptors come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import sys
from pathlib import Path

import pytest

from storage.age import generate_identity

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 3.0


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


async def _lines_for(stream: asyncio.StreamReader, seconds: float) -> list[dict[str, object]]:
    """Every log line the daemon writes in a window of ``seconds`` (the measurement itself)."""
    out: list[dict[str, object]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while raw := await stream.readline():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(raw))
    return out


async def test_out_of_descriptors_the_listener_backs_off_then_accepts_again(tmp_path: Path) -> None:
    _identity, recipient = generate_identity()
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[agi]\nlisten = "127.0.0.1:0"\n[audiosocket]\n'
        f'listen = "127.0.0.1:0"\n[ami]\nenabled = false\n[encryption]\nrecipients = ["{recipient}"]\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "recorderd.cli", "run", "--config", str(cfg), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=_few_descriptors,
    )  # fmt: skip
    assert proc.stdout is not None
    held: list[socket.socket] = []
    try:
        async with asyncio.timeout(30):
            while True:
                line = await proc.stdout.readline()
                assert line, "the daemon exited before ready"
                with contextlib.suppress(ValueError):
                    ready = json.loads(line)
                    if ready.get("event") == "ready":
                        break
        port = int(ready["agi_port"])
        for _ in range(100):  # more than the daemon has descriptors: each one it accepts costs one
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        lines = await _lines_for(proc.stdout, WINDOW_S)
        accept = [r for r in lines if "accept" in str(r.get("event"))]
        assert accept, lines  # it says so...
        assert len(accept) <= 2, accept  # ...once, not hundreds of times a second
        assert not [r for r in lines if r.get("logger") == "asyncio"], lines
        assert proc.returncode is None

        for s in held:  # the descriptors come back: the next connection is served
            s.close()
        held.clear()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\xff" * 64 + b"\n\n")  # not AGI: the daemon reads it and hangs up
        assert await asyncio.wait_for(reader.read(), 15) == b""
        writer.close()
        assert proc.returncode is None
    finally:
        for s in held:
            s.close()
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
