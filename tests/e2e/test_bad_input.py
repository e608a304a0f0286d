"""Malformed input reaches the running daemon: only that connection closes; the good call is recorded."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from e2e.conftest import MakeHarness
from pbx.simulator import SimCall
from recorderd.cli.demo import speech
from storage.db import open_database
from storage.models import Call
from support.captures import FIXTURES, from_asterisk

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


async def _send(port: int, payload: bytes) -> bytes:
    """Send bytes, then read what the daemon answers until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_garbage_on_every_port_closes_only_that_connection(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = await make_harness()
    good = asyncio.create_task(
        h.sim.run_call(SimCall(caller="0311112222", dialled="0668585050", caller_audio=speech("caller")))
    )
    agi, spy = h.endpoints.agi_port, h.endpoints.audiosocket_port
    oversized_env = b"".join(f"agi_x{i}: {'y' * 100}\n".encode() for i in range(1000))
    answers = await asyncio.gather(
        _send(agi, oversized_env),  # far beyond the env limits
        _send(agi, b"agi_network: yes\nthis line has no colon\n\n"),
        _send(agi, b"agi_request: agi://x/inbound\nagi_callerid: \xff\xfe\n" + b"\x00" * 9000),
        _send(spy, b"\x01\x00\x10" + uuid.uuid4().bytes + b"\x42\x00\x02ab"),  # unknown type 0x42
        _send(spy, b"\x01\x00\x10" + uuid.uuid4().bytes + b"\x10\xff\xff"),  # a 65535-byte claim
        _send(spy, b"\x10\x01\x40" + bytes(320)),  # audio before any UUID
    )
    # The daemon answered none of them with a command or audio: it just closed each one.
    assert all(not a.startswith((b"EXEC", b"GET", b"SET", b"STREAM")) for a in answers), answers
    await good
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()
    [row] = h.rows()
    assert row.status == "completed"
    # Each bad connection left a protocol-error warning, none an unhandled exception: the first of
    # each peer at once, the others counted in one line per peer (written at the interval's end or,
    # here, when the servers' logs are flushed as at shutdown).
    assert h.daemon.agi_server is not None and h.daemon.audiosocket_server is not None
    h.daemon.agi_server.peerlog.flush_all()
    h.daemon.audiosocket_server.peerlog.flush_all()
    messages = [r.getMessage() for r in caplog.records]
    assert any("AGI 127.0.0.1: 2 more like this" in m for m in messages), messages
    assert any("AudioSocket 127.0.0.1: 2 more like this" in m for m in messages), messages
    assert not [r for r in caplog.records if r.exc_info and r.levelname == "ERROR"]


async def test_caller_gone_before_spy_attaches(make_harness: MakeHarness) -> None:
    """The spy connects, ChanSpy finds its target already hung up and exits: UUID, then EOF."""
    h = await make_harness()
    result = await h.call(SimCall(caller="0311112222", dialled="0668585050", hangup_after_agi_s=0.0))
    assert result.hung_up_by_caller and result.spy_pcm == b""
    # No announcement to a caller who is gone, nothing asked of the dead channel after that.
    assert [c.split(" ", 2)[:2] for c in result.agi_commands] == [["EXEC", "Originate"], ["GET", "VARIABLE"]]
    [row] = h.rows()
    assert (row.status, row.failure_reason, row.audio_seconds) == ("failed", "spy_closed_early", 0.0)


@pytest.mark.timeout(240)  # the demo, then seven recorderctl processes: minutes on a loaded machine
def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    root = tmp_path / "demo"  # the demo creates it
    cmd = [sys.executable, "-m", "recorderd.cli", "demo", "--dir", str(root), "--speed", "25"]
    # A login shell's umask outside systemd: the recordings' directories and the catalogue must still
    # be private (issue 12 item 10).
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=env, preexec_fn=lambda: os.umask(0o022)
    )
    assert proc.returncode == 0, proc.stderr
    tmp_path = root
    data = root / "data"
    assert stat.S_IMODE((data / "recorderd.db").stat().st_mode) == 0o600
    for d in [root, data, *(p for p in data.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in (p for p in data.rglob("*") if p.is_file() and p.name != "status.json"):
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    # The status file holds no call and no number; group-readable on purpose (recorderctl status).
    assert stat.S_IMODE((data / "status.json").stat().st_mode) == 0o640
    # The demo waits for the AMI login before placing calls: every call has its AMI facts.
    _engine, sessions = open_database(f"sqlite:///{data / 'recorderd.db'}", migrate=False)
    with sessions() as s:
        rows = list(s.query(Call))
    assert len(rows) == 5 and not [r for r in rows if "AMI link down" in (r.notes or "")], rows
    assert all(r.answered_at is not None for r in rows if r.status == "completed")
    out = proc.stdout
    for status in ("completed", "excluded"):
        assert status in out
    scores = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "found in the recording" in line]
    assert len(scores) == 3 and min(scores) >= 0.9, out
    assert len(list((tmp_path / "data" / "recordings").rglob("*.age"))) == 4
    # the disputes line is stereo: each voice in its own channel, next to nothing in the other
    sides = [line.split("correlation ")[1].split("; in the other channel ") for line in out.splitlines()
             if " on the left (caller)" in line or " on the right (city side)" in line]  # fmt: skip
    assert len(sides) == 2 and all(float(a) >= 0.9 and float(b) < 0.3 for a, b in sides), out

    # Every "Try next" command works exactly as printed (the demo's own player line aside).
    printed = out.split("Try next:\n", 1)[1].splitlines()
    commands = [line.strip() for line in printed if line.strip() and not line.strip().startswith("play ")]
    assert len(commands) == 6, out
    for command in commands:
        ran = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, env=env)
        if command.endswith(" status"):  # the demo stopped its daemon: status says so, exit 1
            assert ran.returncode == 1 and "stopped" in ran.stdout, (command, ran.stdout, ran.stderr)
        else:
            assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
    assert (tmp_path / "copy.wav").stat().st_size > 44


async def _scripted_asterisk(
    port: int, answers: dict[str, bytes], *, stop_after: str | None = None
) -> list[str]:
    """A FastAGI peer that sends a captured env block and answers by command prefix.

    Returns the commands the daemon sent. ``stop_after``: close our side once that command arrives.
    """
    env = b"".join(c for c in from_asterisk(FIXTURES / "agi" / "sip-inbound.txt")[:2])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    sent: list[str] = []
    try:
        while line := await asyncio.wait_for(reader.readline(), 10):
            command = line.decode().rstrip("\n")
            sent.append(command)
            if stop_after is not None and command.startswith(stop_after):
                break
            answer = next(
                (a for prefix, a in answers.items() if command.startswith(prefix)), b"200 result=1\n"
            )
            writer.write(answer)
    finally:
        writer.close()
    return sent


async def test_agi_peer_disconnecting_mid_session_fails_only_that_call(make_harness: MakeHarness) -> None:
    h = await make_harness()
    sent = await _scripted_asterisk(h.endpoints.agi_port, {}, stop_after="EXEC Originate")
    assert sent[0].startswith("EXEC Originate")
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()
    [row] = h.rows()
    assert (row.status, row.failure_reason) == ("failed", "agi_disconnected")
    # The daemon is unharmed: the next call is recorded.
    await h.call(SimCall(caller="0311112222", dialled="0668585050", caller_audio=speech("caller")))
    assert sorted(r.status for r in h.rows()) == ["completed", "failed"]


async def test_spy_that_never_connects_delays_the_caller_only_the_bounded_wait(
    make_harness: MakeHarness,
) -> None:
    h = await make_harness()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = await _scripted_asterisk(
        h.endpoints.agi_port,
        {"EXEC": b"200 result=0\n", "GET VARIABLE ORIGINATE_STATUS": b"200 result=1 (SUCCESS)\n"},
    )
    waited = loop.time() - t0
    assert 1.9 < waited < 6.0  # first_frame_timeout_s = 2.0, then the AGI returns (slack for a busy CI)
    assert not any(c.startswith("STREAM FILE") for c in sent)
    assert 'SET VARIABLE RECORDING_STATUS "failed"' in sent
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()  # the row is written by the metadata writer, after the AGI reply
    [row] = h.rows()
    assert (row.status, row.failure_reason) == ("failed", "no_audio")
