"""`recorderd check-config` refuses exactly what `recorderd run` refuses (issue 12 item 3): both run
the checks in recorderd/daemon/checks.py. Each bad file goes to both, as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from announce import builtin_prompt
from storage.age import generate_identity

ROOT = Path(__file__).resolve().parents[2]

BASE = """
data_dir = "{data}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
enabled = false
{encryption}
[announcements.ja]
sound = "recorderd/announce-ja"
file = "{prompt}"
[defaults]
inbound = "record"
announcement = "ja"
"""


def recorderd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CREDENTIALS_DIRECTORY", None)
    return subprocess.run(
        [sys.executable, "-m", "recorderd.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


def bad_configs(tmp: Path) -> dict[str, tuple[str, str, str]]:
    """name -> (encryption section, prompt path, what the refusal must name)."""
    _identity, good = generate_identity()
    prompt = tmp / "announce-ja.wav"
    prompt.write_bytes(builtin_prompt("ja").read_bytes())
    garbage = tmp / "garbage.wav"
    garbage.write_bytes(os.urandom(4000))
    a_dir = tmp / "a-directory.wav"
    a_dir.mkdir()
    ok = f'[encryption]\nrecipients = ["{good}"]'
    return {
        "no encryption section": ("", str(prompt), "no age recipient"),
        "empty recipients": ("[encryption]\nrecipients = []", str(prompt), "no age recipient"),
        "invalid recipient": ('[encryption]\nrecipients = ["age1notakey"]', str(prompt), "bad age recipient"),
        "missing recipients file": (
            f'[encryption]\nrecipients_file = "{tmp / "nowhere.txt"}"',
            str(prompt),
            "recipients_file",
        ),
        "missing announcement": (ok, str(tmp / "missing.wav"), "announcements.ja"),
        "unreadable announcement": (ok, str(a_dir), "announcements.ja"),
        "garbage announcement": (ok, str(garbage), "announcements.ja"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no encryption section",
        "empty recipients",
        "invalid recipient",
        "missing recipients file",
        "missing announcement",
        "unreadable announcement",
        "garbage announcement",
    ],
)
def test_check_config_refuses_what_run_refuses(tmp_path: Path, case: str) -> None:
    encryption, prompt, named = bad_configs(tmp_path)[case]
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(BASE.format(data=tmp_path / "data", encryption=encryption, prompt=prompt))
    checked = recorderd("check-config", str(cfg))
    ran = recorderd("run", "--config", str(cfg))
    assert ran.returncode == 2 and named in ran.stderr, ran.stderr
    assert checked.returncode == 2, checked.stdout
    # The same refusal, word for word (run also logs it).
    assert checked.stderr.startswith("recorderd: ") and checked.stderr.strip() in ran.stderr


def test_check_config_passes_what_run_accepts_and_says_what_it_left_out(tmp_path: Path) -> None:
    _identity, good = generate_identity()
    prompt = tmp_path / "announce-ja.wav"
    prompt.write_bytes(builtin_prompt("ja").read_bytes())
    cfg = tmp_path / "recorderd.toml"
    text = BASE.format(
        data=tmp_path / "data", encryption=f'[encryption]\nrecipients = ["{good}"]', prompt=prompt
    )
    cfg.write_text(text + '\n[mqtt]\nhost = "127.0.0.1"\nusername = "r"\npassword_credential = "mqtt"\n')
    checked = recorderd("check-config", str(cfg))
    assert checked.returncode == 0, checked.stderr
    assert "not checked here: mqtt.password_credential 'mqtt' (systemd only)" in checked.stdout
    assert "not checked here: data_dir" in checked.stdout
