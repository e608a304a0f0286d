"""``AudioSocketParser.take_audio``: the batch path gives exactly what the per-frame events give."""

from __future__ import annotations

import itertools
import uuid
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
    encode_uuid,
)
from pbx.errors import PeerProtocolError
from support.captures import audiosocket_captures

CAPTURES = audiosocket_captures()
UID = uuid.UUID("2f9280f8-f4af-4b1b-bc57-bbdf7ab133e0")


def batched(pieces: list[bytes]) -> tuple[bytes, list[object]]:
    """Drive the parser the way the coalescing server does: audio in batches, the rest as events."""
    parser = AudioSocketParser()
    audio = bytearray()
    others: list[object] = []
    for piece in [*pieces, b""]:
        parser.receive_data(piece)
        while True:
            audio += parser.take_audio()
            event = parser.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, Audio):
                audio += event.payload
            else:
                others.append(event)
    return bytes(audio), others


def per_frame(data: bytes) -> tuple[bytes, list[object]]:
    parser = AudioSocketParser()
    parser.receive_data(data)
    parser.receive_data(b"")
    events = list(parser.events())
    audio = b"".join(e.payload for e in events if isinstance(e, Audio))
    return audio, [e for e in events if not isinstance(e, Audio)]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=40))
def test_capture_split_anywhere_gives_the_same_audio(path: Path, cuts: list[int]) -> None:
    data = path.read_bytes()
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    assert batched(pieces) == per_frame(data)


def test_batch_stops_at_anything_but_audio() -> None:
    frames = [bytes([i]) * 320 for i in range(5)]
    p = AudioSocketParser()
    assert p.take_audio() == b""  # nothing before the UUID
    p.receive_data(encode_uuid(UID) + encode_audio(frames[0]))
    assert p.take_audio() == b""  # the UUID comes first, as an event
    assert p.next_event() == Identified(UID)
    assert p.take_audio() == frames[0]
    wire = b"".join(encode_audio(f) for f in frames[1:3]) + b"\x03\x00\x017" + encode_audio(frames[3])
    p.receive_data(wire + encode_error(2) + encode_audio(frames[4])[:100])
    assert p.take_audio() == frames[1] + frames[2]
    assert p.take_audio() == b""
    assert p.next_event() == Dtmf("7")
    assert p.take_audio() == frames[3]
    assert p.next_event() == PeerError(2)
    assert p.take_audio() == b""  # a partial frame waits for the rest
    p.receive_data(encode_audio(frames[4])[100:])
    assert p.take_audio() == frames[4]
    p.receive_data(b"")
    assert p.next_event() == Hangup(eof=True)
    assert p.take_audio() == b""


@pytest.mark.parametrize(
    "bad",
    [b"\x10\x00\x03abc", b"\x10\xff\xff", b"\x42\x00\x00"],
    ids=["odd-length", "oversized", "unknown-type"],
)
def test_bad_frame_is_left_for_next_event_to_reject(bad: bytes) -> None:
    p = AudioSocketParser()
    p.receive_data(encode_uuid(UID) + encode_audio(b"\1\2") + bad)
    assert p.next_event() == Identified(UID)
    assert p.take_audio() == b"\1\2"
    assert p.take_audio() == b""
    with pytest.raises(PeerProtocolError):
        p.next_event()
