"""Real SIP calls through a real Asterisk 20.20.1 to the real `recorderd run` process.

Each call: SIPp dials chan_sip on loopback and sends the caller's two sentences as PCMU RTP; the
project's dialplan snippet hands the call to recorderd (AGI), which starts the ChanSpy→AudioSocket
spy and plays the announcement; the stand-in agent (a Local channel) answers and speaks. The
recording is decrypted with the `age` CLI and measured against the speech that was sent.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from real_pbx.lane import (
    CITY_NUMBER,
    EXCLUDED_LINE,
    RATE,
    RECORDED_LINE,
    STAFF_EXTENSION,
    Lane,
    Recording,
    locate,
    pieces,
)
from support.sipp import ulaw_encode

pytestmark = [pytest.mark.real_pbx, pytest.mark.slow, pytest.mark.timeout(180)]

TIMELINE_TOLERANCE_S = 0.040  # issue 15: the call's timeline kept to ±40 ms
# What Asterisk's ChanSpy itself loses: its audiohook keeps at most two frames per direction and
# flushes both ("Flushing audiohook ... so it remains in sync", "... has stale audio in its
# factories") whenever one side runs ahead. On a loaded 2-core machine that happened 2-6 times per
# call even with continuous RTP, each time dropping 20-140 ms. recorderd stores what it is sent, so
# the lane allows the PBX that much: a voice slipped by up to SLIP_S, a piece of it partly cut
# (gain over PIECE_PRESENT instead of ≈1), a continuous call's timeline off by up to PBX_LOSS_S.
SLIP_S = 0.2
PIECE_PRESENT = 0.5  # a missing piece scores ≈0.05, a whole one ≈1.0
PBX_LOSS_S = 0.3
ABSENT = 0.3


def found(rec: Recording, lane: Lane) -> dict[str, tuple[float, float]]:
    """(gain, start in seconds) of each known sound in the recording."""
    refs = {"announcement": lane.announcement, "agent": lane.agent, **lane.caller}
    return {name: (f.gain, f.at_s) for name, ref in refs.items() for f in [locate(rec.samples, ref)]}


def timeline_errors(sounds: dict[str, tuple[float, float]], lane: Lane) -> dict[str, float]:
    """How far (s) each stretch between the caller's utterances is from what it was on the line, and
    how far the agent's greeting runs into the caller's first sentence (on the line it ended ≈1 s
    before it)."""
    names = list(lane.said_at)
    errors = {
        f"{a} → {b}": (sounds[b][1] - sounds[a][1]) - (lane.said_at[b] - lane.said_at[a])
        for a, b in itertools.pairwise(names)
    }
    agent_end = sounds["agent"][1] + len(lane.agent) / RATE
    errors["agent overlaps caller 1"] = max(0.0, agent_end - sounds["caller 1"][1])
    return errors


def assert_voices(
    rec: Recording, lane: Lane, sounds: dict[str, tuple[float, float]], names: list[str]
) -> None:
    """Every half second of each named sound is in the recording, near where the sound as a whole
    was found (what was said before the recording began aside). See SLIP_S and PIECE_PRESENT."""
    refs = {"announcement": lane.announcement, "agent": lane.agent, **lane.caller}
    report = {}
    for name in names:
        got = pieces(rec.samples, refs[name], sounds[name][1], search_s=SLIP_S)
        report[name] = [(p.offset_s, round(p.gain, 2), round(p.slip_s, 3)) for p in got]
    assert all(report.values()), f"nothing to look for: {report}"
    bad = {
        name: [p for p in got if p[1] <= PIECE_PRESENT or abs(p[2]) > SLIP_S] for name, got in report.items()
    }
    assert not any(bad.values()), f"missing or displaced (offset, gain, slip): {bad}\nall: {report}\n{sounds}"


def check_file(rec: Recording) -> None:
    seconds = len(rec.samples) / RATE
    assert abs(rec.sox_seconds - seconds) < 0.01, (rec.sox_seconds, seconds)  # sox reads the same audio
    assert rec.row.audio_seconds is not None and abs(rec.row.audio_seconds - seconds) < 0.05


def test_inbound_recorded_call_has_the_announcement_first_then_both_voices(lane: Lane) -> None:
    lane.call(caller="0311110001", dialled=RECORDED_LINE)
    row = lane.wait_row(lambda r: r.remote_number == "0311110001")

    assert (row.status, row.direction, row.line) == ("completed", "inbound", "general"), row.failure_reason
    assert (row.local_number, row.remote_number) == (RECORDED_LINE, "0311110001")
    assert row.announcement == "recorderd/announce-ja" and row.announcement_completed
    assert row.channel is not None and row.channel.startswith("SIP/127.0.0.1-")
    assert row.agent_channel is not None and row.agent_channel.startswith("Local/s@lane-agent-")
    assert row.answered_at is not None and row.ended_at is not None
    assert dt.timedelta(0) <= row.ended_at - row.answered_at <= dt.timedelta(seconds=lane.call_s + 10)
    assert row.hangup_cause == 16  # Normal Clearing: the PBX hung up after the agent did
    assert row.duration_s is not None and row.duration_s > lane.said_at["caller 2"]

    rec = lane.recording(row)
    check_file(rec)
    sounds = found(rec, lane)
    assert_voices(rec, lane, sounds, ["announcement", "agent", *lane.caller])
    # The announcement opens the recording (the daemon waits for the spy's first frame before it
    # plays), then the agent's greeting, then the caller. On 20.20.1 the prompt's first 20 ms are not
    # in the spy's stream (it is found at -0.02 s, whole otherwise): allow up to three frames.
    assert -0.06 <= sounds["announcement"][1] < 0.5, sounds
    assert sounds["announcement"][1] < sounds["agent"][1] < sounds["caller 1"][1] < sounds["caller 2"][1]
    # RTP flowed all the time, so the spy streamed continuously: the call's timeline is intact but
    # for what ChanSpy itself drops (PBX_LOSS_S; on an idle machine this is within ±40 ms).
    errors = timeline_errors(sounds, lane)
    assert all(abs(e) <= PBX_LOSS_S for e in errors.values()), (errors, sounds)
    answered_to_end = (row.ended_at - row.answered_at).total_seconds()
    assert abs(len(rec.samples) / RATE - answered_to_end) < 1.0, (len(rec.samples) / RATE, answered_to_end)


def all_files(lane: Lane) -> set[Path]:
    """Every file the daemon and Asterisk have (the tmp dirs they write in)."""
    found = [*lane.data_dir.rglob("*"), *lane.pbx.root.rglob("*")]
    return {p for p in found if p.is_file() and not p.is_symlink()}


def test_excluded_line_leaves_no_audio_anywhere(lane: Lane) -> None:
    before = all_files(lane)  # the module's other calls may have left their recordings
    lane.call(caller="0311110002", dialled=EXCLUDED_LINE)
    row = lane.wait_row(lambda r: r.status == "excluded")

    assert (row.direction, row.line, row.audio_path) == ("inbound", "counselling", None)
    assert row.announcement is None and row.spy_status is None
    assert row.local_number is None and row.remote_number is None  # no party numbers kept
    # No new audio file on either side (the daemon's data dir, Asterisk's dirs: spool, logs, ...),
    # and no stretch of the caller's speech, as linear PCM or as the μ-law it travelled in, in any
    # file at all.
    after = all_files(lane)
    audio_suffixes = {".age", ".part", ".wav", ".au", ".raw", ".sln", ".gsm", ".ulaw", ".alaw", ".pcm"}
    assert not [p for p in after - before if p.suffix in audio_suffixes], after - before
    recorded = {r.audio_path for r in lane.rows() if r.audio_path}
    on_disk = {
        p.relative_to(lane.data_dir).as_posix() for p in after if p.name.endswith((".age", ".age.part"))
    }
    assert on_disk == recorded  # every recording on disk belongs to another call's row
    probe_pcm = lane.caller["caller 1"][4000:4032].astype("<i2").tobytes()
    probe_ulaw = ulaw_encode(lane.caller["caller 1"][4000:4064])
    for f in after:
        body = f.read_bytes()
        assert probe_pcm not in body and probe_ulaw not in body, f


def test_outbound_call_is_recorded_without_announcement(lane: Lane) -> None:
    lane.call(caller=STAFF_EXTENSION, dialled=CITY_NUMBER)
    row = lane.wait_row(lambda r: r.direction == "outbound")

    assert (row.status, row.line) == ("completed", "staff-outbound"), row.failure_reason
    assert row.announcement is None
    assert (row.local_number, row.remote_number) == (STAFF_EXTENSION, CITY_NUMBER)
    assert row.answered_at is not None and row.ended_at is not None and row.hangup_cause == 16
    assert row.agent_channel is not None and row.agent_channel.startswith("Local/")

    rec = lane.recording(row)
    check_file(rec)
    sounds = found(rec, lane)
    assert sounds["announcement"][0] < ABSENT, sounds
    # The far end speaks the moment it answers; what it says before the spy's first frame (which
    # comes with the caller's first RTP after the answer) is not in the stream: about 0.1 s here, as
    # the captures' "−0.12 s" for audio that started before the spy.
    assert -0.15 <= sounds["agent"][1] < 1.0, sounds
    assert_voices(rec, lane, sounds, ["agent", *lane.caller])


def test_silence_suppressed_call_keeps_its_timeline(lane: Lane) -> None:
    """The caller sends RTP only while speaking: the spy's stream has gaps, which the daemon fills with
    silence as they happen (recorderd/daemon/timeline.py), so the recording keeps the call's timeline."""
    lane.call(caller="0311110004", dialled=RECORDED_LINE, suppress_silence=True)
    row = lane.wait_row(lambda r: r.remote_number == "0311110004")
    assert row.status == "completed", row.failure_reason
    rec = lane.recording(row)
    sounds = found(rec, lane)
    assert_voices(rec, lane, sounds, ["announcement", "agent", *lane.caller])
    # The caller sends RTP only for its three utterances; the agent is silent (Wait) around the
    # caller's two sentences. Measured on 20.20.1 (docs/decisions.md): no frames while nobody
    # speaks, so the 1.5 s pause between the sentences shrinks to about 0.02 s and the recording
    # is 12.9 s of a 17.5 s call.
    assert row.answered_at is not None and row.ended_at is not None
    call_s = (row.ended_at - row.answered_at).total_seconds()
    errors = timeline_errors(sounds, lane)
    assert all(abs(e) <= TIMELINE_TOLERANCE_S for e in errors.values()), (
        f"timeline off by {errors} (recording {len(rec.samples) / RATE:.2f} s, call {call_s:.2f} s)"
    )


def test_lane_pbx_is_the_version_of_the_captures(lane: Lane) -> None:
    version = lane.pbx.cli("core show version")
    assert "Asterisk 20.20.1" in version, version
