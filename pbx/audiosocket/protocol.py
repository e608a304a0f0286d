"""Sans-IO core of the AudioSocket protocol (server side: Asterisk connects and streams to us).

Wire format: 1-byte type, uint16 big-endian payload length, payload. Asterisk sends the UUID
message first, then 20 ms signed-linear frames; it never sends a hangup message, it just closes
TCP, so EOF *is* the hangup. This parser runs 50 times a second per call, so it keeps an offset
into one bytearray instead of re-slicing the buffer for each frame.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from pbx.errors import PeerProtocolError, UsageError

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10  # signed linear 16-bit LE, 8 kHz, mono; 320 bytes = 20 ms
KIND_ERROR = 0xFF

_KNOWN = frozenset({KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR})
_MAX_WIRE_PAYLOAD = 0xFFFF
_COMPACT_AT = 64 * 1024  # drop consumed bytes once this many have piled up at the front


@dataclass(frozen=True, slots=True)
class Identified:
    """The first message: the UUID we put in the dial string (``AudioSocket/host:port/<uuid>``)."""

    uuid: uuid.UUID


@dataclass(frozen=True, slots=True)
class Audio:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """The stream ended: ``eof=True`` when the peer closed TCP (what Asterisk does), False on 0x00."""

    eof: bool


@dataclass(frozen=True, slots=True)
class PeerError:
    """A 0xff message. Asterisk's codes: 1 = caller hung up, 2 = frame forwarding, 4 = memory."""

    code: int | None


@dataclass(frozen=True, slots=True)
class NeedData:
    """Feed more bytes with ``receive_data`` before asking for the next event."""


NEED_DATA = NeedData()

Event = Identified | Audio | Dtmf | Hangup | PeerError | NeedData


class AudioSocketParser:
    def __init__(self, max_payload: int = 4096) -> None:
        self._max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0  # start of the first unparsed byte in _buf
        self._eof = False
        self._uuid: uuid.UUID | None = None
        self._done = False  # Hangup returned: nothing more will be parsed

    @property
    def uuid(self) -> uuid.UUID | None:
        return self._uuid

    @property
    def pending(self) -> int:
        """Bytes received but not yet parsed (the start of a message still incomplete)."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket; ``b""`` means the peer closed (the hangup)."""
        if self._eof:
            if data:
                raise UsageError("data received after EOF")
            return
        if not data:
            self._eof = True
            return
        if self._done:
            return  # after a 0x00 hangup the rest of the stream is ignored
        if self._pos == len(self._buf):
            # Usual case (one message per recv): everything consumed, restart at 0 for free.
            self._buf.clear()
            self._pos = 0
        elif self._pos >= _COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_event(self) -> Event:
        if self._done:
            return NEED_DATA
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail < 3:
            if not self._eof:
                return NEED_DATA
            if avail:
                raise PeerProtocolError("EOF in the middle of an AudioSocket header")
            self._done = True
            return Hangup(eof=True)
        kind = buf[pos]
        length = (buf[pos + 1] << 8) | buf[pos + 2]
        # Fast path first: a well-formed audio frame after the UUID.
        if kind == KIND_AUDIO and self._uuid is not None and length <= self._max_payload and not length & 1:
            end = pos + 3 + length
            if end > len(buf):
                return self._short()
            self._pos = end
            return Audio(bytes(buf[pos + 3 : end]))
        self._check_header(kind, length)
        end = pos + 3 + length
        if end > len(buf):
            return self._short()
        payload = bytes(buf[pos + 3 : end])
        self._pos = end
        if kind == KIND_UUID:
            self._uuid = uuid.UUID(bytes=payload)
            return Identified(self._uuid)
        if kind == KIND_DTMF:
            if payload[0] >= 0x80:
                raise PeerProtocolError(f"non-ASCII AudioSocket DTMF byte 0x{payload[0]:02x}")
            return Dtmf(chr(payload[0]))
        if kind == KIND_ERROR:
            return PeerError(payload[0] if payload else None)
        self._done = True  # KIND_HANGUP
        return Hangup(eof=False)

    def take_audio(self) -> bytes:
        """The payloads of every complete, well-formed audio frame at the front of the buffer,
        joined in order (``b""`` if the next message is anything else or still incomplete).

        The batch alternative to one ``Audio`` event per frame: one call, one bytes object, for all
        the frames a recv() brought. Whatever is not a whole valid audio frame is left in place for
        ``next_event()``, which reports it (or its error) exactly as it always does.
        """
        if self._done or self._uuid is None:
            return b""
        buf, pos = self._buf, self._pos
        end = len(buf)
        limit = self._max_payload
        parts = []
        while end - pos >= 3 and buf[pos] == KIND_AUDIO:
            length = (buf[pos + 1] << 8) | buf[pos + 2]
            stop = pos + 3 + length
            if length > limit or length & 1 or stop > end:
                break
            parts.append(buf[pos + 3 : stop])
            pos = stop
        if not parts:
            return b""
        self._pos = pos
        return b"".join(parts)

    def events(self) -> Iterator[Event]:
        """Every event available now (NEED_DATA excluded); stops after a Hangup."""
        while True:
            event = self.next_event()
            if event is NEED_DATA:
                return
            yield event
            if type(event) is Hangup:
                return

    def _short(self) -> NeedData:
        if self._eof:
            raise PeerProtocolError("EOF in the middle of an AudioSocket message")
        return NEED_DATA

    def _check_header(self, kind: int, length: int) -> None:
        """Reject a bad message as soon as its 3-byte header is known, before its payload."""
        if kind not in _KNOWN:
            raise PeerProtocolError(f"unknown AudioSocket message type 0x{kind:02x}")
        if length > self._max_payload:
            raise PeerProtocolError(f"AudioSocket payload of {length} bytes exceeds {self._max_payload}")
        if self._uuid is None and kind != KIND_UUID:
            raise PeerProtocolError(f"AudioSocket message 0x{kind:02x} before the UUID")
        if kind == KIND_UUID:
            if self._uuid is not None:
                raise PeerProtocolError("second AudioSocket UUID message")
            if length != 16:
                raise PeerProtocolError(f"AudioSocket UUID payload of {length} bytes, expected 16")
        elif kind == KIND_AUDIO and length & 1:
            raise PeerProtocolError(f"odd-length AudioSocket audio payload ({length} bytes)")
        elif kind == KIND_DTMF and length != 1:
            raise PeerProtocolError(f"AudioSocket DTMF payload of {length} bytes, expected 1")


def _frame(kind: int, payload: bytes) -> bytes:
    if len(payload) > _MAX_WIRE_PAYLOAD:
        raise UsageError(f"AudioSocket payload of {len(payload)} bytes does not fit the length field")
    return bytes((kind, len(payload) >> 8, len(payload) & 0xFF)) + payload


def encode_uuid(u: uuid.UUID) -> bytes:
    return _frame(KIND_UUID, u.bytes)


def encode_audio(payload: bytes) -> bytes:
    if len(payload) & 1:
        raise UsageError("slin audio payload must hold whole 16-bit samples")
    return _frame(KIND_AUDIO, payload)


def encode_hangup() -> bytes:
    """Tells Asterisk to hang up the AudioSocket channel (ending e.g. the ChanSpy)."""
    return _frame(KIND_HANGUP, b"")


def encode_error(code: int | None = None) -> bytes:
    if code is None:
        return _frame(KIND_ERROR, b"")
    if not 0 <= code <= 0xFF:
        raise UsageError(f"AudioSocket error code {code} is not one byte")
    return _frame(KIND_ERROR, bytes((code,)))
