"""The real PBX for bench/host_cost.py: Asterisk of the real-PBX lane, ``recorderd run``, SIPp.

Built on tests/support (asterisk.py starts the lane's Asterisk unprivileged on free loopback ports
with the project's config/asterisk snippets; sipp.py writes the callers' RTP). The shipped
``from-pstn`` context is kept, renamed ``recorderd-in``; a bench ``from-pstn`` in front of it sends
one number to an unrecorded call, one to a MixMonitor call, every other to the shipped snippet.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.common import REPO
from storage.age import generate_identity
from storage.audio import parse_au
from storage.vault import decrypt_file
from tests.support.asterisk import Asterisk, Ports, RunAs, find_prefix, free_udp_port, render_extensions
from tests.support.sipp import SIPP, Spurt, uac_scenario, write_rtp_pcap

MODES = ("unrecorded", "mixmonitor", "recorderd", "recorderd-stereo")
NUMBERS = {"unrecorded": "0611110001", "mixmonitor": "0611110002", "recorderd": "0611110003",
           "recorderd-stereo": "0611110004"}  # fmt: skip
AGENT_SPEAKS_S = 2.0
# What recorderd/daemon/amitrack.py and calls.py read (Newchannel: the channel seen before the AGI).
AMI_WHITELIST = (
    "^Event: (Newchannel|Newstate|BridgeEnter|BridgeLeave|BridgeDestroy|Hangup|ChanSpyStart)[[:space:]]"
)
SETUP_RATE = 20  # calls per second


def noise(seconds: float, seed: int) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(8000 * seconds)) * 3000).clip(-32000, 32000).astype(np.int16)


def sound_ratio(pcm: bytes) -> float:
    """Share of 20 ms frames with any sound in them."""
    samples = np.frombuffer(pcm[: len(pcm) // 320 * 320], dtype="<i2").reshape(-1, 160)
    return float(np.count_nonzero(samples.any(axis=1)) / max(1, len(samples)))


class HostLane:
    def __init__(self, work: Path, call_s: float, max_calls: int, ami_whitelist: bool = False) -> None:
        prefix, why = find_prefix()
        if prefix is None:
            raise SystemExit(f"no real PBX: {why}")
        if SIPP is None or os.geteuid() != 0:
            raise SystemExit("SIPp (Debian sip-tester) replays RTP through a raw socket: run as root")
        self.work, self.call_s = work, call_s
        self.ports = Ports()
        run_as = RunAs.pick()
        self.mix_dir = Path(tempfile.mkdtemp(prefix="bench-mix-"))
        os.chown(self.mix_dir, run_as.uid, run_as.gid)
        agent = work / "agent.wav"
        with wave.open(str(agent), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(noise(AGENT_SPEAKS_S, 2).tobytes())
        shipped = render_extensions(self.ports, agent_wait_s=call_s - AGENT_SPEAKS_S, trunk_wait_s=1.0)
        if shipped.count("[from-pstn]") != 1:
            raise SystemExit("config/asterisk/extensions.conf: expected one [from-pstn] context")
        extensions = (
            shipped.replace("[from-pstn]", "[recorderd-in]")
            + f"""
[from-pstn]
exten => {NUMBERS["unrecorded"]},1,Answer()
 same => n,Dial(Local/s@lane-agent,60)
 same => n,Hangup()
exten => {NUMBERS["mixmonitor"]},1,Answer()
 same => n,MixMonitor({self.mix_dir}/${{UNIQUEID}}.wav)
 same => n,Dial(Local/s@lane-agent,60)
 same => n,Hangup()
exten => _X.,1,Goto(recorderd-in,${{EXTEN}},1)
"""
        )
        secret = os.urandom(12).hex()
        self.pbx = Asterisk(prefix, self.ports, ami_secret=secret, extensions=extensions,
                            sounds={"lane/agent-speech": agent})  # fmt: skip
        if ami_whitelist:  # an experiment: only the events recorderd reads reach its AMI session
            manager = self.pbx.etc / "manager.conf"
            kept = [line for line in manager.read_text().splitlines() if not line.startswith("eventfilter")]
            manager.write_text("\n".join([*kept, f"eventfilter = {AMI_WHITELIST}", ""]))
        # The lane's 20 RTP ports serve 10 calls: one RTP + RTCP pair per SIP channel, and some room.
        rtp = free_udp_port(max_calls + 10)
        end = rtp + 2 * max_calls + 19
        (self.pbx.etc / "rtp.conf").write_text(f"[general]\nrtpstart = {rtp}\nrtpend = {end}\n")
        self.identity, recipient = generate_identity()
        self.data_dir = work / "data"
        credentials = work / "credentials"
        credentials.mkdir(mode=0o700)
        (credentials / "ami-secret").write_text(secret + "\n")
        self.config = work / "recorderd.toml"
        self.config.write_text(f"""
timezone = "Asia/Tokyo"
data_dir = "{self.data_dir}"
[agi]
listen = "127.0.0.1:{self.ports.agi}"
[audiosocket]
listen = "127.0.0.1:{self.ports.audiosocket}"
[ami]
port = {self.ports.ami}
username = "recorder"
secret_credential = "ami-secret"
[encryption]
recipients = ["{recipient}"]
[defaults]
inbound = "exclude"
outbound = "exclude"
[[lines]]
name = "bench"
direction = "inbound"
numbers = ["{NUMBERS["recorderd"]}"]
action = "record"
[[lines]]
name = "bench-stereo"
direction = "inbound"
numbers = ["{NUMBERS["recorderd-stereo"]}"]
action = "record"
channels = "stereo"
""")
        self._credentials = credentials
        self.daemon: subprocess.Popen[bytes] | None = None
        self.daemon_log = work / "daemon.log"
        self.media = free_udp_port(2)
        self.pcap = work / "caller.pcap"
        write_rtp_pcap(self.pcap, [Spurt(0.0, noise(call_s + 4, 1))], total_s=call_s + 5,
                       source_port=self.media, suppress_silence=False)  # fmt: skip
        self._sip_port = free_udp_port()

    @property
    def asterisk_pid(self) -> int:
        assert self.pbx.proc is not None
        return self.pbx.proc.pid

    @property
    def daemon_pid(self) -> int:
        assert self.daemon is not None
        return self.daemon.pid

    def start(self) -> None:
        self.pbx.start()
        env = {**os.environ, "PYTHONPATH": str(REPO), "CREDENTIALS_DIRECTORY": str(self._credentials)}
        with self.daemon_log.open("wb") as log:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "recorderd.cli", "run", "--config", str(self.config), "--json"],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        self._wait(lambda: '"ami_connected"' in self.daemon_log.read_text(), 60, "daemon READY + AMI")

    def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.pbx.stop()
        self.pbx.cleanup()
        shutil.rmtree(self.mix_dir, ignore_errors=True)

    def _wait(self, cond: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():  # type: ignore[operator]
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.daemon_log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout} s")
            time.sleep(0.2)

    def wait_idle(self) -> None:
        """No channel left in Asterisk, no recording still open: the runs do not overlap."""
        self._wait(lambda: self.pbx.cli("core show channels count").lstrip().startswith("0 active channels"),
                   120, "Asterisk idle")  # fmt: skip
        self._wait(lambda: not list(self.data_dir.glob("recordings/**/*.part")), 120, "recordings sealed")

    def place_calls(self, mode: str, n: int) -> str:
        """N calls from one SIPp, all up within N / SETUP_RATE s; returns "" or what went wrong."""
        workdir = self.work / f"sipp-{mode}-{n}-{time.monotonic_ns()}"
        workdir.mkdir()
        xml = workdir / "uac.xml"
        dialled = NUMBERS[mode]
        xml.write_text(uac_scenario(caller="0312345678", caller_name="B", dialled=dialled, pcap=self.pcap))
        timeout = self.call_s + n / SETUP_RATE + 60
        cmd = [SIPP or "sipp", f"127.0.0.1:{self.ports.sip}", "-sf", str(xml), "-i", "127.0.0.1",
               "-p", str(self._sip_port), "-mi", "127.0.0.1", "-mp", str(self.media), "-m", str(n),
               "-l", str(n), "-r", str(SETUP_RATE), "-nostdin", "-timeout", f"{int(timeout)}s",
               "-timeout_error", "-trace_err"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)
        if proc.returncode == 0:
            return ""
        errors = "".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
        first = next((line for line in errors.splitlines() if line.strip()), proc.stderr.strip()[:200])
        return f"SIPp exit {proc.returncode} (first error: {first[:160]})"

    def _rows(self) -> list[tuple[str, str, str | None, str | None]]:
        with contextlib.closing(sqlite3.connect(self.data_dir / "recorderd.db")) as db:
            return list(db.execute("SELECT id, status, audio_path, ended_at FROM calls"))

    def recording_ids(self) -> list[str]:
        return [r[0] for r in self._rows()]

    def check_recorderd(self, before: set[str], n: int) -> tuple[int, list[str]]:
        def new() -> list[tuple[str, str, str | None, str | None]]:
            return [r for r in self._rows() if r[0] not in before]

        with contextlib.suppress(RuntimeError):  # fewer calls may have come: judged below
            self._wait(lambda: len([r for r in new() if r[1] != "recording" and r[3]]) >= n, 60, "rows")
        complete, problems = 0, list[str]()
        if len(new()) < n:
            problems.append(f"{n - len(new())} calls without a row")
        for _id, status, path, _ended in new():
            if status not in ("completed", "unverified") or path is None:
                problems.append(f"{status}")
                continue
            out = io.BytesIO()
            decrypt_file(self.data_dir / path, [self.identity], out)
            _rate, channels, pcm = parse_au(out.getvalue())
            if channels == 2:  # stereo: the caller on the left is what the bench's SIPp sends
                pcm = np.frombuffer(pcm, dtype="<i2")[0::2].tobytes()
            complete += self._judge(pcm, problems)
        return complete, problems

    def check_mixmonitor(self, n: int) -> tuple[int, list[str]]:
        with contextlib.suppress(RuntimeError):  # fewer calls may have come: judged below
            self._wait(lambda: len(list(self.mix_dir.glob("*.wav"))) >= n, 30, "MixMonitor files")
        time.sleep(1.0)  # MixMonitor closes its file on its own thread after the hang-up
        complete, problems = 0, list[str]()
        if (found := len(list(self.mix_dir.glob("*.wav")))) < n:
            problems.append(f"{n - found} calls without a file")
        for wav in sorted(self.mix_dir.glob("*.wav")):
            with wave.open(str(wav), "rb") as w:
                pcm = w.readframes(w.getnframes())
            complete += self._judge(pcm, problems)
            wav.unlink()
        return complete, problems

    def _judge(self, pcm: bytes, problems: list[str]) -> int:
        seconds = len(pcm) / 16000
        if abs(seconds - self.call_s) > 1.0:
            problems.append(f"{seconds:.1f} s long")
            return 0
        if (ratio := sound_ratio(pcm)) < 0.95:
            problems.append(f"sound in {100 * ratio:.0f} % of frames")
            return 0
        return 1
