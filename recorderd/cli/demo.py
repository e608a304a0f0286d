"""``recorderd demo``: the whole path of a call, on one machine, in under a minute, no network.

A fresh directory, a fresh passphrase-protected key, the daemon on an embedded configuration, and
the PBX simulator (which speaks AGI, AMI and AudioSocket as the captured Asterisk 20.20.1 does)
placing five calls (one to a line recorded per direction). Then a demo person signs in, and the call
list and the recordings decrypted to WAV (the stereo one too) go through the service layer like any
person's: all are in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from announce import builtin_prompt, load_pcm
from pbx.simulator import PbxSimulator, SimCall
from recorderd.cli.calls import format_table
from recorderd.config import Config, load_config, parse_config
from recorderd.daemon.lifecycle import Daemon, Endpoints
from recorderd.service import Actor, Service, calls
from recorderd.service.people import FreshKey, add_first_person, load_identities
from storage.age import encrypt_passphrase_identity, generate_identity
from storage.db import open_database
from storage.files import private_dir

PASSPHRASE = "demo"
DEMO_PERSON = "demo"
DEMO_PASSWORD = "demo-password-1"  # printed: a demo on throwaway data, not a secret


def speech(name: str) -> bytes:
    """A reference recording shipped with the simulator (8 kHz mono 16-bit), as slin PCM."""
    with wave.open(str(files("pbx.simulator") / "audio" / f"{name}-speech.wav"), "rb") as w:
        return w.readframes(w.getnframes())


@dataclass
class DemoSetup:
    recipient: str
    identity_file: Path
    sounds_dir: Path


def prepare_dir(root: Path) -> DemoSetup:
    """A key and the announcement where 'Asterisk' finds it, under ``root``."""
    identity, recipient = generate_identity()
    keys = root / "keys"
    private_dir(keys)
    identity_file = keys / "identity.age"
    # A low scrypt work factor keeps the demo quick; real keys use `recorderctl keys init` (18).
    identity_file.write_bytes(encrypt_passphrase_identity(identity + "\n", PASSPHRASE, work_factor=12))
    sounds = root / "asterisk-sounds"
    (sounds / "recorderd").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(builtin_prompt("ja"), sounds / "recorderd" / "announce-ja.wav")
    return DemoSetup(recipient, identity_file, sounds)


def write_config(root: Path, setup: DemoSetup, ami_port: int) -> Config:
    template = (files("recorderd.cli") / "demo.toml").read_text(encoding="utf-8")
    text = (
        template.replace("{data_dir}", str(root / "data"))
        .replace("{ami_port}", str(ami_port))
        .replace("{recipient}", setup.recipient)
        .replace("{sounds_dir}", str(setup.sounds_dir))
    )
    path = root / "recorderd.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, str(path))


def demo_calls() -> list[tuple[str, SimCall]]:
    caller, agent = speech("caller"), speech("agent")
    return [
        ("inbound call to a recorded line, bridged to an agent",
         SimCall(caller="0311112222", dialled="0668585050", caller_audio=caller, agent_audio=agent,
                 bridged=True)),
        ("outbound call from extension 201",
         SimCall(caller="201", dialled="0312345678", direction="outbound", caller_name="Ext 201",
                 caller_audio=agent, agent_audio=caller)),
        ("call to the counselling line (excluded)",
         SimCall(caller="0311113333", dialled="0668581111", caller_audio=caller, agent_audio=agent)),
        ("inbound call to the disputes line, recorded per direction (stereo)",
         SimCall(caller="0311115555", dialled="0668587070", caller_audio=caller, agent_audio=agent,
                 bridged=True)),
        ("caller hangs up during the announcement",
         SimCall(caller="0311114444", dialled="0668582525", caller_audio=caller, hangup_after_agi_s=1.5)),
    ]  # fmt: skip


def locate(recording: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """Where ``reference`` best fits inside ``recording``: (normalised correlation, sample offset).

    1.0 means the whole reference is there, undistorted; unrelated audio scores near 0.
    """
    if len(recording) < len(reference):
        return 0.0, 0
    n = len(recording) + len(reference)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)), size)
    corr = corr[: len(recording) - len(reference) + 1]
    lag = int(np.argmax(corr))
    window = recording[lag : lag + len(reference)]
    denom = float(np.sqrt(np.dot(window, window) * np.dot(reference, reference)))
    return (float(corr[lag]) / denom if denom else 0.0), lag


async def _run(root: Path, speed: float) -> int:
    setup = prepare_dir(root)
    # The daemon needs the PBX's AMI port and the PBX needs the daemon's AGI port: start the
    # simulator's AMI first, point it at the daemon once the daemon has bound its listeners.
    sim = PbxSimulator(
        agi_host="127.0.0.1", agi_port=0, ami_secret="demo-secret", sounds_dir=setup.sounds_dir, speed=speed
    )
    await sim.start()
    config = write_config(root, setup, sim.ami_port)
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    # Simulated time runs `speed` times faster than the daemon's clock: keep the simulator's
    # frames end to end rather than hold them to a real-time timeline they cannot follow.
    daemon = Daemon(config, on_ready=ready.set_result, media_clock=time.monotonic if speed == 1 else None)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        endpoints = await asyncio.wait_for(asyncio.shield(ready), 30)
    except TimeoutError:
        print("recorderd demo: the daemon did not become ready", file=sys.stderr)
        stop.set()
        await task
        return 1
    sim.set_agi_target("127.0.0.1", endpoints.agi_port)
    try:  # calls placed before AMI login would have no answer time and say "AMI link down"
        await asyncio.wait_for(daemon.ami_up.wait(), 30)
    except TimeoutError:
        print("recorderd demo: the daemon did not log in to the simulated PBX's AMI", file=sys.stderr)
        stop.set()
        await task
        return 1
    print(
        f"recorderd is listening: FastAGI 127.0.0.1:{endpoints.agi_port}, AudioSocket {endpoints.advertise}"
    )
    print(f"Simulated PBX: AMI on 127.0.0.1:{sim.ami_port}; time runs {speed:g}x faster than real.\n")
    t0 = time.monotonic()
    calls = demo_calls()
    for what, _call in calls:
        print(f"  placing: {what}")
    await asyncio.gather(*(sim.run_call(c) for _w, c in calls))
    assert daemon.manager is not None
    await daemon.manager.drain()
    print(f"\nAll calls ended after {time.monotonic() - t0:.1f} s.\n")
    stop.set()
    await task
    await sim.close()
    return _report(root, config, setup)


def _ctl() -> str:
    """How to call recorderctl from here: its name when on PATH, else the one beside this Python
    (the README's ``.venv/bin/recorderd demo`` leaves ``.venv/bin`` off PATH)."""
    if shutil.which("recorderctl"):
        return "recorderctl"
    beside = Path(sys.executable).parent / "recorderctl"
    return str(beside) if beside.exists() else "recorderctl"


def demo_person(root: Path, svc: Service, setup: DemoSetup) -> Actor:
    """The demo's one person: a manager holding a copy of the demo key, signed in. Every look at the
    recordings below goes through the same door as recorderctl's, and is in the ledger."""
    password_file = root / "demo-password"
    password_file.write_text(DEMO_PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    key = FreshKey(load_identities(setup.identity_file, PASSPHRASE))
    add_first_person(svc, DEMO_PERSON, "デモ管理責任者", "manager", DEMO_PASSWORD, key=key)
    return svc.sign_in(DEMO_PERSON, DEMO_PASSWORD)


def _report(root: Path, config: Config, setup: DemoSetup) -> int:
    _engine, sessions = open_database(config.db_url, node=config.node)
    svc = Service(config, sessions)
    person = demo_person(root, svc, setup)
    rows = calls.search(svc, person, calls.Query(limit=50))
    print("\n".join(format_table(rows, config.zone)))
    completed = [
        r for r in rows if r.status == "completed" and r.direction == "inbound" and r.line == "general"
    ]
    if not completed:
        print("\nrecorderd demo: no completed inbound recording: something is wrong", file=sys.stderr)
        return 1
    row = max(completed, key=lambda r: r.audio_seconds or 0.0)  # the full conversation
    out = root / f"call-{row.id[:8]}.wav"
    done = calls.copy(svc, person, row.id, "demo: check the recording", out)
    with wave.open(str(out), "rb") as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    print(f"\nDecrypted call {row.id[:8]} as {DEMO_PERSON} (ledger entry {done.entry.seq}) → {out}")
    for name, ref in [("announcement", load_pcm(builtin_prompt("ja"))), ("caller speech", speech("caller")),
                      ("agent speech", speech("agent"))]:  # fmt: skip
        score, _lag = locate(audio, np.frombuffer(ref, "<i2").astype(np.float64))
        print(f"  {name:13} found in the recording: correlation {score:.3f}")
    stereo = [r for r in rows if r.status == "completed" and r.line == "disputes"]
    if stereo:
        _stereo_report(root, svc, person, stereo[0].id)
    files_on_disk = sorted(p.name for p in (config.data_dir / "recordings").rglob("*") if p.is_file())
    print(
        f"\nOn disk (all age-encrypted): {len(files_on_disk)} file(s) under {config.data_dir / 'recordings'}"
    )
    where = root / "demo-password"
    print(f"\nA demo person: ID {DEMO_PERSON}, password {DEMO_PASSWORD} (also in {where}).")
    print("Try next:")
    for line in try_next(root, row.id[:8]):
        print(f"  {line}")
    print(f"  play {out}        # sox; or any audio player")
    return 0


def _stereo_report(root: Path, svc: Service, person: Actor, call_id: str) -> None:
    """The per-direction recording: each voice in its own channel (channels = "stereo")."""
    out = root / f"call-{call_id[:8]}-stereo.wav"
    calls.copy(svc, person, call_id, "demo: check the stereo recording", out)
    with wave.open(str(out), "rb") as w:
        pairs = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
    print(f"\nDecrypted the stereo call {call_id[:8]} → {out}")
    for name, ref, side in [("caller speech", speech("caller"), 0), ("agent speech", speech("agent"), 1)]:
        reference = np.frombuffer(ref, "<i2").astype(np.float64)
        mine = locate(pairs[:, side].astype(np.float64), reference)[0]
        other = locate(pairs[:, 1 - side].astype(np.float64), reference)[0] if pairs.shape[1] == 2 else 0.0
        where = "left (caller)" if side == 0 else "right (city side)"
        print(f"  {name:13} on the {where}: correlation {mine:.3f}; in the other channel {other:.3f}")


def try_next(root: Path, call: str) -> list[str]:
    """The commands the demo suggests; a test runs each exactly as printed."""
    base = f"{_ctl()} --config {root / 'recorderd.toml'}"
    me = f"--as {DEMO_PERSON} --password-file {root / 'demo-password'}"
    return [
        f"{base} calls list {me}",
        f"{base} calls show {call} {me}",
        f"{base} calls export-audio {call} {me} --purpose 'demo' --out {root / 'copy.wav'}",
        f"{base} ledger show {me}",
        f"{base} verify {me}",
        f"{base} status",
    ]


def run_demo(root: Path | None, *, speed: float = 8.0, verbose: bool = False, console: bool = False) -> int:
    root = root or Path(tempfile.mkdtemp(prefix="recorderd-demo-"))
    private_dir(root)
    print(f"recorderd demo in {root}\n")
    status = asyncio.run(_run(root, speed))
    if status != 0 or not console:
        return status
    return run_console(root)


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def run_console(root: Path) -> int:
    """The web console on the demo's data, as the demo person, until Ctrl-C."""
    from recorderd.console.serve import serve  # the web stack only when asked for

    config = load_config(root / "recorderd.toml")
    if not _free(*config.console.address):  # 8080 taken on this machine: any free port will do
        config = config.model_copy(
            update={"console": config.console.model_copy(update={"listen": "127.0.0.1:0"})}
        )

    def ready(url: str) -> None:
        print(
            f"\nWeb console: {url}  (ID {DEMO_PERSON}, password {DEMO_PASSWORD}; Ctrl-C stops it)", flush=True
        )

    with contextlib.suppress(KeyboardInterrupt):
        serve(config, on_ready=ready)
    return 0
