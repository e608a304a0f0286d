"""`recorderctl ledger verify` against rows edited with the real sqlite3 shell, checkpoints, and the
daemon's own entries (recording created / finalised) written by the metadata writer."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from recorderd.cli.ctl import main as ctl_main
from recorderd.daemon.metadata import MetadataWriter
from recorderd.daemon.recovery import recover
from storage import ledger
from storage.db import open_database
from support.mosquitto import Mosquitto
from support.mqttsub import Received, subscribe
from support.people import T0, Site, make_site, person, seed_call

SQLITE3 = shutil.which("sqlite3")
needs_sqlite3 = pytest.mark.skipif(
    SQLITE3 is None, reason="sqlite3 shell not installed (apt-get install sqlite3)"
)


def shell(db: Path, sql: str) -> None:
    assert SQLITE3 is not None
    subprocess.run([SQLITE3, str(db), sql], check=True, capture_output=True, timeout=30)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """An installation with a few ledger entries: people added, a call played twice."""
    site = make_site(tmp_path)
    call_id, _pcm = seed_call(site)
    boss = person(site.people(), None, "boss", "manager", "boss-password", key=[site.identity])
    monkeypatch.setenv("RECORDERD_PASSWORD", "boss-password")
    for n in range(2):
        out = tmp_path / f"p{n}.wav"
        assert (
            ctl_main(
                [
                    *site.args(),
                    "play",
                    call_id[:8],
                    "--as",
                    boss.id,
                    "--purpose",
                    "応対品質の確認",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    return site


def verify(site: Site, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = ctl_main([*site.args(), "ledger", "verify", "--as", "boss", *extra])
    return code, capsys.readouterr().out


@needs_sqlite3
@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE ledger SET detail = replace(detail, '応対品質', '別の目的') WHERE seq = 5", "row 5:"),
        ("UPDATE ledger SET actor = 'someone' WHERE seq = 2", "row 2:"),
        ("UPDATE ledger SET at = '2026-01-01T00:00:00.000000+00:00' WHERE seq = 3", "row 3:"),
        ("DELETE FROM ledger WHERE seq = 4", "row 5: seq jumps from 3 to 5"),
        # insert: make room after row 2, then add a row there
        (
            "UPDATE ledger SET seq = seq + 100 WHERE seq >= 3;"
            " UPDATE ledger SET seq = seq - 99 WHERE seq > 100;"
            " INSERT INTO ledger VALUES (3, '2026-11-22T01:00:00.000000+00:00', 'played', 'x', NULL, NULL,"
            " '{}', 'ab', 'cd')",
            "row 3:",
        ),
        # reorder: swap rows 3 and 4
        (
            "UPDATE ledger SET seq = -1 WHERE seq = 3; UPDATE ledger SET seq = 3 WHERE seq = 4;"
            " UPDATE ledger SET seq = 4 WHERE seq = -1",
            "row 3:",
        ),
    ],
)
def test_sqlite3_shell_edits_are_named(
    site: Site, capsys: pytest.CaptureFixture[str], sql: str, named: str
) -> None:
    assert verify(site, capsys)[0] == 0
    shell(site.config.data_dir / "recorderd.db", sql)
    code, out = verify(site, capsys)
    assert code == 1
    assert f"FAIL {named}" in out.splitlines()[0], out


@needs_sqlite3
def test_deleting_the_newest_rows_is_caught_by_a_checkpoint(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cp = tmp_path / "checkpoint.json"
    assert ctl_main([*site.args(), "ledger", "checkpoint", "--as", "boss", "--out", str(cp)]) == 0
    capsys.readouterr()
    with site.sessions() as s:
        head = ledger.head(s)
    assert head is not None and head.kind == "checkpoint"  # the checkpoint itself is ledgered, after it
    shell(site.config.data_dir / "recorderd.db", f"DELETE FROM ledger WHERE seq >= {head.seq - 2}")
    assert verify(site, capsys)[0] == 0  # without the checkpoint, a shorter chain looks fine
    # Each verification is itself ledgered, so by now a new row stands where the checkpointed one
    # stood: the checkpoint names it as rewritten.
    code, out = verify(site, capsys, "--checkpoint", str(cp))
    assert code == 1 and f"FAIL row {head.seq - 1}: row {head.seq - 1} differs from the checkpoint" in out

    text = cp.read_text().replace('"seq":', '"seq": 1,"x":')  # a tampered checkpoint file
    cp.write_text(text)
    code, out = verify(site, capsys, "--checkpoint", str(cp))
    assert code == 1 and "FAIL" in out


@needs_sqlite3
def test_no_ledger_entry_no_access(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The entry is written before the access; if it cannot be written, the access is refused."""
    freeze = "CREATE TRIGGER frozen BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'entries frozen'); END"
    shell(site.config.data_dir / "recorderd.db", freeze)
    out = tmp_path / "refused.wav"
    with site.sessions() as s:
        call_id = ledger.entries(s, kinds=["copied"])[0].call_id
    assert call_id is not None
    code = ctl_main([*site.args(), "play", call_id, "--as", "boss", "--purpose", "x", "--out", str(out)])
    assert code == 2
    assert "could not be written" in capsys.readouterr().err
    assert not out.exists()


async def test_the_daemon_ledgers_recordings_created_and_finalised(tmp_path: Path) -> None:
    _e, sessions = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    writer = MetadataWriter(sessions)
    task = asyncio.create_task(writer.run())
    numbers = {"local_number": "0668585050", "remote_number": "0311112222"}
    writer.insert(
        "c1",
        direction="inbound",
        line="general",
        started_at=T0,
        status="recording",
        audio_path="recordings/c1.age",
        **numbers,
    )
    writer.update("c1", answered_at=T0 + dt.timedelta(seconds=1))
    writer.update("c1", audio_bytes=100, audio_sha256="ab" * 32, audio_seconds=1.5, status="completed")
    writer.insert("c2", direction="inbound", line="kokoro", started_at=T0, status="excluded")
    writer.insert(
        "c3",
        direction="outbound",
        line="out",
        started_at=T0,
        status="recording",
        audio_path="recordings/c3.age",
    )
    await writer.flush()
    task.cancel()
    report = recover(sessions, tmp_path)  # c3 was never finalised: closed at start-up, and ledgered
    assert report.closed_rows == ["c3"]
    with sessions() as s:
        got = [(e.kind, e.call_id, e.detail.get("status")) for e in ledger.entries(s)]
        assert ledger.verify(s).ok
        text = str([e.to_json() for e in ledger.entries(s)])
    assert got == [
        ("recording_created", "c1", None),
        ("recording_finalised", "c1", "completed"),
        ("recording_created", "c3", None),
        ("recording_finalised", "c3", "incomplete"),
    ]
    assert "0311112222" not in text and "0668585050" not in text  # the ledger holds no numbers


def test_a_checkpoint_is_published_retained_over_mqtt(site: Site, mosquitto: Mosquitto) -> None:
    with site.config_path.open("a", encoding="utf-8") as f:
        f.write(
            f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\ntopic_prefix = "recorderd/test"\n'
        )
    assert ctl_main([*site.args(), "ledger", "checkpoint", "--as", "boss", "--publish"]) == 0

    async def fetch() -> Received:  # a monitor that subscribes later still gets it: retained
        async with subscribe(mosquitto.host, mosquitto.port, "recorderd/test/ledger/#") as sub:
            return await sub.expect("recorderd/test/ledger/checkpoint")

    got = asyncio.run(fetch())
    cp = ledger.Checkpoint.from_json(json.dumps(got.body))  # the signature verifies
    with site.sessions() as s:
        assert got.retain and ledger.verify(s, [cp]).ok


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_play_streams_to_a_player_without_a_plaintext_file(site: Site, tmp_path: Path) -> None:
    with site.sessions() as s:
        call_id = ledger.entries(s, kinds=["copied"])[0].call_id
    before = set(tmp_path.rglob("*"))
    # sox reads the WAV from stdin and measures it, as `play` would sound it.
    assert (
        ctl_main(
            [
                *site.args(),
                "play",
                str(call_id),
                "--as",
                "boss",
                "--purpose",
                "聴取",
                "--player",
                "sox -q -t wav - -n stat",
            ]
        )
        == 0
    )
    assert set(tmp_path.rglob("*")) == before  # no audio file was written anywhere here
    with site.sessions() as s:
        last = ledger.entries(s, kinds=["played"])[-1]
    assert last.detail == {"purpose": "聴取", "to": "player", "player": "sox"}
