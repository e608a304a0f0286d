"""Sans-IO core of an AMI (Asterisk Manager Interface) client, in the style of h11.

Feed it the bytes read from the socket with :meth:`AmiClientConnection.receive_data` (``b""`` for
EOF) and pull :class:`Banner`, :class:`Message`, :class:`Closed` or ``NEED_DATA`` out of
:meth:`AmiClientConnection.next_event`. It never touches a socket, so the same code is tested with
the real Asterisk captures split at every possible point.

Wire format, as Asterisk 20 sends it: one banner line (``Asterisk Call Manager/9.0.0\\r\\n``, with no
blank line after it), then messages made of ``Key: Value\\r\\n`` lines, each ended by an empty line.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, overload

from pbx.errors import PeerProtocolError, UsageError, excerpt

__all__ = [
    "NEED_DATA",
    "AmiClientConnection",
    "Banner",
    "Closed",
    "Message",
    "NeedData",
    "ParserEvent",
    "encode_action",
]


class NeedData(enum.Enum):
    """Type of the ``NEED_DATA`` sentinel: feed more bytes before asking again."""

    NEED_DATA = enum.auto()


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Banner:
    """The greeting line, without its line ending, e.g. ``Asterisk Call Manager/9.0.0``."""

    text: str

    @property
    def version(self) -> str:
        """The AMI protocol version after the last ``/`` (``9.0.0`` on Asterisk 20)."""
        return self.text.rpartition("/")[2].strip()


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI response or event: its ``(key, value)`` pairs in wire order, repeats kept."""

    fields: tuple[tuple[str, str], ...]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: str | None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (case-insensitive, as Asterisk treats keys), or ``default``."""
        wanted = name.lower()
        for key, value in self.fields:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in wire order (e.g. repeated ``Variable`` or ``Output`` lines)."""
        wanted = name.lower()
        return [value for key, value in self.fields if key.lower() == wanted]

    # Asterisk always writes "Event:" or "Response:" as the first line, and an event may carry a
    # "Response" field of its own (OriginateResponse has "Response: Success"), so the first line decides.
    @property
    def is_event(self) -> bool:
        return bool(self.fields) and self.fields[0][0].lower() == "event"

    @property
    def is_response(self) -> bool:
        return bool(self.fields) and self.fields[0][0].lower() == "response"

    @property
    def name(self) -> str | None:
        """The ``Event:`` value of an event, or the ``Response:`` value (``Success``, ``Error``…)."""
        return self.fields[0][1] if self.is_event or self.is_response else None

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """Keys as sent; for a repeated key the first value wins, matching :meth:`get`."""
        result: dict[str, str] = {}
        for key, value in self.fields:
            result.setdefault(key, value)
        return result


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the connection after a complete message (or before sending anything)."""


ParserEvent = Banner | Message | Closed | NeedData


class AmiClientConnection:
    """Parses the byte stream an AMI server sends to a client.

    Limits are checked while bytes arrive, so a peer that never ends a line or a message costs at most
    ``max_line`` / ``max_message_bytes`` of memory before :class:`PeerProtocolError` is raised.
    """

    def __init__(self, max_message_bytes: int = 65536, max_line: int = 8192) -> None:
        if max_line < 1 or max_message_bytes < max_line:
            raise UsageError("need 1 <= max_line <= max_message_bytes")
        self._max_message = max_message_bytes
        self._max_line = max_line
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already known to hold no b"\n": byte-at-a-time stays O(n)
        self._eof = False
        self._closed = False
        self._banner_seen = False
        self._fields: list[tuple[str, str]] = []
        self._message_bytes = 0
        self._error: PeerProtocolError | None = None

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes read from the socket; ``b""`` means the peer closed (EOF)."""
        if self._eof:
            raise UsageError("receive_data() called after EOF")
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> ParserEvent:
        """The next complete item, ``NEED_DATA``, or :class:`Closed` (after which: stop)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            # Returning Closed again would turn the usual "drain until NEED_DATA" loop into a spin.
            raise UsageError("next_event() called after Closed")
        try:
            return self._next_event()
        except PeerProtocolError as exc:
            # Sticky, as in h11: the stream is unusable from here on.
            self._error = exc
            raise

    def _next_event(self) -> ParserEvent:
        while True:
            newline = self._buf.find(b"\n", self._scan)
            if newline < 0:
                return self._incomplete_line()
            raw = bytes(self._buf[:newline])
            del self._buf[: newline + 1]
            self._scan = 0
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if len(raw) > self._max_line:
                raise PeerProtocolError(f"AMI line longer than {self._max_line} bytes")
            line = self._decode(raw)
            if not self._banner_seen:
                return self._banner(line)
            if not line:
                if self._fields:
                    return self._finish_message()
                continue  # stray blank line between messages: harmless
            self._message_bytes += newline + 1
            if self._message_bytes > self._max_message:
                raise PeerProtocolError(f"AMI message longer than {self._max_message} bytes")
            self._fields.append(self._split_field(line))

    def _incomplete_line(self) -> ParserEvent:
        self._scan = len(self._buf)
        # +1: the line may still be completed by a "\r\n" whose "\r" is already here.
        if len(self._buf) > self._max_line + 1:
            raise PeerProtocolError(f"AMI line longer than {self._max_line} bytes")
        if self._banner_seen and self._message_bytes + len(self._buf) > self._max_message:
            raise PeerProtocolError(f"AMI message longer than {self._max_message} bytes")
        if not self._eof:
            return NEED_DATA
        if self._buf or self._fields:
            raise PeerProtocolError("AMI connection closed in the middle of a message")
        self._closed = True
        return Closed()

    def _finish_message(self) -> Message:
        message = Message(tuple(self._fields))
        self._fields = []
        self._message_bytes = 0
        return message

    def _banner(self, line: str) -> Banner:
        # Enough to notice a wrong port (HTTP, SSH, another protocol) at once, and loose enough to
        # accept forks and proxies ("Asterisk Call Manager Proxy/…").
        if "Call Manager" not in line or "/" not in line:
            raise PeerProtocolError(f"not an AMI banner: {excerpt(line)}")
        self._banner_seen = True
        return Banner(line)

    @staticmethod
    def _decode(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PeerProtocolError(f"AMI line is not UTF-8: {excerpt(raw)}") from exc

    @staticmethod
    def _split_field(line: str) -> tuple[str, str]:
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise PeerProtocolError(f"AMI line is not 'Key: Value': {excerpt(line)}")
        # Only the separator space goes; the value keeps everything else, and "AccountCode: " -> "".
        if value.startswith(" "):
            value = value[1:]
        return key.strip(), value


def encode_action(
    name: str,
    fields: Mapping[str, str] | Iterable[tuple[str, str]],
    action_id: str,
) -> bytes:
    """Encode ``Action: name`` with ``fields`` (repeats allowed, e.g. ``Variable``) and ``ActionID``.

    A CR or LF inside a key or value would let the text smuggle in extra header lines or a whole
    second action, so it is refused as a :class:`UsageError` rather than escaped.
    """
    pairs = list(fields.items() if isinstance(fields, Mapping) else fields)
    for key, value in pairs:
        _check_field(key, value)
        if key.strip().lower() in ("action", "actionid"):
            raise UsageError(f"field {key!r} is set by encode_action itself")
    for key, value in (("Action", name), ("ActionID", action_id)):
        _check_field(key, value)
        if not value.strip():
            raise UsageError(f"{key} must not be empty")
    lines = [f"Action: {name}\r\n", *(f"{k}: {v}\r\n" for k, v in pairs), f"ActionID: {action_id}\r\n\r\n"]
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from a mis-decoded file name
        raise UsageError(f"AMI action {name!r} is not encodable as UTF-8: {exc}") from None


def _check_field(key: str, value: str) -> None:
    if not isinstance(key, str) or not isinstance(value, str):
        raise UsageError(f"AMI field {key!r}: keys and values must be str")
    if any(c in text for text in (key, value) for c in "\r\n"):
        raise UsageError(f"AMI field {key!r}: CR/LF not allowed in a key or value")
    if not key.strip() or ":" in key:
        raise UsageError(f"AMI key {key!r} must be non-empty and contain no ':'")
