"""Matsumoto's profile as shipped, run by the daemon as a real process against the PBX simulator:
an outbound call from a counselling extension (3(2) ※ 相談専用通話) leaves no audio anywhere, while
another extension's outbound call is recorded (3(2): every external call, in and out).

As tests/e2e/test_calls.py's excluded inbound line, but outbound and through the profile file:
the rule that excludes it is the profile's "counselling-outbound" line, matched by the extension
that places the call (the caller ID the outbound dialplan hands the AGI, agi/outbound-to-pstn.txt).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from e2e.test_process import DaemonProcess, rows
from pbx.simulator import PbxSimulator, SimCall
from recorderd.cli.demo import speech
from recorderd.records.audio import decrypt_recording
from storage.age import generate_identity

pytestmark = pytest.mark.timeout(90)

PROFILE = Path(__file__).resolve().parents[2] / "config" / "profiles" / "matsumoto.toml"
# Two seconds of each side: the simulator runs in real time beside a daemon process.
STAFF, FAR_END = speech("agent")[: 2 * 16000], speech("caller")[: 2 * 16000]
SECRET = "m-secret"


def matsumoto(root: Path, ami_port: int, recipient: str) -> Path:
    """The shipped profile with this machine's placeholders filled in: data under ``root``, the
    simulator's AMI, one recipient, listeners on loopback. Its lines and defaults are untouched."""
    data = tomllib.loads(PROFILE.read_text(encoding="utf-8"))
    data["data_dir"] = str(root / "data")
    secret = root / "ami-secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    data["ami"] = {"host": "127.0.0.1", "port": ami_port, "secret_file": str(secret)}
    data["agi"] = {"listen": "127.0.0.1:0"}
    data["audiosocket"] = {"listen": "127.0.0.1:0"}
    data["encryption"] = {"recipients": [recipient]}
    cfg = root / "recorderd.toml"
    cfg.write_text(tomli_w.dumps(data), encoding="utf-8")
    return cfg


def outbound(extension: str) -> SimCall:
    return SimCall(caller=extension, dialled="03-1234-5678", direction="outbound", tech="Local",
                   caller_name=f"Ext {extension}", caller_audio=STAFF, agent_audio=FAR_END)  # fmt: skip


async def test_counselling_extension_outbound_leaves_no_audio_anywhere(tmp_path: Path) -> None:
    identity, recipient = generate_identity()
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret=SECRET, speed=1.0)
    await sim.start()
    daemon = DaemonProcess(matsumoto(tmp_path, sim.ami_port, recipient))
    try:
        ready = await daemon.start()
        sim.set_agi_target("127.0.0.1", int(str(ready["agi_port"])))
        data_dir = tmp_path / "data"

        excluded = await sim.run_call(outbound("2999"))  # the profile's counselling extension
        assert excluded.variables.get("RECORDING_STATUS") == "excluded", excluded.agi_commands
        # No spy: no AGI EXEC Originate (ChanSpy into AudioSocket), no AMI Originate, no stream.
        assert not any(c.startswith(("EXEC", "STREAM")) for c in excluded.agi_commands), excluded.agi_commands
        assert "originate" not in [a.lower() for a in sim.ami_actions], sim.ami_actions
        assert excluded.originate_status is None and excluded.spy_uuid is None and excluded.spy_pcm == b""

        recorded = await sim.run_call(outbound("201"))  # any other extension: recorded (3(2))
        assert recorded.variables.get("RECORDING_STATUS") == "recording", recorded.agi_commands
        assert recorded.spy_pcm  # so the simulator and daemon here do record what is not excluded
        assert await daemon.stop() == 0  # SIGTERM: every row is final once the process is gone
    finally:
        if daemon.proc is not None and daemon.proc.returncode is None:
            daemon.proc.kill()
            await daemon.proc.wait()
        await sim.close()

    by_line = {r.line: r for r in rows(data_dir)}
    assert set(by_line) == {"counselling-outbound", None}, by_line
    row = by_line["counselling-outbound"]
    assert (row.direction, row.status, row.audio_path, row.audio_sha256) == (
        "outbound",
        "excluded",
        None,
        None,
    )
    assert row.local_number is None and row.remote_number is None  # no party numbers kept
    assert row.announcement is None
    other = by_line[None]
    assert (other.direction, other.status, other.local_number) == ("outbound", "completed", "201")
    assert other.audio_path and decrypt_recording(data_dir / other.audio_path, [identity]).complete
    # One recording file, the other call's; and nowhere a stretch of what the counselling staff said
    # (in the recordings directory, the database, the logs), in either byte order.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.relative_to(data_dir).as_posix() for p in files if ".age" in p.name] == [other.audio_path]
    probe_le = STAFF[8000:8064]
    probe_be = bytes(b for pair in zip(probe_le[1::2], probe_le[::2], strict=True) for b in pair)
    for f in files:
        body = f.read_bytes()
        assert probe_le not in body and probe_be not in body, f
    # The extension as a token (a value, a channel name "PJSIP/2999-…"), not the same four digits
    # inside a timestamp's microseconds or a hex identifier, which a run now and then prints.
    extension = re.compile(r"(?<![0-9A-Za-z.-])2999(?![0-9A-Za-z])")
    assert not any(extension.search(line) for line in daemon.lines), "the extension in the daemon's log"
