"""The PBX simulator against stand-in daemon servers on real loopback sockets.

The stand-ins replay the commands recorded in ``fixtures/asterisk-20/agi/*.txt`` and compare
what the simulator answers with what the real Asterisk 20.20.1 answered. They parse the wire
with a few lines of their own, on purpose: neither the daemon's parsers nor the simulator's are
used to check the simulator.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import random
import re
import socket
import time
import uuid
import wave
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pbx.errors import UsageError
from pbx.simulator import CallResult, PbxSimulator, SimCall
from support.captures import FIXTURES, REFERENCE_AGENT, chunks, from_asterisk, sidecar

SPEED = 50.0
T = 5.0  # real-time bound for any single wait in these tests


# -- stand-in daemon: FastAGI server -------------------------------------------------------------


class AgiPeer:
    """One FastAGI connection, seen from the daemon's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.env_raw = b""
        self.env: list[tuple[str, str]] = []

    async def read_env(self) -> None:
        while not self.env_raw.endswith(b"\n\n"):
            data = await asyncio.wait_for(self.reader.read(4096), T)
            assert data, "EOF inside the AGI environment"
            self.env_raw += data
        for line in self.env_raw.decode().split("\n")[:-2]:
            key, _, value = line.partition(": ")
            self.env.append((key, value))

    @property
    def uniqueid(self) -> str:
        return dict(self.env)["agi_uniqueid"]

    async def read_line(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), T)
        assert line.endswith(b"\n"), f"EOF instead of a line: {line!r}"
        return line[:-1].decode()

    async def cmd(self, line: str) -> list[str]:
        """Send one command; return every line up to its final ``NNN `` answer line."""
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()
        lines = [await self.read_line()]
        while not re.match(r"\d{3} ", lines[-1]):
            lines.append(await self.read_line())
        return lines

    async def close_quietly(self) -> None:
        await self.close()

    async def close(self) -> bytes:
        """Half-close like the recommended daemon, then read until the PBX closes."""
        self.writer.write_eof()
        rest = await asyncio.wait_for(self.reader.read(), T)
        self.writer.close()
        return rest


Script = Callable[[AgiPeer], Awaitable[None]]


class AgiServer:
    def __init__(self) -> None:
        self.script: Script | None = None
        self.peers: list[AgiPeer] = []
        self.errors: list[BaseException] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = AgiPeer(reader, writer)
        self.peers.append(peer)
        try:
            await peer.read_env()
            assert self.script is not None
            await self.script(peer)
        except BaseException as exc:  # surfaced by check(), not lost in a server task
            self.errors.append(exc)
            writer.close()

    def check(self) -> None:
        if self.errors:
            raise self.errors[0]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


# -- stand-in daemon: AudioSocket server ---------------------------------------------------------


@dataclass
class AsConn:
    raw: bytearray = field(default_factory=bytearray)
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    uuid: str | None = None
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    eof: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def payload(self) -> bytes:
        return b"".join(body for kind, body in self.messages if kind == 0x10)


class AudioSocketServer:
    def __init__(self, hangup_after_frames: int | None = None) -> None:
        self.conns: list[AsConn] = []
        self.new_conn = asyncio.Event()
        self.hangup_after_frames = hangup_after_frames
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = AsConn()
        self.conns.append(conn)
        self.new_conn.set()
        buf = bytearray()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            conn.raw += data
            buf += data
            while len(buf) >= 3 and len(buf) >= 3 + int.from_bytes(buf[1:3], "big"):
                n = int.from_bytes(buf[1:3], "big")
                kind, body = buf[0], bytes(buf[3 : 3 + n])
                del buf[: 3 + n]
                conn.messages.append((kind, body))
                conn.arrival.append(time.monotonic())
                if kind == 0x01:
                    conn.uuid = str(uuid.UUID(bytes=body))
                    self.new_conn.set()
                elif kind == 0x10:
                    conn.first_frame.set()
                    frames = sum(1 for k, _ in conn.messages if k == 0x10)
                    if frames == self.hangup_after_frames:
                        writer.write(b"\x00\x00\x00")  # the server hangs the spy up
        conn.eof.set()
        writer.close()

    async def wait_conn(self, n: int = 1) -> AsConn:
        while len(self.conns) < n:
            self.new_conn.clear()
            await asyncio.wait_for(self.new_conn.wait(), T)
        return self.conns[n - 1]

    async def wait_uuid(self, spy_uuid: str) -> AsConn:
        while True:
            for conn in self.conns:
                if conn.uuid == spy_uuid:
                    return conn
            self.new_conn.clear()
            await asyncio.wait_for(self.new_conn.wait(), T)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connect is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- stand-in daemon: AMI client -----------------------------------------------------------------

Block = list[tuple[str, str]]


class AmiClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = b""
        self.banner = b""

    @classmethod
    async def connect(cls, port: int) -> AmiClient:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        client.banner = await asyncio.wait_for(client.reader.readline(), T)
        return client

    def send(self, *fields: tuple[str, str]) -> None:
        self.writer.write(b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\n")

    async def raw_block(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            data = await asyncio.wait_for(self.reader.read(65536), T)
            if not data:
                raise EOFError
            self.buf += data
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return raw + b"\r\n\r\n"

    async def block(self) -> Block:
        return parse_block(await self.raw_block())

    async def until_pong(self, aid: str = "sync") -> list[Block]:
        """Every event before the answer to a Ping: AMI keeps order on one connection."""
        self.send(("Action", "Ping"), ("ActionID", aid))
        events = []
        while (b := await self.block()) and dict(b).get("ActionID") != aid:
            events.append(b)
        return events

    async def eof(self) -> bytes:
        rest = self.buf + await asyncio.wait_for(self.reader.read(), T)
        self.buf = b""
        return rest


def parse_block(raw: bytes) -> Block:
    return [tuple(line.split(": ", 1)) for line in raw.decode().split("\r\n") if line]  # type: ignore[misc]


def capture_blocks(name: str) -> list[Block]:
    data = b"".join(from_asterisk(FIXTURES / "ami" / f"{name}.txt"))
    data = data[data.index(b"\r\n") + 2 :]  # the banner
    return [parse_block(b + b"\r\n\r\n") for b in data.split(b"\r\n\r\n") if b]


# -- fixtures ------------------------------------------------------------------------------------


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def ramp(samples: int, seed: int = 1) -> bytes:
    """Seeded noise, never zero: a misplaced or foreign sample shows up."""
    rng = random.Random(seed)
    return array("h", (rng.choice((-1, 1)) * rng.randint(1, 20000) for _ in range(samples))).tobytes()


def read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


@dataclass
class Harness:
    sim: PbxSimulator
    agi: AgiServer
    audiosocket: AudioSocketServer
    sounds: Path

    async def ami(self, login: bool = True) -> AmiClient:
        client = await AmiClient.connect(self.sim.ami_port)
        if login:
            client.send(
                ("Action", "Login"),
                ("Username", "recorder"),
                ("Secret", "recorder-secret"),
                ("Events", "on"),
                ("ActionID", "a1"),
            )
            for _ in range(3):  # Response, FullyBooted, SuccessfulAuth
                await client.block()
        return client

    async def call(self, call: SimCall, script: Script) -> CallResult:
        self.agi.script = script
        result = await asyncio.wait_for(self.sim.run_call(call), 3 * T)
        self.agi.check()
        return result


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    sounds = tmp_path / "sounds"
    write_wav(sounds / "beep.wav", ramp(3404))  # the stock beep's length: endpos=3404 as captured
    write_wav(sounds / "custom" / "agent-speech.wav", read_wav(REFERENCE_AGENT))
    write_wav(sounds / "announce.wav", ramp(4321, seed=5))
    write_wav(sounds / "wideband.wav", ramp(800), rate=16000)
    agi, audiosocket = AgiServer(), AudioSocketServer()
    await agi.start()
    await audiosocket.start()
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=agi.port, sounds_dir=sounds, speed=SPEED)
    await sim.start()
    yield Harness(sim, agi, audiosocket, sounds)
    await sim.close()
    await agi.stop()
    await audiosocket.stop()


def originate(
    h: Harness, uniqueid: str, spy_uuid: str, *, port: int | None = None, codec: str = "/c(slin)"
) -> str:
    port = h.audiosocket.port if port is None else port
    return f"EXEC Originate AudioSocket/127.0.0.1:{port}/{spy_uuid}{codec},app,ChanSpy,{uniqueid}\\\\,qEu,,,a"


# -- capture replay: the AGI conversation, line for line ------------------------------------------

# agi capture -> (ami capture of the same scenario, caller hang-up after the AGI started)
REPLAYS = {
    "local-inbound": ("local-call", None),
    "sip-inbound": ("sip-call", None),
    "sip-bridged-0668585099": ("sip-bridged-call", None),
    "recording-sequence-sip": ("recording-sequence-sip", None),
    "hangup-during-stream-file": ("hangup-during-stream-file", 3.0),
    "errors-510-520": (None, None),
    "audiosocket-down-originate": (None, None),
    "outbound-to-pstn": ("outbound-to-pstn", None),
}
_SIP_IDS = [
    (re.compile(r"1-\d+@127\.0\.0\.1"), "1-PID@127.0.0.1"),
    (re.compile(r"tag=\d+SIPp"), "tag=PIDSIPp"),
]


def call_from_env(env: dict[str, str], hangup: float | None) -> SimCall:
    return SimCall(
        caller=env["agi_callerid"],
        dialled=env["agi_extension"],
        direction="outbound" if env["agi_network_script"] == "outbound" else "inbound",
        tech="Local" if env["agi_type"] == "Local" else "SIP",
        caller_name=env["agi_calleridname"],
        caller_audio=ramp(800, seed=2),
        agent_audio=ramp(1200, seed=3),
        bridged=env["agi_extension"] == "0668585099",
        hangup_after_agi_s=hangup,
    )


def normalise(line: str, ours: CallResult, cap_uid: str, cap_linked: str) -> str:
    line = line.replace(cap_uid, ours.uniqueid).replace(cap_linked, ours.linkedid)
    for pattern, repl in _SIP_IDS:
        line = pattern.sub(repl, line)
    return line


def event_key(b: Block) -> str:
    """An event as the sequence tests compare it: name plus what distinguishes its kind."""
    f = dict(b)
    extra = f.get("Variable") or f.get("Application") or f.get("ChannelStateDesc", "")
    return f"{f['Event']}:{extra}" if f["Event"] in ("VarSet", "Newexten", "Newstate") else f["Event"]


@pytest.mark.parametrize("name", sorted(REPLAYS))
async def test_replay_agi_capture(harness: Harness, name: str) -> None:
    path = FIXTURES / "agi" / f"{name}.txt"
    side = sidecar(path)
    env, commands = side["env"], side["commands"]
    ami_name, hangup = REPLAYS[name]
    cap_uid = env["agi_uniqueid"]
    prefix, _, n = cap_uid.rpartition(".")
    cap_linked = f"{prefix}.{int(n) - 1}" if env["agi_type"] == "Local" else cap_uid
    as_port = closed_port() if name == "audiosocket-down-originate" else harness.audiosocket.port
    got: list[list[str]] = []
    tail: list[bytes] = []

    async def script(peer: AgiPeer) -> None:
        for c in commands:
            sent = c["sent"].replace(cap_uid, peer.uniqueid).replace("127.0.0.1:9092", f"127.0.0.1:{as_port}")
            # The recorded daemon idled after result=-1; the unsolicited HANGUP came meanwhile.
            early = [await peer.read_line()] if c["received_lines"][0] == "HANGUP" else []
            got.append(early + await peer.cmd(sent))
            if sent.startswith("EXEC Originate") and as_port == harness.audiosocket.port:
                await harness.audiosocket.wait_conn()  # as recorded: wait for the UUID message
        tail.append(await peer.close())

    ami = await harness.ami() if ami_name else None
    result = await harness.call(call_from_env(env, hangup), script)

    # The environment: same keys in the same order, same values but for per-call identifiers.
    ours = dict(harness.agi.peers[0].env)
    assert [k for k, _ in harness.agi.peers[0].env] == list(env)
    volatile = {"agi_request", "agi_channel", "agi_uniqueid", "agi_threadid"}
    assert {k: v for k, v in ours.items() if k not in volatile} == {
        k: v for k, v in env.items() if k not in volatile
    }
    assert ours["agi_request"] == f"agi://127.0.0.1:{harness.agi.port}/{env['agi_network_script']}"
    assert re.fullmatch(
        re.sub(r"0000000\d", "[0-9a-f]{8}", re.escape(env["agi_channel"])), ours["agi_channel"]
    )
    assert re.fullmatch(r"\d{15}", ours["agi_threadid"])
    assert harness.agi.peers[0].env_raw.endswith(
        b"agi_accountcode: \nagi_threadid: " + ours["agi_threadid"].encode() + b"\n\n"
    )

    # Every answer, line for line (the interrupted STREAM FILE's endpos depends on frame timing).
    expected = [[normalise(x, result, cap_uid, cap_linked) for x in c["received_lines"]] for c in commands]
    got = [[normalise(x, result, cap_uid, cap_uid) for x in lines] for lines in got]
    for want, have in zip(expected, got, strict=True):
        m = re.fullmatch(r"200 result=-1 endpos=(\d+)", want[-1])
        if m and int(m.group(1)) > 0:
            # The prompt began a few (scaled) milliseconds after the AGI started: at most 3 s of it.
            endpos = int(re.fullmatch(r"200 result=-1 endpos=(\d+)", have[-1]).group(1))  # type: ignore[union-attr]
            assert 0 < endpos <= int(m.group(1)), (want, have)
            want, have = want[:-1], have[:-1]
        assert have == want
    assert tail == [b"HANGUP\n"]  # then FIN, as every capture ends
    assert result.agi_commands == [line.replace(cap_uid, result.uniqueid) for line in result.agi_commands]
    assert result.agi_closed_by_daemon
    assert result.agi_status == ("HANGUP" if hangup else "SUCCESS")

    if ami is not None and ami_name is not None:
        events = [b for b in await ami.until_pong() if dict(b).get("Event")]
        cap = [b for b in capture_blocks(ami_name) if "Event" in dict(b) and dict(b)["Event"] != "RTCPSent"]
        want_seq = [event_key(b) for b in cap if dict(b).get("Uniqueid") == cap_uid]
        have_seq = [event_key(b) for b in events if dict(b).get("Uniqueid") == result.uniqueid]
        assert have_seq == want_seq, "\n".join(difflib.unified_diff(want_seq, have_seq, "capture", "ours"))
        cap_spy = [
            dict(b)["Uniqueid"]
            for b in cap
            if dict(b)["Event"] == "Newchannel" and "AudioSocket" in dict(b)["Channel"]
        ]
        our_spy = [
            dict(b)["Uniqueid"]
            for b in events
            if dict(b)["Event"] == "Newchannel" and "AudioSocket" in dict(b)["Channel"]
        ]
        assert len(our_spy) == len(cap_spy)
        if cap_spy:
            assert spy_sequence(events, our_spy[0]) == spy_sequence(cap, cap_spy[0])
        assert_layouts(events)
    if name == "audiosocket-down-originate":
        assert (result.originate_status, result.spy_uuid, result.spy_pcm) == ("FAILED", None, b"")


def spy_sequence(events: list[Block], uid: str) -> list[str]:
    ids = ("Uniqueid", "DestUniqueid", "SpyerUniqueid")
    return [event_key(b) for b in events if any(dict(b).get(k) == uid for k in ids)]


def capture_layouts() -> dict[str, set[tuple[str, ...]]]:
    layouts: dict[str, set[tuple[str, ...]]] = {}
    for path in sorted((FIXTURES / "ami").glob("*.txt")):
        for b in capture_blocks(path.stem):
            if b and b[0][0] == "Event":
                layouts.setdefault(b[0][1], set()).add(tuple(k for k, _ in b))
    return layouts


LAYOUTS = capture_layouts()


def assert_layouts(events: list[Block]) -> None:
    """Every event we emit has the exact field list of the same event in some capture."""
    for b in events:
        name = dict(b)["Event"]
        assert name in LAYOUTS, f"{name} never appears in the captures"
        assert tuple(k for k, _ in b) in LAYOUTS[name], b


# -- the spy stream ------------------------------------------------------------------------------


def frames_of(pcm: bytes) -> bytes:
    """``pcm`` zero-padded to whole 20 ms frames, as ChanSpy delivers it."""
    return pcm + bytes(-len(pcm) % 320)


async def test_announcement_lands_in_the_spy_stream_at_played_offset(harness: Harness) -> None:
    spy_uuid = str(uuid.uuid4())
    answers: dict[str, list[str]] = {}

    async def daemon(peer: AgiPeer) -> None:
        answers["originate"] = await peer.cmd(originate(harness, peer.uniqueid, spy_uuid))
        answers["status"] = await peer.cmd("GET VARIABLE ORIGINATE_STATUS")
        conn = await harness.audiosocket.wait_conn()
        await asyncio.wait_for(conn.first_frame.wait(), T)  # the recommended sync point
        answers["stream"] = await peer.cmd('STREAM FILE announce ""')
        answers["set"] = await peer.cmd("SET VARIABLE RECORDING_ID 8d460e2fcbbe43bab466c6583553aa80")
        assert await peer.close() == b"HANGUP\n"

    call = SimCall("0311112222", "0668585050", caller_audio=ramp(800, 2), agent_audio=ramp(1200, 3))
    result = await harness.call(call, daemon)
    assert answers == {
        "originate": ["200 result=0"],
        "status": ["200 result=1 (SUCCESS)"],
        "stream": ["200 result=0 endpos=4321"],
        "set": ["200 result=1"],
    }
    conn = harness.audiosocket.conns[0]
    await asyncio.wait_for(conn.eof.wait(), T)
    # Wire: the UUID first, then only 323-byte slin frames, then a bare FIN (no 0x00).
    assert conn.raw[:3] == b"\x01\x00\x10"
    assert conn.raw[3:19] == uuid.UUID(spy_uuid).bytes
    assert conn.messages[0] == (0x01, uuid.UUID(spy_uuid).bytes)
    assert {(k, len(b)) for k, b in conn.messages[1:]} == {(0x10, 320)}
    assert len(conn.raw) == 19 + 323 * (len(conn.messages) - 1)
    assert conn.payload == result.spy_pcm

    announce = read_wav(harness.sounds / "announce.wav")
    [(name, offset)] = result.played
    assert name == "announce"
    assert offset > 0
    at = round(offset * 16000)
    assert result.spy_pcm[at : at + len(announce)] == announce
    assert result.spy_pcm[:at] == bytes(at)  # SIP: frames through silence before it
    # After the AGI: the caller, then the agent, then the PBX hangs up.
    assert result.spy_pcm.endswith(frames_of(ramp(800, 2) + ramp(1200, 3)))
    assert (result.spy_uuid, result.variables) == (
        spy_uuid,
        {"RECORDING_ID": "8d460e2fcbbe43bab466c6583553aa80"},
    )
    assert (result.agi_status, result.hung_up_by_caller, result.originate_status) == (
        "SUCCESS",
        False,
        "SUCCESS",
    )


async def test_frames_are_paced_on_the_call_clock(harness: Harness) -> None:
    sent_at: list[float] = []

    async def daemon(peer: AgiPeer) -> None:
        sent_at.append(time.monotonic())
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4())))
        await peer.close()

    result = await harness.call(SimCall("0311112222", "0668585050", caller_audio=ramp(8000)), daemon)
    conn = harness.audiosocket.conns[0]
    await asyncio.wait_for(conn.eof.wait(), T)
    frames = [t for (k, _), t in zip(conn.messages, conn.arrival, strict=True) if k == 0x10]
    assert len(frames) == len(result.spy_pcm) // 320 >= 40  # 50, minus what preceded the attach
    # Frame i can never arrive before its slot: the attach delay (6 frames) plus i frames after
    # the Originate. A lower bound only, since a loaded machine delays frames (then catches up).
    frame_s = 0.02 / SPEED
    assert all(t >= sent_at[0] + (i + 5) * frame_s for i, t in enumerate(frames))


async def test_local_call_streams_only_audible_frames(harness: Harness) -> None:
    ami = await harness.ami()
    seen_before_audio: list[bool] = []

    async def daemon(peer: AgiPeer) -> None:
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4())))
        while dict(await ami.block()).get("Event") != "ChanSpyStart":
            pass
        seen_before_audio.append(harness.audiosocket.conns[0].first_frame.is_set())
        await peer.cmd('STREAM FILE announce ""')
        await peer.close()

    call = SimCall("0311112222", "0668585050", tech="Local", caller_name="Test", caller_audio=ramp(800, 2))
    result = await harness.call(call, daemon)
    assert seen_before_audio == [False]  # Local channels send nothing while nothing is audible
    announce = read_wav(harness.sounds / "announce.wav")
    assert result.played == [("announce", 0.0)]
    assert result.spy_pcm == frames_of(announce) + ramp(800, 2)  # the silent gap is not streamed


async def test_silence_suppression_sends_no_frames_while_nobody_speaks(harness: Harness) -> None:
    """A SIP line with DTX: like the captured Asterisk, ChanSpy sends nothing for the pause (the
    frames after it arrive a pause later), and the result reports the call's real timeline."""

    async def daemon(peer: AgiPeer) -> None:
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4())))
        await peer.close()

    pause = 50 * 320  # one second of zero samples: no RTP
    speech = ramp(1600, 3)  # 200 ms, never zero
    call = SimCall("0311112222", "0668585050", caller_audio=speech + bytes(pause) + speech,
                   silence_suppression=True)  # fmt: skip
    result = await harness.call(call, daemon)
    conn = harness.audiosocket.conns[0]
    await asyncio.wait_for(conn.eof.wait(), T)
    # Not a frame for the pause (the start of the first words may precede ChanSpy's attach).
    assert result.spy_pcm.endswith(speech) and len(result.spy_pcm) <= 2 * len(speech)
    pcm = result.spy_pcm
    assert all(any(pcm[k : k + 320]) for k in range(0, len(pcm), 320))
    frames = [t for (k, _), t in zip(conn.messages, conn.arrival, strict=True) if k == 0x10]
    gaps = [b - a for a, b in itertools.pairwise(frames)]
    assert max(gaps) >= 0.9 / SPEED  # the pause is a pause on the wire
    [(_name, start, end)] = [s for s in result.sources if s[0] == "caller"]
    assert end - start == len(call.caller_audio) // 2
    assert result.spy_first_frame is not None and result.spy_first_frame * 160 < end
    assert result.spy_closed_at is not None and result.spy_closed_at >= end / 160
    assert result.end_frame is not None and result.end_frame * 160 >= end


async def test_originate_without_slin_streams_ulaw_tagged_0x10(harness: Harness) -> None:
    async def daemon(peer: AgiPeer) -> None:
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4()), codec=""))
        await asyncio.wait_for((await harness.audiosocket.wait_conn()).first_frame.wait(), T)
        await peer.close()

    result = await harness.call(SimCall("0311112222", "0668585050", agent_audio=ramp(1600)), daemon)
    conn = harness.audiosocket.conns[0]
    await asyncio.wait_for(conn.eof.wait(), T)
    assert {(k, len(b)) for k, b in conn.messages[1:]} == {(0x10, 160)}  # the README pitfall
    assert result.spy_pcm[:160] == b"\xff" * 160  # mu-law silence


async def test_chanspy_on_unknown_uniqueid_sends_uuid_then_eof(harness: Harness) -> None:
    async def daemon(peer: AgiPeer) -> None:
        assert await peer.cmd(originate(harness, "1.999", str(uuid.uuid4()))) == ["200 result=0"]
        conn = await harness.audiosocket.wait_conn()
        await asyncio.wait_for(conn.eof.wait(), T)
        await peer.close()

    result = await harness.call(SimCall("0311112222", "0668585050"), daemon)
    assert [k for k, _ in harness.audiosocket.conns[0].messages] == [0x01]
    assert result.originate_status == "SUCCESS"
    assert result.spy_pcm == b""


async def test_server_hangup_message_ends_only_the_spy() -> None:
    agi, audiosocket = AgiServer(), AudioSocketServer(hangup_after_frames=3)
    await agi.start()
    await audiosocket.start()
    async with PbxSimulator(agi_host="127.0.0.1", agi_port=agi.port, speed=SPEED) as sim:
        h = Harness(sim, agi, audiosocket, Path())
        ami = await h.ami()

        async def daemon(peer: AgiPeer) -> None:
            await peer.cmd(originate(h, peer.uniqueid, str(uuid.uuid4())))
            await asyncio.wait_for((await audiosocket.wait_conn()).eof.wait(), T)  # the PBX let go
            assert await peer.cmd("CHANNEL STATUS") == ["200 result=6"]  # the call is still up
            await peer.close()

        result = await h.call(SimCall("0311112222", "0668585050", agent_audio=ramp(1600)), daemon)
        events = [(event_key(b), dict(b).get("Uniqueid")) for b in await ami.until_pong()]
    spy_hangup = next(i for i, (k, uid) in enumerate(events) if k == "Hangup" and uid != result.uniqueid)
    call_hangup = events.index(("Hangup", result.uniqueid))
    assert (
        events.index(("ChanSpyStop", None))
        < spy_hangup
        < events.index(("Newexten:Playback", result.uniqueid))
    )
    assert spy_hangup < call_hangup
    # Stopped before the conversation (which began after the spy's EOF), and nothing was lost.
    assert result.agi_status == "SUCCESS"
    assert len(result.spy_pcm) >= 3 * 320
    assert ramp(1600) not in result.spy_pcm
    assert result.spy_pcm == audiosocket.conns[0].payload
    await agi.stop()
    await audiosocket.stop()


async def test_concurrent_calls_are_independent(harness: Harness) -> None:
    async def daemon(peer: AgiPeer) -> None:
        spy_uuid = str(uuid.uuid4())
        await peer.cmd(originate(harness, peer.uniqueid, spy_uuid))
        await asyncio.wait_for((await harness.audiosocket.wait_uuid(spy_uuid)).first_frame.wait(), T)
        await peer.close()

    calls = [
        SimCall(f"03111122{i:02d}", "0668585050", caller_audio=ramp(1000, seed=10 + i)) for i in range(5)
    ]
    results = await asyncio.gather(*(harness.call(c, daemon) for c in calls))
    assert len({r.uniqueid for r in results}) == len({r.channel for r in results}) == 5
    assert sorted(r.channel for r in results) == [f"SIP/127.0.0.1-{i:08x}" for i in range(5)]
    for i, r in enumerate(results):
        assert ramp(1000, seed=10 + i) in r.spy_pcm


# -- hang-ups ------------------------------------------------------------------------------------


async def test_caller_hangs_up_during_stream_file(harness: Harness) -> None:
    ami = await harness.ami()
    lines: list[list[str]] = []
    seen_hangup_before_close: list[bool] = []

    async def daemon(peer: AgiPeer) -> None:
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4())))
        await asyncio.wait_for((await harness.audiosocket.wait_conn()).first_frame.wait(), T)
        lines.append(await peer.cmd('STREAM FILE custom/agent-speech ""'))
        lines.append([await peer.read_line()])  # unsolicited, about 40 ms later
        for command in ('STREAM FILE beep ""', "CHANNEL STATUS", "GET VARIABLE UNIQUEID", "SET VARIABLE A b"):
            lines.append(await peer.cmd(command))
        events = await ami.until_pong()
        seen_hangup_before_close.append(any(dict(b).get("Event") == "Hangup" for b in events))
        assert not harness.audiosocket.conns[0].eof.is_set()  # the dead channel lingers...
        assert await peer.close() == b"HANGUP\n"  # ...until the daemon lets go

    result = await harness.call(SimCall("0311112222", "0668585050", hangup_after_agi_s=5.0), daemon)
    assert re.fullmatch(r"200 result=-1 endpos=\d+", lines[0][0])
    assert 0 < int(lines[0][0].rsplit("=", 1)[1]) < 40000  # started after the attach, cut at 5 s
    assert lines[1:] == [
        ["HANGUP"],
        ["511 Command Not Permitted on a dead channel or intercept routine"],
        ["511 Command Not Permitted on a dead channel or intercept routine"],
        [f"200 result=1 ({result.uniqueid})"],
        ["200 result=1"],
    ]
    assert seen_hangup_before_close == [False]
    assert (result.hung_up_by_caller, result.agi_status, result.agi_closed_by_daemon) == (
        True,
        "HANGUP",
        True,
    )
    assert result.variables == {"A": "b"}
    # The spy stream stopped at the hang-up: 5 s of call time after the AGI started.
    assert len(result.spy_pcm) <= 5.0 * 16000
    events = await ami.until_pong()
    hangup = next(dict(b) for b in events if dict(b).get("Event") == "Hangup")
    assert (hangup["Uniqueid"], hangup["Cause"], hangup["Cause-txt"]) == (result.uniqueid, "0", "Unknown")


async def test_caller_hangs_up_while_the_agi_is_idle(harness: Harness) -> None:
    lines: list[list[str]] = []

    async def daemon(peer: AgiPeer) -> None:
        lines.append([await peer.read_line()])  # nothing sent: Asterisk speaks first
        lines.append(await peer.cmd("CHANNEL STATUS"))
        lines.append(await peer.cmd("GET FULL VARIABLE ${EXTEN}"))
        assert await peer.close() == b"HANGUP\n"

    result = await harness.call(SimCall("0311112222", "0668585050", hangup_after_agi_s=0.2), daemon)
    assert lines == [
        ["HANGUP"],
        ["511 Command Not Permitted on a dead channel or intercept routine"],
        ["200 result=1 (0668585050)"],
    ]
    assert (result.hung_up_by_caller, result.agi_status) == (True, "HANGUP")


async def test_agi_hangup_command(harness: Harness) -> None:
    lines: list[list[str]] = []

    async def daemon(peer: AgiPeer) -> None:
        lines.append(await peer.cmd("HANGUP"))
        lines.append([await peer.read_line()])
        lines.append(await peer.cmd("EXEC NoOp x"))  # EXEC is allowed on a dead channel
        assert await peer.close() == b"HANGUP\n"

    result = await harness.call(SimCall("0311112222", "0668585050", agent_audio=ramp(800)), daemon)
    assert lines == [["200 result=1"], ["HANGUP"], ["200 result=0"]]
    assert (result.hung_up_by_caller, result.agi_status) == (False, "HANGUP")


async def test_caller_hangs_up_during_the_conversation(harness: Harness) -> None:
    async def daemon(peer: AgiPeer) -> None:
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4())))
        await peer.close()

    call = SimCall("0311112222", "0668585050", caller_audio=ramp(24000), hangup_after_agi_s=2.0)
    result = await harness.call(call, daemon)
    assert (result.hung_up_by_caller, result.agi_status) == (True, "SUCCESS")
    assert len(result.spy_pcm) <= 2.0 * 16000


async def test_agi_server_unreachable_the_call_goes_on() -> None:
    async with PbxSimulator(agi_host="127.0.0.1", agi_port=closed_port(), speed=SPEED) as sim:
        ami = await Harness(sim, AgiServer(), AudioSocketServer(), Path()).ami()
        result = await asyncio.wait_for(
            sim.run_call(SimCall("0311112222", "0668585050", agent_audio=ramp(800))), T
        )
        events = [event_key(b) for b in await ami.until_pong()]
    assert (result.agi_status, result.agi_commands, result.agi_closed_by_daemon) == ("FAILURE", [], False)
    assert events.index("VarSet:AGISTATUS") < events.index("Newexten:Playback") < events.index("Hangup")


# -- AMI -----------------------------------------------------------------------------------------


def capture_chunks(name: str) -> list[bytes]:
    return from_asterisk(FIXTURES / "ami" / f"{name}.txt")


_VOLATILE = [
    (re.compile(rb"(Uptime|LastReload|CoreCurrentCalls|CoreProcessedCalls): \d+"), rb"\1: N"),
    (re.compile(rb"Timestamp: \d+\.\d{6}"), b"Timestamp: T"),
    (re.compile(rb"(EventTV|SessionTV): [0-9T:.+-]+"), rb"\1: TV"),
    (re.compile(rb"SessionID: 0x[0-9a-f]+"), b"SessionID: S"),
    (re.compile(rb"IPV4/TCP/127\.0\.0\.1/\d+"), b"IPV4/TCP/127.0.0.1/P"),
    (re.compile(rb"Core(Startup|Reload)(Date|Time): [0-9:-]+"), rb"Core\1\2: D"),
]


def scrub(data: bytes) -> bytes:
    for pattern, repl in _VOLATILE:
        data = pattern.sub(repl, data)
    return data


async def replay_ami(port: int, name: str) -> tuple[bytes, float]:
    """Send a capture's client chunks verbatim, each once the PBX has answered as many blocks as
    Asterisk did; return everything the PBX sent until its FIN, and how long that took."""
    cs = list(chunks(FIXTURES / "ami" / f"{name}.txt"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    received = await asyncio.wait_for(reader.readline(), T)  # the banner
    pending = b""
    for i, chunk in enumerate(cs):
        if chunk.dst != "asterisk" or not chunk.data:
            continue
        writer.write(chunk.data)
        replies = []
        for later in cs[i + 1 :]:
            if later.dst == "asterisk":
                break
            replies.append(later.data)
        want = b"".join(replies).count(b"\r\n\r\n")
        while pending.count(b"\r\n\r\n") < want and (data := await asyncio.wait_for(reader.read(65536), T)):
            pending += data
    received += pending + await asyncio.wait_for(reader.read(), T)  # up to FIN
    writer.close()
    return received, time.monotonic() - started


async def test_ami_login_ping_coresettings_corestatus_logoff_as_captured(harness: Harness) -> None:
    received, _ = await replay_ami(harness.sim.ami_port, "ping-coresettings")
    assert scrub(received) == scrub(b"".join(capture_chunks("ping-coresettings")))


async def test_ami_wrong_secret_as_captured(harness: Harness) -> None:
    observer = await harness.ami()
    received, elapsed = await replay_ami(harness.sim.ami_port, "login-wrong-secret")
    assert received == b"".join(capture_chunks("login-wrong-secret"))  # byte for byte, then FIN
    assert elapsed >= 1.0 / SPEED
    [event] = [b for b in await observer.until_pong() if dict(b).get("Event") == "InvalidPassword"]
    [cap] = [
        b for b in capture_blocks("login-wrong-secret-observer") if dict(b).get("Event") == "InvalidPassword"
    ]
    assert [k for k, _ in event] == [k for k, _ in cap]
    assert scrub(b"".join(f"{k}: {v}\r\n".encode() for k, v in event)) == scrub(
        b"".join(f"{k}: {v}\r\n".encode() for k, v in cap)
    )


async def test_ami_errors(harness: Harness) -> None:
    client = await AmiClient.connect(harness.sim.ami_port)
    client.send(("Action", "Ping"), ("ActionID", "x1"))
    assert (
        await client.raw_block() == b"Response: Error\r\nActionID: x1\r\nMessage: Permission denied\r\n\r\n"
    )
    client = await harness.ami()
    client.send(("Action", "NoSuchThing"), ("ActionID", "x2"))
    assert (
        await client.raw_block()
        == b"Response: Error\r\nActionID: x2\r\nMessage: Invalid/unknown command\r\n\r\n"
    )
    client.writer.write(b"Action: Ping\nActionID: x3\n\n")  # manager.c also takes bare \n
    assert (
        scrub(await client.raw_block())
        == b"Response: Success\r\nActionID: x3\r\nPing: Pong\r\nTimestamp: T\r\n\r\n"
    )


async def test_shutdown_idle_as_captured(harness: Harness) -> None:
    logged_in = await harness.ami()
    anonymous = await AmiClient.connect(harness.sim.ami_port)
    await harness.sim.shutdown()
    cap = capture_chunks("shutdown-core-stop-now")
    assert scrub(await logged_in.eof()) == scrub(cap[-2])
    assert cap[-1] == b""
    assert await anonymous.eof() == b""  # never logged in: no bytes, just FIN
    assert capture_chunks("shutdown-core-stop-now-unauthenticated")[1:] == [b""]
    with pytest.raises(ConnectionRefusedError):
        await AmiClient.connect(harness.sim.ami_port)


async def test_shutdown_during_a_call(harness: Harness) -> None:
    """Like shutdown-during-stream-file: result=-1, HANGUP, the AGI still answers, Shutdown last."""
    ami = await harness.ami()
    lines: list[list[str]] = []

    async def daemon(peer: AgiPeer) -> None:
        await peer.cmd(originate(harness, peer.uniqueid, str(uuid.uuid4())))
        while dict(await ami.block()).get("Event") != "ChanSpyStart":
            pass
        answer = asyncio.create_task(peer.cmd('STREAM FILE custom/agent-speech ""'))
        # A Local channel streams only audible frames: the first one means the prompt is playing.
        await asyncio.wait_for(harness.audiosocket.conns[0].first_frame.wait(), T)
        stopping.append(asyncio.create_task(harness.sim.shutdown()))
        lines.append(await answer)
        lines.append([await peer.read_line()])
        lines.append(await peer.cmd("GET VARIABLE UNIQUEID"))
        assert await peer.close() == b"HANGUP\n"

    stopping: list[asyncio.Task[None]] = []
    result = await harness.call(SimCall("0311112222", "0668585050", tech="Local", caller_name="Test"), daemon)
    await stopping[0]
    rest = parse_block_stream(await ami.eof())
    assert re.fullmatch(r"200 result=-1 endpos=\d+", lines[0][0])
    assert lines[1:] == [["HANGUP"], [f"200 result=1 ({result.uniqueid})"]]
    assert result.agi_status == "HANGUP"
    names = [event_key(b) for b in rest]
    assert names[-1] == "Shutdown"
    cap = capture_blocks("shutdown-core-stop-now-during-call")
    cap_uid = sidecar(FIXTURES / "agi" / "shutdown-during-stream-file.txt")["env"]["agi_uniqueid"]

    def tail(events: list[Block], uid: str) -> list[str]:
        """The AGI channel's events from the shutdown on, with the causes."""
        seq = [f"{event_key(b)}:{dict(b).get('Cause', '')}" for b in events if dict(b).get("Uniqueid") == uid]
        return seq[next(i for i, e in enumerate(seq) if e.endswith(":4")) :]

    assert tail(rest, result.uniqueid) == tail(cap, cap_uid)


def parse_block_stream(data: bytes) -> list[Block]:
    return [parse_block(b + b"\r\n\r\n") for b in data.split(b"\r\n\r\n") if b]


async def test_restart_after_shutdown_renumbers_from_zero(harness: Harness) -> None:
    async def daemon(peer: AgiPeer) -> None:
        await peer.close()

    port = harness.sim.ami_port
    await harness.call(SimCall("0311112222", "0668585050"), daemon)
    await harness.sim.shutdown()
    await harness.sim.start(ami_port=port)  # "Asterisk is back": the daemon reconnects here
    client = await AmiClient.connect(port)
    assert client.banner == b"Asterisk Call Manager/9.0.0\r\n"
    result = await harness.call(SimCall("0311112222", "0668585050"), daemon)
    assert result.uniqueid.endswith(".0")
    assert result.channel == "SIP/127.0.0.1-00000000"


async def test_agi_target_can_be_set_after_start(harness: Harness) -> None:
    other = AgiServer()
    await other.start()
    harness.sim.set_agi_target("127.0.0.1", other.port)
    other.script = AgiPeer.close_quietly
    result = await asyncio.wait_for(harness.sim.run_call(SimCall("0311112222", "0668585050")), T)
    other.check()
    assert (len(other.peers), len(harness.agi.peers), result.agi_status) == (1, 0, "SUCCESS")
    assert dict(other.peers[0].env)["agi_request"] == f"agi://127.0.0.1:{other.port}/inbound"
    await other.stop()


async def test_misuse_is_reported() -> None:
    with pytest.raises(UsageError):
        PbxSimulator(agi_host="127.0.0.1", agi_port=1, speed=0)
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=1)
    with pytest.raises(UsageError):
        await sim.run_call(SimCall("1", "2"))
    with pytest.raises(UsageError):
        SimCall("1", "2", caller_audio=b"\x00")
