"""The AudioSocket sans-IO parser against every Asterisk 20.20.1 capture, and malformed input."""

from __future__ import annotations

import itertools
import uuid
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.audiosocket.protocol import (
    NEED_DATA,
    Audio,
    AudioSocketParser,
    Dtmf,
    Hangup,
    Identified,
    PeerError,
    encode_audio,
    encode_error,
    encode_hangup,
    encode_uuid,
)
from pbx.errors import PeerProtocolError, UsageError
from support.captures import audiosocket_captures, sidecar

CAPTURES = audiosocket_captures()
IDS = [p.stem for p in CAPTURES]


def parse(pieces: list[bytes]) -> list[object]:
    parser = AudioSocketParser()
    events: list[object] = []
    for piece in [*pieces, b""]:
        parser.receive_data(piece)
        events.extend(parser.events())
    assert parser.next_event() is NEED_DATA  # nothing after the hangup
    return events


@cache
def whole(path: Path) -> tuple[object, ...]:
    return tuple(parse([path.read_bytes()]))


def check(path: Path, events: list[object] | tuple[object, ...]) -> None:
    meta = sidecar(path)
    assert events[0] == Identified(uuid.UUID(meta["uuid"]))
    frames = events[1:-1]
    assert len(frames) == meta["frame_count"]
    assert all(type(f) is Audio and len(f.payload) == 320 for f in frames)
    assert events[-1] == Hangup(eof=True)


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_capture_whole(path: Path) -> None:
    check(path, whole(path))
    data = path.read_bytes()
    audio = b"".join(f.payload for f in whole(path)[1:-1])  # type: ignore[attr-defined]
    assert len(audio) + 19 + 3 * sidecar(path)["frame_count"] == len(data)


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_capture_recv_replay(path: Path) -> None:
    data = path.read_bytes()
    sizes = [n for _t, n in sidecar(path)["recv"]]
    assert sum(sizes) == len(data)
    pieces, pos = [], 0
    for n in sizes:
        pieces.append(data[pos : pos + n])
        pos += n
    assert tuple(parse(pieces)) == whole(path)


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_capture_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    assert tuple(parse([data[i : i + 1] for i in range(len(data))])) == whole(path)


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=60))
def test_capture_random_split(path: Path, cuts: list[int]) -> None:
    data = path.read_bytes()
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    assert tuple(parse(pieces)) == whole(path)


UID = uuid.UUID("2f9280f8-f4af-4b1b-bc57-bbdf7ab133e0")


def identified() -> AudioSocketParser:
    p = AudioSocketParser()
    p.receive_data(encode_uuid(UID))
    assert p.next_event() == Identified(UID)
    return p


def test_other_messages_and_encoders() -> None:
    p = identified()
    assert p.uuid == UID
    p.receive_data(b"\x03\x00\x015" + encode_error(1) + encode_error() + encode_audio(b"\x01\x02"))
    p.receive_data(encode_hangup() + b"ignored after the hangup")
    assert list(p.events()) == [
        Dtmf("5"),
        PeerError(1),
        PeerError(None),
        Audio(b"\x01\x02"),
        Hangup(eof=False),
    ]
    assert list(p.events()) == []
    p.receive_data(b"")
    assert p.next_event() is NEED_DATA
    with pytest.raises(UsageError):
        p.receive_data(b"x")
    assert encode_audio(b"\0" * 320)[:3] == b"\x10\x01\x40"
    with pytest.raises(UsageError):
        encode_audio(b"\0")
    with pytest.raises(UsageError):
        encode_audio(b"\0" * 65536)
    with pytest.raises(UsageError):
        encode_error(256)


def test_compaction_keeps_frames_intact() -> None:
    p = identified()
    frames = [bytes([i % 256]) * 320 for i in range(1000)]
    wire = b"".join(encode_audio(f) for f in frames)
    got = []
    for i in range(0, len(wire), 1000):  # never aligned with a frame: offset grows, then compacts
        p.receive_data(wire[i : i + 1000])
        got.extend(e.payload for e in p.events() if isinstance(e, Audio))
    assert got == frames


@pytest.mark.parametrize(
    ("data", "eof"),
    [
        (encode_uuid(UID) + b"\x02\x00\x00", False),  # unknown type
        (encode_uuid(UID) + b"\x10\xff\xff", False),  # 65535 claim: rejected on the header alone
        (b"\x01\x00\x0f", False),  # UUID of 15 bytes: rejected on the header alone
        (b"\x01\x00\x11" + bytes(17), False),
        (encode_audio(b"\0" * 320), False),  # audio before the UUID
        (encode_uuid(UID) + encode_uuid(UID), False),  # second UUID
        (encode_uuid(UID) + b"\x10\x00\x03abc", False),  # odd-length slin
        (encode_uuid(UID) + b"\x03\x00\x02ab", False),  # DTMF of 2 bytes
        (encode_uuid(UID) + b"\x03\x00\x01\xe9", False),  # non-ASCII DTMF
        (encode_uuid(UID) + encode_audio(b"\0" * 320)[:100], True),  # EOF mid-frame
        (encode_uuid(UID) + b"\x10\x01", True),  # EOF mid-header
        (encode_uuid(UID)[:10], True),  # EOF mid-UUID
    ],
)
def test_malformed(data: bytes, eof: bool) -> None:
    p = AudioSocketParser()
    p.receive_data(data)
    if eof:
        p.receive_data(b"")
    with pytest.raises(PeerProtocolError):
        list(p.events())


def test_max_payload_is_configurable() -> None:
    p = AudioSocketParser(max_payload=320)
    p.receive_data(encode_uuid(UID) + b"\x10\x01\x42")
    assert p.next_event() == Identified(UID)
    with pytest.raises(PeerProtocolError):
        p.next_event()
