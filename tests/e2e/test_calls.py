"""Calls end to end: the real daemon, the PBX simulator, real sockets, files, SQLite and crypto."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from announce import builtin_prompt, load_pcm
from e2e.conftest import SPEED, Harness, MakeHarness
from pbx.simulator import SimCall
from recorderd.cli.demo import locate, speech
from recorderd.records.audio import decrypt_recording
from storage.audio import parse_au

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.timeout(60)]

CALLER = speech("caller")
AGENT = speech("agent")
PROMPT = load_pcm(builtin_prompt("ja"))


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float64)


def decrypted(h: Harness, audio_path: str | None) -> np.ndarray:
    assert audio_path is not None
    dec = decrypt_recording(h.data_dir / audio_path, [h.identity])
    rate, channels, samples = parse_au(dec.au)
    assert (rate, channels, dec.complete) == (8000, 1, True)
    return pcm(samples)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inbound(**kw: object) -> SimCall:
    args: dict[str, object] = {"caller": "0311112222", "dialled": "0668585050", "caller_audio": CALLER,
                               "agent_audio": AGENT}  # fmt: skip
    args.update(kw)
    return SimCall(**args)  # type: ignore[arg-type]


async def test_inbound_call_is_announced_recorded_encrypted_and_catalogued(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness()
    result = await h.call(inbound(bridged=True))

    [row] = h.rows()
    assert row.status == "completed", row.failure_reason
    assert result.variables["RECORDING_ID"] == row.id.replace("-", "")
    assert result.variables["RECORDING_STATUS"] == "recording"
    assert (row.direction, row.line, row.local_number, row.remote_number) == (
        "inbound", "general", "0668585050", "0311112222",
    )  # fmt: skip
    assert row.announcement == "recorderd/announce-ja" and row.announcement_completed
    assert row.answered_at is not None and row.ended_at is not None and row.duration_s
    assert row.hangup_cause == 16 and row.agent_channel
    age_files = [p for p in h.files() if p.suffix == ".age"]
    assert [p.relative_to(h.data_dir).as_posix() for p in age_files] == [row.audio_path]
    assert row.audio_sha256 and row.audio_bytes == age_files[0].stat().st_size

    audio = decrypted(h, row.audio_path)
    # What the simulator streamed is exactly what we stored.
    assert np.array_equal(audio, pcm(result.spy_pcm))
    ann_score, ann_lag = locate(audio, pcm(PROMPT))
    caller_score, caller_lag = locate(audio, pcm(CALLER))
    agent_score, agent_lag = locate(audio, pcm(AGENT))
    assert ann_score >= 0.9 and caller_score >= 0.9 and agent_score >= 0.9
    # The whole announcement is at the start: before it, only the spy's attach and the daemon's
    # reaction to the first frame. The simulator runs SPEED times faster than real time, so a
    # 100 ms real reaction budget is 0.1 * SPEED seconds of call audio.
    assert ann_lag / 8000 < 0.1 * SPEED
    assert ann_lag < caller_lag < agent_lag


async def test_excluded_line_leaves_no_audio_anywhere(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness()
    result = await h.call(inbound(dialled="06-6858-1111"))

    assert result.variables.get("RECORDING_STATUS") == "excluded"
    assert not any(c.startswith(("EXEC", "STREAM")) for c in result.agi_commands), result.agi_commands
    assert result.spy_uuid is None and result.spy_pcm == b""
    [row] = h.rows()
    assert (row.status, row.line, row.audio_path) == ("excluded", "kokoro", None)
    assert row.local_number is None and row.remote_number is None  # no party numbers kept
    assert not (h.data_dir / "recordings").exists() or not any((h.data_dir / "recordings").rglob("*.age*"))
    probe = CALLER[16000:16064]  # 32 samples of the caller's speech
    for f in h.files():
        assert probe not in f.read_bytes(), f


async def test_outbound_call_is_recorded_without_announcement(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness()
    call = SimCall(caller="201", dialled="03-1234-5678", direction="outbound", caller_name="Ext 201",
                   caller_audio=AGENT, agent_audio=CALLER)  # fmt: skip
    result = await h.call(call)
    assert not any(c.startswith("STREAM FILE") for c in result.agi_commands)
    [row] = h.rows()
    assert (row.status, row.direction, row.line) == ("completed", "outbound", "staff-out")
    assert (row.local_number, row.remote_number) == ("201", "0312345678")
    assert row.announcement is None
    audio = decrypted(h, row.audio_path)
    assert locate(audio, pcm(CALLER))[0] >= 0.9


async def test_outbound_agi_returns_only_once_the_spy_is_attached(make_harness: MakeHarness) -> None:
    # The far end answers at once and speaks from the first sample after the AGI returns; ChanSpy
    # takes a (long) second to attach. The daemon must hold the AGI until it has (issue 12, 2).
    h: Harness = await make_harness()
    call = SimCall(caller="201", dialled="03-1234-5678", direction="outbound", caller_audio=AGENT[:32000],
                   spy_attach_delay_s=1.0)  # fmt: skip
    result = await h.call(call)
    [row] = h.rows()
    assert row.status == "completed"
    assert call.caller_audio in result.spy_pcm  # every word, from the first
    assert np.array_equal(decrypted(h, row.audio_path), pcm(result.spy_pcm))


async def test_local_channel_uses_extension_when_dnid_is_unknown(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness()
    await h.call(inbound(tech="Local", caller_name="Test"))
    [row] = h.rows()
    assert (row.status, row.local_number) == ("completed", "0668585050")


async def test_caller_hangs_up_during_announcement(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness()
    # 3 s of call time: at SPEED 25 that is 120 ms of real time for the daemon to originate the spy
    # and start the announcement, enough on a loaded machine (1.5 s was not).
    result = await h.call(inbound(dialled="0668582525", hangup_after_agi_s=3.0))
    assert result.hung_up_by_caller and result.agi_closed_by_daemon
    # Nothing more is asked of a dead channel once the hang-up is known.
    stream_at = next(i for i, c in enumerate(result.agi_commands) if c.startswith("STREAM FILE"))
    assert all(not c.startswith("SET VARIABLE RECORDING_ID") for c in result.agi_commands[stream_at:])
    [row] = h.rows()
    assert row.status == "completed" and row.announcement_completed is False
    audio = decrypted(h, row.audio_path)
    # The part of the announcement the caller heard is in the recording.
    assert 0.5 < len(audio) / 8000 < 4.5


async def test_spy_that_cannot_connect_fails_fast_and_says_why(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness(advertise=f"127.0.0.1:{free_port()}")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await h.call(inbound(caller_audio=b"", agent_audio=b""))
    assert result.originate_status == "FAILED"
    assert result.variables.get("RECORDING_STATUS") == "failed"
    assert not any(
        c.startswith("STREAM FILE") for c in result.agi_commands
    )  # no notice for an unrecorded call
    [row] = h.rows()
    assert (row.status, row.failure_reason) == ("failed", "spy_originate_failed")
    assert not any(p.suffix in (".age", ".part") for p in h.files())
    assert loop.time() - t0 < 5


async def test_ami_down_still_records_and_says_what_is_missing(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness(ami_port=free_port())
    await h.call(inbound())
    [row] = h.rows()
    # Recorded and sealed, but nothing from the PBX itself confirms the call: not "completed".
    assert row.status == "unverified" and row.audio_sha256
    assert row.failure_reason and "AMI" in row.failure_reason
    assert row.answered_at is None and row.hangup_cause is None and row.ended_at is not None
    assert row.notes and "AMI" in row.notes
    assert any(r["kind"] == "recording_unverified" for r in h.daemon.events.recent)


async def test_missing_prompt_on_pbx_still_records(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness(with_prompt=False)
    result = await h.call(inbound())
    [row] = h.rows()
    assert row.status == "completed" and row.announcement_completed is False
    assert "CHANNEL STATUS" in result.agi_commands
    assert result.variables["RECORDING_STATUS"] == "recording"


async def test_concurrent_calls_are_kept_apart(make_harness: MakeHarness) -> None:
    h: Harness = await make_harness()
    callers = [f"03111100{i:02d}" for i in range(6)]
    results = await asyncio.gather(*(h.sim.run_call(inbound(caller=c)) for c in callers))
    assert h.daemon.manager is not None
    await h.daemon.manager.drain()
    rows = {r.remote_number: r for r in h.rows()}
    assert set(rows) == set(callers)
    for c, res in zip(callers, results, strict=True):
        row = rows[c]
        assert row.status == "completed"
        assert np.array_equal(decrypted(h, row.audio_path), pcm(res.spy_pcm))


def test_spy_frames_are_real_audio() -> None:
    # Guard for the helpers above: the reference speech is non-trivial audio.
    assert len(CALLER) > 100_000 and np.abs(pcm(CALLER)).max() > 1000
