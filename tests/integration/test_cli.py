"""recorderd / recorderctl commands on real files: config checks, keys, verify, export, start-up errors."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from recorderd.cli.ctl import main as ctl_main
from recorderd.cli.daemon import daemon_main
from storage import ledger
from storage.age import encrypt_passphrase_identity, generate_identity
from storage.audio import au_header, slin_to_au_payload
from storage.db import open_database
from storage.models import Call
from storage.vault import AgeWriter
from support.installed import as_installed

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


def write_config(tmp: Path, recipient: str, extra: str = "") -> Path:
    cfg = tmp / "recorderd.toml"
    head = f'data_dir = "{tmp / "data"}"\n[ami]\nenabled = false\n'
    cfg.write_text(f'{head}[encryption]\nrecipients = ["{recipient}"]\n{extra}')
    return cfg


# Password hashing and key copies at test cost (the production defaults take about a second each).
CHEAP_PASSWORDS = "[people.passwords]\nargon2_time_cost = 1\nargon2_memory_kib = 8\nkey_work_factor = 4\n"


def key_holder(cfg: Path, identity_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first person, holding a copy of the identity made by 'keys init' (its passphrase is set in
    $RECORDERD_PASSPHRASE by the caller); playback needs a person, a password and a purpose."""
    monkeypatch.setenv("RECORDERD_IDENTITY_PASSPHRASE", os.environ["RECORDERD_PASSPHRASE"])
    monkeypatch.setenv("RECORDERD_NEW_PASSWORD", "boss-password")
    assert ctl_main(["--config", str(cfg), "users", "add", "boss", "--name", "Boss", "--role", "manager",
                     "--import-identity", str(identity_file)]) == 0  # fmt: skip
    monkeypatch.setenv("RECORDERD_PASSWORD", "boss-password")


def seed_recording(tmp: Path, recipient: str, seconds: int = 10) -> tuple[Path, bytes]:
    """A finished recording and its catalogue row, as the daemon would leave them."""
    pcm = bytes(range(256)) * (seconds * 16000 // 256)
    rel = "recordings/2026/11/22/c0ffee00-0000-4000-8000-000000000001.age"
    (tmp / "data" / rel).parent.mkdir(parents=True)
    w = AgeWriter(tmp / "data" / rel, [recipient])
    w.write(au_header())
    w.write(slin_to_au_payload(pcm))
    sealed = w.close()
    _e, sessions = open_database(f"sqlite:///{tmp / 'data' / 'recorderd.db'}")
    with sessions.begin() as s:
        s.add(Call(id="c0ffee00-0000-4000-8000-000000000001", direction="inbound", started_at=T0,
                   status="completed", audio_path=rel, audio_bytes=sealed.size, audio_sha256=sealed.sha256,
                   local_number="0668585050", remote_number="0311112222"))  # fmt: skip
    return tmp / "data" / rel, pcm


def test_check_config_prints_decisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = as_installed(ROOT / "config" / "recorderd.example.toml", tmp_path)
    assert daemon_main(["check-config", str(example)]) == 0
    out = capsys.readouterr().out
    assert "0668585050" in out and "RECORD" in out and "0668581111" in out and "EXCLUDE" in out


def test_check_config_names_a_misspelt_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[lines]]\nname = 'x'\nnumbers = ['0668585050']\nacton = 'exclude'\n")
    assert daemon_main(["check-config", str(bad)]) == 2
    assert "unknown key 'lines.0.acton'" in capsys.readouterr().err


def test_keys_init_then_export_audio_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("RECORDERD_PASSPHRASE", "correct horse")
    key = tmp_path / "keys" / "identity.age"
    assert ctl_main(["keys", "init", "--out", str(key), "--work-factor", "10"]) == 0
    recipient = capsys.readouterr().out.strip()
    assert recipient.startswith("age1") and oct(key.stat().st_mode & 0o777) == "0o600"
    assert ctl_main(["keys", "init", "--out", str(key)]) == 2  # never overwrites a key
    cfg = write_config(tmp_path, recipient, CHEAP_PASSWORDS)
    _path, pcm = seed_recording(tmp_path, recipient)
    key_holder(cfg, key, monkeypatch)
    out = tmp_path / "call.wav"
    assert ctl_main(["--config", str(cfg), "calls", "export-audio", "c0ffee00", "--as", "boss",
                     "--purpose", "quality check", "--out", str(out)]) == 0  # fmt: skip
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.readframes(w.getnframes()) == pcm
    monkeypatch.setenv("RECORDERD_PASSWORD", "wrong password")
    assert ctl_main(["--config", str(cfg), "calls", "export-audio", "c0ffee00", "--as", "boss",
                     "--purpose", "quality check", "--out", str(tmp_path / "x.wav")]) != 0  # fmt: skip
    assert not (tmp_path / "x.wav").exists()


def test_flipped_bit_is_named_by_verify_and_by_decryption(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    identity, recipient = generate_identity()
    cfg = write_config(tmp_path, recipient, CHEAP_PASSWORDS)
    path, _pcm = seed_recording(tmp_path, recipient)
    key = tmp_path / "identity.age"
    key.write_bytes(encrypt_passphrase_identity(identity + "\n", "pw", work_factor=10))
    monkeypatch.setenv("RECORDERD_PASSPHRASE", "pw")
    key_holder(cfg, key, monkeypatch)
    assert ctl_main(["--config", str(cfg), "verify", "--as", "boss"]) == 0
    assert "1 file(s) checked, 0 problem(s)" in capsys.readouterr().out

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the payload
    path.write_bytes(bytes(data))
    assert ctl_main(["--config", str(cfg), "verify", "--as", "boss"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {path}" in out and "SHA-256 differs" in out
    assert ctl_main(["--config", str(cfg), "calls", "export-audio", "c0ffee00", "--as", "boss",
                     "--purpose", "check", "--out", str(tmp_path / "x.wav")]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "decryption failed" in err and "chunk" in err
    assert not (tmp_path / "x.wav").exists()


def test_calls_list_filters_by_any_spelling_of_a_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    identity, recipient = generate_identity()
    cfg = write_config(tmp_path, recipient, CHEAP_PASSWORDS)
    seed_recording(tmp_path, recipient, seconds=1)
    key = tmp_path / "identity.age"
    key.write_bytes(encrypt_passphrase_identity(identity + "\n", "pw", work_factor=10))
    monkeypatch.setenv("RECORDERD_PASSPHRASE", "pw")
    key_holder(cfg, key, monkeypatch)

    def ctl(*args: str) -> int:
        return ctl_main(["--config", str(cfg), *args, "--as", "boss"])

    assert ctl("calls", "list", "--number", "０３－１１１１－２２２２") == 0
    assert "c0ffee00" in capsys.readouterr().out
    assert ctl("calls", "list", "--number", "0399999999") == 0
    assert "c0ffee00" not in capsys.readouterr().out
    assert ctl("calls", "list", "--from", "2026-11-22", "--to", "2026-11-22") == 0
    assert "c0ffee00" in capsys.readouterr().out  # 10:00 JST on the 22nd
    assert ctl("calls", "list", "--from", "2026-11-23", "--to", "2026-11-23") == 0
    assert "c0ffee00" not in capsys.readouterr().out  # 01:00 UTC on the 22nd is no part of the 23rd
    assert ctl("calls", "show", "c0ffee00") == 0
    assert "2026-11-22 10:00:00" in capsys.readouterr().out
    _e, sessions = open_database(f"sqlite:///{tmp_path / 'data' / 'recorderd.db'}")
    with sessions() as s:  # every search and every look is in the ledger, with its criteria
        seen = [
            (e.kind, e.detail.get("number"), e.call_id)
            for e in ledger.entries(s, kinds=["searched", "viewed"])
        ]
    assert seen[:2] == [("searched", "0311112222", None), ("searched", "0399999999", None)]
    assert seen[-1] == ("viewed", None, "c0ffee00-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("extra", "recipient", "needle"),
    [
        ("", "age1notakey", "bad age recipient"),
        ("[announcements.ja]\nsound = 'recorderd/announce-ja'\nfile = '/nonexistent/announce.wav'\n", None,
         "announcements.ja"),
    ],
)  # fmt: skip
def test_daemon_refuses_to_start_on_bad_keys_or_prompts(tmp_path: Path, extra: str, recipient: str | None,
                                                       needle: str) -> None:  # fmt: skip
    cfg = write_config(tmp_path, recipient or generate_identity()[1], extra)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "recorderd.cli", "run", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert '"ready"' not in proc.stdout


def test_announce_prepare_cli(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        t = np.arange(44100) / 44100
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
        w.writeframes(np.repeat(tone, 2).tobytes())
    out = tmp_path / "out.wav"
    assert ctl_main(["announce", "prepare", str(src), str(out)]) == 0
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert ctl_main(["announce", "prepare", str(tmp_path / "missing.wav"), str(out)]) == 2
