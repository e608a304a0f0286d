"""The real-PBX lane: Asterisk + the real `recorderd run` process + SIPp callers, and how to measure.

Speech is made at test time with espeak-ng and sox (8 kHz mono 16-bit): the agent's sentence is
played by Asterisk, the caller's two sentences travel as RTP from SIPp. Recordings are read back
with the `age` CLI (an implementation independent of ours) into memory and measured with numpy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from announce import builtin_prompt
from real_pbx.capture import CaptureProxy
from storage.age import generate_identity
from storage.audio import parse_au
from storage.db import open_database
from storage.models import Call
from support.asterisk import Asterisk, Ports, find_prefix, free_tcp_port, free_udp_port, render_extensions
from support.sipp import SIPP, Spurt, run_uac, uac_scenario, ulaw_decode, ulaw_encode, write_rtp_pcap

ROOT = Path(__file__).resolve().parents[2]
RATE = 8000
TOOLS = {name: shutil.which(name) for name in ("age", "sox", "espeak-ng")} | {"sipp": SIPP}

RECORDED_LINE = "0668585050"  # config: line "general", recorded, Japanese announcement
STEREO_LINE = "0668587070"  # config: line "stereo", recorded per direction, Japanese announcement
EXCLUDED_LINE = "0668581111"  # config: line "counselling", never recorded
STAFF_EXTENSION = "201"  # config: line "staff-outbound", recorded, no announcement
CITY_NUMBER = "0312345678"

# When the caller speaks, in seconds after the call is answered (SIPp's first RTP packet): "Hello?"
# during the announcement (callers do), then two sentences after the agent's greeting, while the
# agent is silent (Wait): see the timing in Lane.__init__.
HELLO_AT = 0.5
GAP_S = 1.5  # silence between the caller's two sentences


def lane_unavailable() -> str | None:
    prefix, why = find_prefix()
    if prefix is None:
        return why
    missing = [name for name, path in TOOLS.items() if path is None]
    if missing:
        return f"missing tools {missing}: apt-get install sip-tester age sox espeak-ng (.ci/run does)"
    if os.geteuid() != 0:
        return "SIPp replays RTP from a pcap through a raw socket: run the lane as root (CI does)"
    return None


def synthesize(text: str, voice: str, out: Path) -> npt.NDArray[np.int16]:
    """espeak-ng speech as 8 kHz mono 16-bit WAV at ``out``; returns its samples."""
    raw = out.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
         "gain", "-n", "-3"],
        check=True, timeout=30,
    )  # fmt: skip
    raw.unlink()
    with wave.open(str(out), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def wav_samples(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


@dataclass(frozen=True)
class Found:
    gain: float  # peak correlation / the reference's energy: ≈1.0 = all of it, at unity gain
    at_s: float  # where the reference starts in the recording (negative: its beginning is missing)


def locate(recording: npt.NDArray[np.int16], reference: npt.NDArray[np.int16]) -> Found:
    """Where ``reference`` is in ``recording`` and how much of it is there (cross-correlation)."""
    rec = recording.astype(np.float64)
    ref = reference.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(rec) + len(ref))))
    corr = np.fft.irfft(np.fft.rfft(rec, n) * np.conj(np.fft.rfft(ref, n)), n)
    # Index k < len(rec): the reference starts k samples in; the tail of the circular result holds
    # negative lags (the reference began before the recording: its first |lag| samples are missing).
    lags = np.concatenate([np.arange(len(rec)), np.arange(-(len(ref) - 1), 0)])
    values = np.concatenate([corr[: len(rec)], corr[n - (len(ref) - 1) :]])
    best = int(np.argmax(values))
    return Found(float(values[best] / np.dot(ref, ref)), int(lags[best]) / RATE)


@dataclass(frozen=True)
class Piece:
    offset_s: float  # where the piece is in the reference
    gain: float  # as Found.gain, for this piece alone
    slip_s: float  # how far it is from where the whole reference was found


def pieces(
    recording: npt.NDArray[np.int16],
    reference: npt.NDArray[np.int16],
    at_s: float,
    piece_s: float = 0.5,
    search_s: float = 0.15,
) -> list[Piece]:
    """Each ``piece_s`` stretch of ``reference`` that carries sound, looked for within ``search_s``
    of where it belongs if the whole reference starts at ``at_s``: a voice that slipped by a few
    frames mid-call is still all there, a lost stretch is not."""
    rec = recording.astype(np.float64)
    ref = reference.astype(np.float64)
    n = int(piece_s * RATE)
    loudness = np.sqrt(np.mean(ref**2))
    out = []
    for start in range(0, len(ref) - n + 1, n):
        expected = round(at_s * RATE) + start
        begin = start + max(0, -expected)  # what was said before the recording began is not looked for
        piece = ref[begin : start + n]
        expected = max(0, expected)
        if len(piece) < n // 2 or np.sqrt(np.mean(piece**2)) < 0.2 * loudness:
            continue  # (mostly) before the recording, or a pause in the speech: nothing to find
        lo = max(0, expected - int(search_s * RATE))
        hi = min(len(rec), expected + len(piece) + int(search_s * RATE))
        if hi - lo < len(piece):
            out.append(Piece(start / RATE, 0.0, 0.0))
            continue
        corr = np.correlate(rec[lo:hi], piece, "valid")
        best = int(np.argmax(corr))
        out.append(
            Piece(start / RATE, float(corr[best] / np.dot(piece, piece)), (lo + best - expected) / RATE)
        )
    return out


class DaemonProcess:
    """`recorderd run --json` as a child process; its JSON log lines are collected as they come."""

    def __init__(self, config: Path, credentials: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CREDENTIALS_DIRECTORY": str(credentials)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recorderd.cli", "run", "--config", str(config), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            with self._changed:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        self.records.append(record)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # EOF: the process is gone

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        """The first log record with ``"event": name`` (already logged or yet to come)."""

        def seen() -> dict[str, Any] | None:
            return next((r for r in self.records if r.get("event") == name), None)

        with self._changed:
            self._changed.wait_for(lambda: seen() is not None or self.proc.poll() is not None, timeout)
            record = seen()
        if record is None:
            state = "exited" if self.proc.poll() is not None else f"never logged {name!r} in {timeout} s"
            raise RuntimeError(f"daemon {state}:\n" + "".join(self.lines[-20:]))
        return record

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        return self.proc.returncode


@dataclass
class Recording:
    row: Call
    samples: npt.NDArray[np.int16]  # stereo: the left channel (the caller)
    sox_seconds: float  # the length sox reads from the decrypted AU
    right: npt.NDArray[np.int16] | None = None  # stereo: the city side


class Lane:
    """One Asterisk and one daemon for a test module; each call is told apart by its caller number."""

    def __init__(self, work: Path, *, capture: bool = False) -> None:
        """``capture``: AGI, AMI and AudioSocket go through ``CaptureProxy``s (real_pbx/capture.py),
        so every byte each side sent is kept with its time (the fixture pack's regeneration)."""
        prefix, why = find_prefix()
        assert prefix is not None, why
        self.work = work
        self.ports = Ports()
        speech = work / "speech"
        speech.mkdir()
        # Two voices: the agent (Asterisk plays it) and the caller (RTP from SIPp, so what Asterisk
        # hears is its μ-law round trip: that is the reference to look for).
        self.agent = synthesize(
            "Good morning, city hall, welfare desk.", "en-us+f3", speech / "agent-speech.wav"
        )
        said = {
            "hello": synthesize("Hello?", "en-us", speech / "c0.wav"),
            "caller 1": synthesize(
                "I am calling about the garbage on my street.", "en-us", speech / "c1.wav"
            ),
            "caller 2": synthesize("It was missed again on Tuesday.", "en-us", speech / "c2.wav"),
        }
        self.caller = {name: ulaw_decode(ulaw_encode(pcm)) for name, pcm in said.items()}
        self.announcement = wav_samples(builtin_prompt("ja"))
        agent_s = len(self.agent) / RATE
        announce_s = len(self.announcement) / RATE
        # Inbound timeline after the answer: spy (≈0.3 s), announcement, Dial, the agent's sentence;
        # the caller goes on a second after that, and the agent stays silent until after the caller.
        first_at = round(0.6 + announce_s + 0.4 + agent_s + 1.0, 2)
        second_at = round(first_at + len(said["caller 1"]) / RATE + GAP_S, 2)
        self.said_at = {"hello": HELLO_AT, "caller 1": first_at, "caller 2": second_at}
        caller_end = second_at + len(said["caller 2"]) / RATE
        self.call_s = caller_end + 0.5  # the pcap's length
        agent_wait = caller_end - (0.6 + announce_s + 0.4 + agent_s) + 1.5
        # Outbound: the far end answers at once (no announcement before it), so it listens longer.
        trunk_wait = caller_end - agent_s + 1.5
        self.spurts = [Spurt(self.said_at[name], said[name]) for name in said]

        self.ami_secret = os.urandom(12).hex()
        self.pbx = Asterisk(
            prefix, self.ports, ami_secret=self.ami_secret,
            extensions=render_extensions(self.ports, agent_wait_s=agent_wait, trunk_wait_s=trunk_wait),
            sounds={"lane/agent-speech": speech / "agent-speech.wav",
                    "recorderd/announce-ja": builtin_prompt("ja")},
        )  # fmt: skip
        self.identity, recipient = generate_identity()
        self.identity_file = work / "identity.txt"
        self.identity_file.write_text(self.identity + "\n")
        self.identity_file.chmod(0o600)
        self.data_dir = work / "data"
        credentials = work / "credentials"
        credentials.mkdir(mode=0o700)
        (credentials / "ami-secret").write_text(self.ami_secret + "\n")
        # The ports the daemon itself uses: Asterisk's own unless a capture proxy sits between.
        agi, ami, audiosocket = self.ports.agi, self.ports.ami, self.ports.audiosocket
        self.proxies: dict[str, CaptureProxy] = {}
        if capture:
            agi, ami, audiosocket = free_tcp_port(), free_tcp_port(), free_tcp_port()
            self.proxies = {
                "agi": CaptureProxy(self.ports.agi, agi, "asterisk", "agi-server"),
                "ami": CaptureProxy(ami, self.ports.ami, "ami-client", "asterisk"),
                "audiosocket": CaptureProxy(
                    self.ports.audiosocket, audiosocket, "asterisk", "audiosocket-server"
                ),
            }
        self.config = work / "recorderd.toml"
        self.config.write_text(f"""
timezone = "Asia/Tokyo"
data_dir = "{self.data_dir}"
[agi]
listen = "127.0.0.1:{agi}"
[audiosocket]
listen = "127.0.0.1:{audiosocket}"
advertise = "127.0.0.1:{self.ports.audiosocket}"
[ami]
port = {ami}
username = "recorder"
secret_credential = "ami-secret"
[encryption]
recipients = ["{recipient}"]
[announcements.ja]
sound = "recorderd/announce-ja"
file = "{self.pbx.data / "sounds" / "recorderd" / "announce-ja.wav"}"
[defaults]
inbound = "exclude"
outbound = "exclude"
[[lines]]
name = "general"
direction = "inbound"
numbers = ["06-6858-5050"]
action = "record"
announcement = "ja"
[[lines]]
name = "stereo"
direction = "inbound"
numbers = ["06-6858-7070"]
action = "record"
announcement = "ja"
channels = "stereo"
[[lines]]
name = "counselling"
direction = "inbound"
numbers = ["06-6858-1111"]
action = "exclude"
[[lines]]
name = "staff-outbound"
direction = "outbound"
numbers = ["{STAFF_EXTENSION}"]
action = "record"
""")
        self.daemon: DaemonProcess | None = None
        self._calls = 0

    def start(self) -> None:
        self.pbx.start()
        self.daemon = DaemonProcess(self.config, self.work / "credentials")
        self.daemon.wait_event("ready", 30)
        self.daemon.wait_event("ami_connected", 15)  # the shipped AMI user logged in

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.pbx.stop()
        self.pbx.cleanup()
        for proxy in self.proxies.values():
            proxy.close()

    def diagnostics(self) -> str:
        daemon = "".join(self.daemon.lines[-30:]) if self.daemon else "(no daemon)"
        return f"--- daemon log ---\n{daemon}\n--- asterisk log ---\n{self.pbx.log_tail()}"

    def call(self, *, caller: str, dialled: str, suppress_silence: bool = False) -> None:
        """One SIP call from SIPp carrying the caller's two sentences; returns when the PBX hung up."""
        self._calls += 1
        workdir = self.work / f"call-{self._calls}"
        workdir.mkdir()
        media = free_udp_port(2)  # SIPp's audio and video sockets, each with its RTCP neighbour
        pcap = workdir / "caller.pcap"
        write_rtp_pcap(pcap, self.spurts, total_s=self.call_s, source_port=media,
                       suppress_silence=suppress_silence)  # fmt: skip
        name = "Ext 201" if caller == STAFF_EXTENSION else "SIPp Caller"
        result = run_uac(
            workdir, uac_scenario(caller=caller, caller_name=name, dialled=dialled, pcap=pcap),
            pbx_port=self.ports.sip, sip_port=free_udp_port(), media_port=media, timeout=self.call_s + 30,
        )  # fmt: skip
        assert result.returncode == 0, f"SIPp: {result.returncode}\n{result.output}\n{self.diagnostics()}"

    def rows(self) -> list[Call]:
        _e, sessions = open_database(f"sqlite:///{self.data_dir / 'recorderd.db'}", migrate=False)
        with sessions() as s:
            return list(s.query(Call))

    def wait_row(self, match: Callable[[Call], bool], timeout: float = 20) -> Call:
        """The catalogue row of a finished call (the daemon writes it in its own time: poll, bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.rows() if match(r)]
            if len(found) > 1:
                raise AssertionError(f"{len(found)} rows match: {[r.id for r in found]}")
            # Excluded calls are not followed on AMI (no times); the others are finished once sealed
            # and the hang-up is in.
            if found and (
                found[0].status == "excluded" or (found[0].status != "recording" and found[0].ended_at)
            ):
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no finished row within {timeout} s: {found}\n{self.diagnostics()}")
            time.sleep(0.1)

    def recording(self, row: Call, channels: int = 1) -> Recording:
        """Decrypt with the `age` CLI into memory; sox must read the result as audio too."""
        assert row.audio_path is not None and row.audio_path.endswith(".age"), row.audio_path
        with (self.data_dir / row.audio_path).open("rb") as f:
            age = ["age", "-d", "-i", str(self.identity_file)]
            au = subprocess.run(age, stdin=f, capture_output=True, check=True, timeout=30).stdout
        rate, stored, pcm = parse_au(au)
        assert (rate, stored) == (RATE, channels), (rate, stored)
        sox = subprocess.run(
            ["sox", "-t", "au", "-", "-n", "stat"], input=au, capture_output=True, check=True, timeout=30
        )  # fmt: skip
        lengths = [line for line in sox.stderr.decode().splitlines() if line.startswith("Length (seconds)")]
        seconds = float(lengths[0].split(":")[1])
        samples = np.frombuffer(pcm, dtype="<i2")
        if channels == 1:
            return Recording(row, samples.copy(), seconds)
        pairs = samples[: len(samples) - len(samples) % 2].reshape(-1, 2)
        return Recording(row, pairs[:, 0].copy(), seconds, pairs[:, 1].copy())
