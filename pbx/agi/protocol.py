"""Sans-IO core of a FastAGI server (h11 style: bytes in, frozen events out, no sockets here).

Asterisk connects to us, sends the ``agi_*`` environment block, then answers each command line we
write with one response (``200 result=...``, ``510 ...``, ``511 ...`` or a multi-line ``520-``
usage block). It also sends an unsolicited ``HANGUP`` line when the caller hangs up and again
when the AGI ends (after we half-close). Behaviour verified against the Asterisk 20.20.1 captures
in ``fixtures/asterisk-20/agi``.
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto

from pbx.errors import PeerProtocolError, UsageError, excerpt

# res_agi reads a command into a 2048-byte buffer (AGI_BUF_LEN) including "\n" and NUL; a longer
# line is silently split into two commands, so refuse to send one.
MAX_COMMAND_BYTES = 2046


@dataclass(frozen=True, slots=True)
class Environment:
    """The ``agi_*`` block sent once at connect. ``values`` keeps the full keys (``agi_uniqueid``)."""

    values: Mapping[str, str]

    def get(self, name: str) -> str:
        """``agi_<name>``, or "" when Asterisk did not send it (as a dialplan variable would read)."""
        return self.values.get("agi_" + name, "")

    @property
    def script(self) -> str:
        """Path of ``agi://host:port/<script>``: selects what the call is (inbound/outbound...)."""
        return self.get("network_script")

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def calleridname(self) -> str:
        return self.get("calleridname")

    @property
    def dnid(self) -> str:
        """Request-URI user on SIP; the literal "unknown" on Local/Originate calls (use ``extension``)."""
        return self.get("dnid")

    @property
    def extension(self) -> str:
        return self.get("extension")

    @property
    def context(self) -> str:
        return self.get("context")

    @property
    def rdnis(self) -> str:
        """Redirecting number (SIP Diversion), "unknown" when absent."""
        return self.get("rdnis")


@dataclass(frozen=True, slots=True)
class Response:
    """One answer to one command.

    ``text`` is the first line after the code and its separator (``result=1 (x)``,
    ``Invalid or unknown command``). ``result``/``data``/``endpos`` are parsed from 200 lines;
    ``result`` is None when the field is absent or not an integer (GET DATA can answer
    ``result=`` or ``result=0123``, so keep ``text`` for such commands).
    ``usage`` holds the lines of a ``520-`` block between its first and last line.
    """

    code: int
    result: int | None = None
    data: str | None = None
    endpos: int | None = None
    text: str = ""
    usage: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def hangup(self) -> bool:
        """``result=-1``: res_agi's answer when the channel hung up (it also means "failed")."""
        return self.code == 200 and self.result == -1

    @property
    def dead_channel(self) -> bool:
        """511: the command is not allowed because the channel is already dead."""
        return self.code == 511


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """Unsolicited ``HANGUP`` line: the channel hung up (or the AGI is ending)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """Asterisk closed its side of the connection."""


@dataclass(frozen=True, slots=True)
class NeedData:
    """Feed more bytes with ``receive_data`` before asking for the next event."""


NEED_DATA = NeedData()

Event = Environment | Response | HangupNotice | Closed | NeedData

_RESULT = re.compile(r"result=(\S*)")
_ENDPOS = re.compile(r" endpos=(-?\d+)$")
_CODE = re.compile(r"(\d{3})([ -])(.*)", re.DOTALL)


def parse_response_line(code: int, text: str, usage: tuple[str, ...] = ()) -> Response:
    """Split ``result=N [(data)] [endpos=N]`` out of a response's text."""
    if code != 200:
        return Response(code=code, text=text, usage=usage)
    m = _RESULT.match(text)
    if m is None:
        return Response(code=code, text=text, usage=usage)
    try:
        result: int | None = int(m.group(1))
    except ValueError:
        result = None
    rest = text[m.end() :]
    endpos = None
    e = _ENDPOS.search(rest)
    if e is not None:
        endpos = int(e.group(1))
        rest = rest[: e.start()]
    data = None
    # The data is everything between the first "(" and the LAST ")": variable values may contain
    # spaces and parentheses themselves, e.g. "(0311112222|SIPp Caller|...|(ulaw))".
    if rest.startswith(" (") and rest.endswith(")"):
        data = rest[2:-1]
    elif rest.strip():
        data = rest.strip()
    return Response(code=code, result=result, data=data, endpos=endpos, text=text, usage=usage)


class _State(Enum):
    ENV = auto()
    IDLE = auto()
    WAITING = auto()  # a command is outstanding
    CLOSED = auto()


class AgiServerConnection:
    """The FastAGI conversation state of one connection, from our (the server's) point of view."""

    def __init__(
        self,
        max_line: int = 8192,
        max_env_lines: int = 128,
        max_env_bytes: int = 16384,
        max_usage_bytes: int = 65536,
    ) -> None:
        self._max_line = max_line
        self._max_env_lines = max_env_lines
        self._max_env_bytes = max_env_bytes
        self._max_usage_bytes = max_usage_bytes
        self._buf = bytearray()
        self._eof = False
        self._state = _State.ENV
        self._env: dict[str, str] = {}
        self._env_bytes = 0
        self._env_lines = 0
        self._usage: list[str] | None = None  # inside a "520-" block
        self._usage_head: tuple[int, str] = (0, "")
        self._usage_bytes = 0

    @property
    def env_received(self) -> bool:
        return self._state is not _State.ENV

    @property
    def command_outstanding(self) -> bool:
        return self._state is _State.WAITING

    @property
    def closed(self) -> bool:
        """True once EOF from Asterisk has been fed in."""
        return self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket; ``b""`` means Asterisk closed its side."""
        if self._eof:
            if data:
                raise UsageError("data received after EOF")
            return
        if data:
            self._buf += data
        else:
            self._eof = True

    def send_command(self, command: str) -> bytes:
        """Register ``command`` as outstanding and return the bytes to write."""
        if self._state is _State.ENV:
            raise UsageError("the AGI environment has not been received yet")
        if self._state is _State.WAITING:
            raise UsageError("a command is already outstanding")
        if self._state is _State.CLOSED:
            raise UsageError("the connection is closed")
        if any(c in command for c in "\r\n\0"):
            raise UsageError(f"AGI command contains CR, LF or NUL: {command!r}")
        data = command.encode() + b"\n"
        if len(data) > MAX_COMMAND_BYTES + 1:
            raise UsageError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
        self._state = _State.WAITING
        return data

    def next_event(self) -> Event:
        while True:
            if self._state is _State.CLOSED:
                return Closed()
            line = self._next_line()
            if line is None:
                if not self._eof:
                    return NEED_DATA
                return self._at_eof()
            event = self._handle_line(line)
            if event is not None:
                return event

    # -- internals ------------------------------------------------------------------------------

    def _next_line(self) -> bytes | None:
        end = self._buf.find(b"\n")
        if end < 0:
            if len(self._buf) > self._max_line:
                raise PeerProtocolError(f"AGI line longer than {self._max_line} bytes")
            if self._state is _State.ENV and self._env_bytes + len(self._buf) > self._max_env_bytes:
                raise PeerProtocolError(f"AGI environment larger than {self._max_env_bytes} bytes")
            return None
        if end > self._max_line:
            raise PeerProtocolError(f"AGI line longer than {self._max_line} bytes")
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        if self._state is _State.ENV:
            self._env_bytes += end + 1
            if self._env_bytes > self._max_env_bytes:
                raise PeerProtocolError(f"AGI environment larger than {self._max_env_bytes} bytes")
        # AGI uses bare "\n"; tolerate a CR so a CRLF peer is not misread ("200 result=1\r").
        return line[:-1] if line.endswith(b"\r") else line

    def _at_eof(self) -> Event:
        if self._buf:
            raise PeerProtocolError("EOF in the middle of an AGI line")
        if self._state is _State.ENV and self._env_lines:
            raise PeerProtocolError("EOF in the middle of the AGI environment")
        if self._usage is not None:
            raise PeerProtocolError("EOF in the middle of a multi-line AGI response")
        # A bare connect+close (health check), or Asterisk ending the AGI: both are just Closed.
        self._state = _State.CLOSED
        return Closed()

    def _handle_line(self, line: bytes) -> Event | None:
        if self._state is _State.ENV:
            return self._env_line(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PeerProtocolError(f"AGI response is not UTF-8: {excerpt(line)}") from exc
        if self._usage is not None:
            return self._usage_line(text)
        if text == "HANGUP":
            return HangupNotice()
        if self._state is not _State.WAITING:
            raise PeerProtocolError(f"AGI response without an outstanding command: {excerpt(text)}")
        m = _CODE.fullmatch(text)
        if m is None:
            raise PeerProtocolError(f"malformed AGI response: {excerpt(text)}")
        code, sep, rest = int(m.group(1)), m.group(2), m.group(3)
        if sep == "-":
            self._usage, self._usage_head, self._usage_bytes = [], (code, rest), 0
            return None
        self._state = _State.IDLE
        return parse_response_line(code, rest)

    def _usage_line(self, text: str) -> Response | None:
        assert self._usage is not None
        code, head = self._usage_head
        # The usage text is raw doc markup and its lines carry no code; only "520 " ends the block.
        if text.startswith(f"{code} "):
            usage = tuple(self._usage)
            self._usage = None
            self._state = _State.IDLE
            return parse_response_line(code, head, usage)
        self._usage_bytes += len(text) + 1
        if self._usage_bytes > self._max_usage_bytes:
            raise PeerProtocolError(f"AGI usage block larger than {self._max_usage_bytes} bytes")
        self._usage.append(text)
        return None

    def _env_line(self, line: bytes) -> Environment | None:
        if not line:
            self._state = _State.IDLE
            return Environment(types.MappingProxyType(self._env))
        self._env_lines += 1
        if self._env_lines > self._max_env_lines:
            raise PeerProtocolError(f"AGI environment has more than {self._max_env_lines} lines")
        key_b, sep, value_b = line.partition(b": ")
        if not sep:
            raise PeerProtocolError(f"AGI environment line without ': ': {excerpt(line)}")
        if not key_b.isascii() or not key_b.startswith(b"agi_"):
            raise PeerProtocolError(f"AGI environment key is not agi_*: {excerpt(key_b)}")
        # Values are decoded leniently on purpose: a caller name sent in a legacy encoding
        # (Shift_JIS from an old PBX or trunk) must not cost us the recording of the call.
        self._env[key_b.decode("ascii")] = value_b.decode("utf-8", errors="replace")
        return None


# -- building command lines -------------------------------------------------------------------------


def quote(arg: str) -> str:
    """Quote one AGI argument the way res_agi's ``parse_args`` reads it back verbatim."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _app_arg(arg: str) -> str:
    """Escape one dialplan-application argument for ``ast_app_separate_args``.

    That parser splits on commas outside quotes and outside ()/[] nesting, strips quotes, and
    turns ``\\x`` into a literal ``x``. Brackets are left alone when balanced (``c(slin)`` must stay
    readable), but escaped when not, since an open ``(`` would swallow the following commas.
    """
    out = arg.replace("\\", "\\\\").replace(",", "\\,").replace('"', '\\"')
    if not _balanced(arg):
        for ch in "()[]":
            out = out.replace(ch, "\\" + ch)
    return out


def _balanced(arg: str) -> bool:
    paren = bracket = 0
    for ch in arg:
        if ch == "(":
            paren += 1
        elif ch == ")":
            paren = max(paren - 1, 0)
        elif ch == "[":
            bracket += 1
        elif ch == "]":
            bracket = max(bracket - 1, 0)
    return paren == 0 and bracket == 0


def exec_command(app: str, *args: str) -> str:
    """An ``EXEC <app> <data>`` line whose application receives exactly ``args``.

    res_agi passes only ONE AGI argument to the application (``argv[2]``), so the comma-joined
    data must stay one argument: it is left bare when it has no blank or quote (one backslash
    level, as in the captures: ``\\\\,`` on the wire, ``\\,`` for the app, ``,`` in its argument),
    and quoted otherwise.
    """
    if not app or any(c.isspace() or c in '"\\' for c in app):
        raise UsageError(f"bad application name {app!r}")
    if not args:
        return f"EXEC {app}"
    data = ",".join(_app_arg(a) for a in args)
    if data and not any(c in data for c in ' \t"'):
        bare = data.replace("\\", "\\\\")
        return f"EXEC {app} {bare}"
    return f"EXEC {app} {quote(data)}"


def originate_spy(
    audiosocket_addr: str, uuid: uuid.UUID, target_uniqueid: str, *, stereo: bool = False
) -> str:
    """The recommended recording recipe: an async Originate of an AudioSocket channel running
    ``ChanSpy(<target>,qEu)`` (q: no beep, E: exit with the target, u: target is a uniqueid).

    ``stereo`` adds ``D``: each 20 ms frame is 640 bytes of interleaved slin, left = what the
    spied channel says (its read direction), right = what it hears (its peer, prompts played to
    it). ChanSpy's generator then sends a frame every 20 ms even when nobody speaks (zeros), unlike
    the mono mix, which sends nothing while both sides are silent.

    ``/c(slin)`` forces signed linear on the AudioSocket channel (see fixtures README pitfalls).
    """
    dial = f"AudioSocket/{audiosocket_addr}/{uuid}/c(slin)"
    options = "qEuD" if stereo else "qEu"
    return exec_command("Originate", dial, "app", "ChanSpy", f"{target_uniqueid},{options}", "", "", "a")
