"""A start that cannot be safe must fail: no READY=1, one clear error line, exit status 2.

systemd then reports the unit failed (and RestartPreventExitStatus=2 stops a restart loop) instead
of a daemon that runs and silently records nothing.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from storage.age import generate_identity
from support.service import Notify, Spawn

pytestmark = pytest.mark.timeout(60)


def setup(tmp_path: Path, breakage: str) -> tuple[Path, dict[str, str]]:
    _identity, recipient = generate_identity()
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "ami-secret").write_text("s3cret\n")
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# the city's recording key\n{recipient}\n")
    announcement = tmp_path / "announce-ja.wav"
    announcement.write_bytes(b"")
    if breakage == "recipients file missing":
        recipients.unlink()
    elif breakage == "recipients file unreadable":
        recipients.unlink()
        recipients.mkdir()  # root reads any file; a directory in its place fails for everyone
    elif breakage == "recipients file holds no key":
        recipients.write_text("age1notakey\n")
    elif breakage == "AMI credential missing":
        (creds / "ami-secret").unlink()
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(f"""
data_dir = "{tmp_path / "data"}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
secret_credential = "ami-secret"
[encryption]
recipients_file = "{recipients}"
[announcements.ja]
sound = "recorderd/announce-ja"
{"file = " + repr(str(announcement)) if breakage == "announcement unusable" else ""}
""")
    return cfg, {"CREDENTIALS_DIRECTORY": str(creds)}


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("recipients file missing", "encryption.recipients_file: cannot read"),
        ("recipients file unreadable", "encryption.recipients_file: cannot read"),
        ("recipients file holds no key", "encryption: bad age recipient"),
        ("AMI credential missing", "ami.secret_credential = 'ami-secret': cannot read"),
        ("announcement unusable", "announcements.ja:"),
    ],
)
async def test_an_unsafe_start_never_says_ready(
    tmp_path: Path, breakage: str, message: str, spawn: Spawn
) -> None:
    cfg, env = setup(tmp_path, breakage)
    notify = Notify()
    svc = spawn(cfg, {"NOTIFY_SOCKET": notify.address, **env})
    await svc.start()
    assert await svc.wait() == 2
    failed = await svc.expect_log("startup_failed", within=1)
    assert message in failed["error"] and failed["level"] == "error"
    assert not [r for r in svc.lines if r["event"] == "ready"]
    notify.close()
    assert notify.seen == []  # not one datagram: no READY, no STATUS


async def test_the_unbroken_setup_does_start(tmp_path: Path, spawn: Spawn) -> None:
    """The control case: the same files, nothing broken, reaches READY=1 (with the AMI down)."""
    cfg, env = setup(tmp_path, "nothing")
    notify = Notify()
    svc = spawn(cfg, {"NOTIFY_SOCKET": notify.address, **env})
    await svc.start()
    await notify.expect("READY", "1")
    assert await svc.wait(signal.SIGTERM) == 0
    notify.close()
