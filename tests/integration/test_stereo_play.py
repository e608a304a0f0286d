"""``recorderctl play`` of a stereo recording (channels = "stereo"): a 2-channel WAV, sample for
sample the interleaved audio that was recorded, which sox reads as two channels."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from recorderd.cli.ctl import main as ctl_main
from support.people import make_site, person, seed_call


def test_play_to_a_file_keeps_both_channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path)
    call_id, pcm = seed_call(site, seconds=2, channels=2)
    boss = person(site.people(), None, "boss", "manager", "boss-password", key=[site.identity])
    monkeypatch.setenv("RECORDERD_PASSWORD", "boss-password")
    out = tmp_path / "stereo.wav"
    code = ctl_main([*site.args(), "play", call_id[:8], "--as", boss.id, "--purpose", "応対品質の確認",
                     "--out", str(out)])  # fmt: skip
    assert code == 0
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 8000, 16000)
        assert w.readframes(w.getnframes()) == pcm
    sox = shutil.which("sox")
    if sox is not None:  # .ci/run installs it
        info = subprocess.run([sox, "--i", "-c", str(out)], capture_output=True, text=True, check=True)
        assert info.stdout.strip() == "2"
