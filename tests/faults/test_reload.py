"""Reload is all or nothing (issue 12 item 4): a SIGHUP with a bad recipient or a missing prompt is
rejected whole, the old configuration keeps recording, and an alert names the problem; a good one
applies its recipients and prompts to the calls that start afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from announce import builtin_prompt
from e2e.conftest import AMI_SECRET, BASE_CONFIG
from faults.conftest import NO_DISK_GUARD, FaultHarness
from recorderd.cli.daemon import reloader
from recorderd.daemon.sdnotify import Notifier
from recorderd.records.audio import decrypt_recording
from storage.age import AgeError, generate_identity
from support.recordings import inbound, row_of, stored_pcm

pytestmark = pytest.mark.timeout(90)


def config_text(data_dir: Path, ami_port: int, recipient: str, prompt: Path) -> str:
    text = BASE_CONFIG.format(
        data_dir=data_dir, advertise="", ami_enabled="true", ami_port=ami_port, ami_secret=AMI_SECRET,
        recipient=recipient,
    )  # fmt: skip
    # The announcement's local copy, checked by start-up, reload and check-config alike.
    text = text.replace(
        'sound = "recorderd/announce-ja"\n', f'sound = "recorderd/announce-ja"\nfile = "{prompt}"\n'
    )
    return text + NO_DISK_GUARD


async def test_a_bad_reload_changes_nothing_and_a_good_one_applies_to_new_calls(
    fault_harness: FaultHarness, tmp_path: Path
) -> None:
    h = (await fault_harness()).h
    events = h.daemon.events
    prompt = tmp_path / "announce-ja.wav"
    shutil.copyfile(builtin_prompt("ja"), prompt)
    old_recipient = h.config.encryption.recipients[0]
    path = tmp_path / "recorderd.toml"
    reload = reloader(path, h.daemon, Notifier(None))  # what SIGHUP calls
    before = h.daemon.config

    def write(recipient: str, announcement: Path = prompt) -> None:
        path.write_text(config_text(h.data_dir, h.config.ami.port, recipient, announcement))

    # 1. A recipient that is not an age key, beside a change of the line rules: nothing applies.
    write("age1notakey")
    path.write_text(path.read_text().replace('inbound = "exclude"', 'inbound = "record"'))
    reload()
    assert h.daemon.config is before
    alert = events.open_alerts["reload_rejected"]
    assert "bad age recipient" in str(alert["problem"]), alert
    result = await h.call(inbound("0311110001"))
    pcm, sealed = stored_pcm(h.data_dir, row_of(h.config.db_url, result), h.identity)  # the old key
    assert sealed and pcm == result.spy_pcm

    # 2. An announcement file that is not there: rejected, named.
    write(old_recipient, tmp_path / "missing.wav")
    reload()
    assert h.daemon.config is before
    assert "announcements.ja" in str(events.open_alerts["reload_rejected"]["problem"])

    # 3. A new key: applied to the next call (no restart), and the alert is closed.
    new_identity, new_recipient = generate_identity()
    write(new_recipient)
    reload()
    assert h.daemon.config is not before and "reload_rejected" not in events.open_alerts
    result = await h.call(inbound("0311110002"))
    row = row_of(h.config.db_url, result)
    pcm, sealed = stored_pcm(h.data_dir, row, new_identity)
    assert sealed and pcm == result.spy_pcm
    assert row.audio_path is not None
    with pytest.raises(AgeError):
        decrypt_recording(h.data_dir / row.audio_path, [h.identity])
