"""recorderd as systemd runs it: a real process, a real notify socket, credentials, MQTT, signals.

What systemd would see (READY=1 only once serving, WATCHDOG=1 pings, RELOADING=1/READY=1 around
SIGHUP, STOPPING=1), what journald would store (JSON lines: call ids and masked numbers, levels
that mean something), what a monitor on MQTT would see, and what `recorderctl status` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pbx.simulator import PbxSimulator, SimCall
from recorderd.cli.ctl import main as ctl_main
from recorderd.cli.demo import speech
from storage.age import generate_identity
from storage.db import open_database
from storage.models import Call
from support.mosquitto import Mosquitto
from support.mqttsub import subscribe
from support.service import Notify, Spawn

pytestmark = pytest.mark.timeout(60)

SECRET = "svc-secret"
PREFIX = "recorderd/svc-test"
CALLER_NO, CITY_NO = "0311112222", "0668585050"
AUDIO = speech("caller")[: 8000 * 2 * 2]  # two seconds


def config_text(root: Path, ami_port: int, mqtt_port: int, recipient: str, inbound: str = "record") -> str:
    return f"""
data_dir = "{root / "data"}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
port = {ami_port}
secret_credential = "ami-secret"
[encryption]
recipients = ["{recipient}"]
[defaults]
inbound = "{inbound}"
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
topic_prefix = "{PREFIX}"
reconnect_max_s = 1
[monitoring]
disk_low_free_mb = 0
"""


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    s = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret=SECRET, speed=25.0)
    await s.start()
    yield s
    await s.close()


def credentials(tmp_path: Path) -> Path:
    creds = tmp_path / "credentials"  # what systemd builds from LoadCredential=ami-secret:...
    creds.mkdir(mode=0o700)
    (creds / "ami-secret").write_text(SECRET + "\n")
    return creds


async def status_file_where(path: Path, ok: Callable[[dict[str, Any]], bool], within: float = 10) -> None:
    """The daemon is another process: poll its status file (bounded) until it says what we expect."""
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(OSError, ValueError):
                if ok(json.loads(path.read_bytes())):
                    return
            await asyncio.sleep(0.05)


def rows(data_dir: Path) -> list[Call]:
    _e, sessions = open_database(f"sqlite:///{data_dir / 'recorderd.db'}", migrate=False)
    with sessions() as s:
        return list(s.query(Call).order_by(Call.started_at))


async def test_a_day_in_the_life_under_systemd(
    tmp_path: Path, sim: PbxSimulator, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str], spawn: Spawn
) -> None:
    _identity, recipient = generate_identity()
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(config_text(tmp_path, sim.ami_port, mosquitto.port, recipient))
    notify = Notify()
    env = {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000", "CREDENTIALS_DIRECTORY":
           str(credentials(tmp_path))}  # fmt: skip
    svc = spawn(cfg, env)
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as mqtt:
        await svc.start()
        ready = await notify.expect("READY", "1")
        # READY only once serving: the listeners answer, the "ready" line is already out.
        rec = await svc.expect_log("ready", within=1)
        with socket.create_connection(("127.0.0.1", rec["agi_port"]), timeout=2):
            pass
        assert "call(s) in progress" in notify.seen[ready]["STATUS"]
        await notify.expect("WATCHDOG", "1", after=ready, within=5)  # ticks every 0.25 s (1 s watchdog)
        await svc.expect_log("ami_connected")  # via the credential, not a secret in the config
        await mqtt.expect(f"{PREFIX}/status", lambda b: b["state"] == "online")
        sim.set_agi_target("127.0.0.1", rec["agi_port"])

        # A recorded call while a reload (to "exclude") comes in: the call keeps its decision.
        call = asyncio.create_task(sim.run_call(SimCall(caller=CALLER_NO, dialled=CITY_NO,
                                                        caller_audio=AUDIO, agent_audio=AUDIO)))  # fmt: skip
        await mqtt.expect(f"{PREFIX}/events/call_started")
        cfg.write_text(config_text(tmp_path, sim.ami_port, mosquitto.port, recipient, inbound="exclude"))
        svc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        reloading = await notify.expect("RELOADING", "1")
        await notify.expect("READY", "1", after=reloading)
        await svc.expect_log("reloaded")
        await call
        ended = await mqtt.expect(f"{PREFIX}/events/call_ended")
        assert ended.body["status"] == "completed"
        assert (ended.body["local"], ended.body["remote"]) == ("066*****50", "031*****22")

        await sim.run_call(SimCall(caller=CALLER_NO, dialled=CITY_NO))  # the new rules apply
        await mqtt.expect(f"{PREFIX}/events/call_excluded")

        cfg.write_text("[ami]\nsecert = 'typo'\n")  # broken: rejected, the running rules stay
        svc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        rejected = await svc.expect_log("reload_rejected")
        assert "unknown key 'ami.secert'" in rejected["error"] and rejected["level"] == "error"
        # ...and said where a person looks: the reload_rejected alert, retained on MQTT.
        await mqtt.expect(
            f"{PREFIX}/alerts/reload_rejected",
            lambda b: b["state"] == "raised" and "ami.secert" in b["problem"],
        )
        reloading = await notify.expect("RELOADING", "1", after=reloading + 1)
        await notify.expect("READY", "1", after=reloading)  # systemd leaves "reloading" either way
        await sim.run_call(SimCall(caller="0322223333", dialled=CITY_NO))
        await mqtt.expect(f"{PREFIX}/events/call_excluded", lambda b: b["call_id"] != ended.body["call_id"])

        # recorderctl status, from the status file the running daemon keeps (rewritten within a
        # tick of any change: wait for the one that has seen the last call).
        cfg.write_text(config_text(tmp_path, sim.ami_port, mosquitto.port, recipient))
        svc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]  # the file fixed: the alert closes
        await mqtt.expect(f"{PREFIX}/alerts/reload_rejected", lambda b: b["state"] == "resolved")
        await status_file_where(
            tmp_path / "data" / "status.json",
            lambda st: (
                [e["kind"] for e in st["recent"]].count("call_excluded") == 2
                and st["mqtt"]["connected"]
                and not st.get("open_alerts")  # the resolved reload_rejected, written there too
            ),
        )
        capsys.readouterr()
        assert ctl_main(["--config", str(cfg), "status"]) == 0
        out = capsys.readouterr().out
        assert (
            out.startswith("recorderd: running (running), pid") and "PBX link (AMI):    connected" in out
        ), out
        assert "MQTT:              connected" in out and "call_excluded" in out and "066*****50" in out

        assert await svc.wait(signal.SIGTERM) == 0
        # Rows are written behind the events (one writer, its own pace); at exit all are flushed.
        assert [r.status for r in rows(tmp_path / "data")] == ["completed", "excluded", "excluded"]
        await notify.expect("STOPPING", "1")
        bye = await mqtt.expect(f"{PREFIX}/status", lambda b: b["state"] == "offline")
        assert bye.body["reason"] == "stopped"
    notify.close()
    assert ctl_main(["--config", str(cfg), "status"]) == 1
    assert "recorderd: DOWN (stopped at" in capsys.readouterr().out

    # journald's view: JSON lines; every line about a call names it and shows masked numbers only.
    assert len(svc.lines) == len([ln for ln in svc.raw if ln.strip()]), "a non-JSON line on stdout"
    everything = "".join(svc.raw)
    assert CALLER_NO not in everything and CITY_NO not in everything
    for r in svc.lines:
        assert r["level"] in ("debug", "info", "warning", "error", "critical"), r
        on_call_path = r["logger"] in ("recorderd.calls", "recorderd.recording", "recorderd.recovery")
        if "call_id" in r and r["event"] != "call_excluded" and on_call_path:
            assert r.get("local") == "066*****50" and r.get("remote", "").endswith("**22"), r
    ours = ("recorderd.calls", "recorderd.recording", "recorderd.recovery", "recorderd.daemon", "recorderd")
    assert not [
        r
        for r in svc.lines
        if r["level"] == "error" and r["logger"] in ours and r["event"] != "reload_rejected"
    ]


async def test_sigkill_leaves_the_last_will_offline(
    tmp_path: Path, mosquitto: Mosquitto, spawn: Spawn
) -> None:
    _identity, recipient = generate_identity()
    cfg = tmp_path / "recorderd.toml"
    text = config_text(tmp_path, 1, mosquitto.port, recipient)
    cfg.write_text(text.replace("[ami]", "[ami]\nenabled = false"))
    svc = spawn(cfg, {"CREDENTIALS_DIRECTORY": str(credentials(tmp_path))})
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/#") as mqtt:
        await svc.start()
        await mqtt.expect(f"{PREFIX}/status", lambda b: b["state"] == "online")
        assert await svc.wait(signal.SIGKILL) == -signal.SIGKILL
        will = await mqtt.expect(f"{PREFIX}/status", lambda b: b["state"] == "offline")
        assert will.body["reason"] == "connection lost"
    async with subscribe(mosquitto.host, mosquitto.port, f"{PREFIX}/status") as late:
        kept = await late.expect(f"{PREFIX}/status")  # retained: a monitor starting now learns it too
        assert kept.retain and kept.body == will.body
