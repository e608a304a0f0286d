"""The FastAGI client side of a call: what res_agi does on the socket.

Answers follow ``agi/*.txt``: ``200 result=...`` lines, ``510`` for unknown commands, the
multi-line ``520`` usage block, ``511`` on a dead channel for commands that need a live one, an
unsolicited ``HANGUP`` about 40 ms after the caller hangs up, and ``HANGUP`` + FIN once the
server closes its side. The AGI itself never closes first: a dead channel lingers until the
server lets go, exactly as the README warns.

What a command *does* (variables, playback, Originate) is the call's business; see
:class:`AgiHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from pbx.simulator.agi_usage import USAGE
from pbx.simulator.channel import Channel, Events
from pbx.simulator.clock import SimClock
from pbx.simulator.dialplan import agi_args, substitute

__all__ = ["AgiHost", "AgiSession", "Answer"]

_HANGUP_NOTICE_DELAY_S = 0.04  # hangup-during-stream-file: result=-1 at 3.129, HANGUP at 3.171
_USAGE_TEXT_DELAY_S = 0.044  # the usage text came in its own recv() about 44 ms after "520-"
_DEAD = "Command Not Permitted on a dead channel or intercept routine"
_UNKNOWN = "Invalid or unknown command"


class AgiHost(Protocol):
    """The channel an AGI runs on, as the command handlers need it."""

    channel: Channel
    events: Events

    @property
    def dead(self) -> bool: ...
    @property
    def hangup_event(self) -> asyncio.Event: ...
    def read(self, name: str) -> str | None: ...
    def set_var(self, name: str, value: str) -> None: ...
    def find_channel(self, name: str) -> Channel | None: ...
    def answer(self) -> None: ...
    def hangup_from_agi(self) -> None: ...
    async def stream_file(self, name: str) -> tuple[int, int] | None: ...
    async def exec_app(self, app: str, data: str) -> int | None: ...


@dataclass(frozen=True)
class Answer:
    line: str  # the answer line(s), without the final "\n"
    code: int = 200  # AGIExecEnd ResultCode
    result: str = "Success"  # AGIExecEnd Result


_USAGE_ANSWER = Answer("", 520, "Usage")
Handler = Callable[[list[str]], Awaitable[Answer]]


class AgiSession:
    def __init__(
        self, host: AgiHost, clock: SimClock, env: list[tuple[str, str]], commands_log: list[str]
    ) -> None:
        self._host = host
        self._clock = clock
        self._env = env
        self._log = commands_log
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # an unsolicited HANGUP must not split a multi-part answer
        self._idle = asyncio.Event()  # no command between read and answer
        self._idle.set()
        self._aborted = False
        self._reader: asyncio.StreamReader | None = None
        self.closed_by_server = False
        self._table: list[tuple[tuple[str, ...], bool, Handler]] = [
            # (command words, allowed on a dead channel, handler), as res_agi's command table
            (("answer",), False, self._answer),
            (("channel", "status"), False, self._channel_status),
            (("exec",), True, self._exec),
            (("get", "full", "variable"), True, self._get_full_variable),
            (("get", "variable"), True, self._get_variable),
            (("hangup",), False, self._hangup),
            (("noop",), True, self._noop),
            (("set", "variable"), True, self._set_variable),
            (("stream", "file"), False, self._stream_file),
            (("verbose",), True, self._verbose),
        ]

    async def run(self, host: str, port: int) -> str:
        """Talk to the FastAGI server until it closes; returns AGISTATUS."""
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return "FAILURE"  # the dialplan goes on (ami/agi-server-down.txt)
        self._reader, self._writer = reader, writer
        if self._aborted:
            reader.feed_eof()
        notifier = asyncio.create_task(self._notify_hangup())
        try:
            await self._send_env(writer)
            while True:
                try:
                    line = await reader.readline()
                except (ConnectionError, ValueError):
                    break
                if not line.endswith(b"\n"):
                    break  # EOF: the server closed or half-closed its side
                # res_agi strips only the "\n"; a stray "\r" stays part of the last argument.
                command = line[:-1].decode("utf-8", "replace")
                self._log.append(command)
                await self._dispatch(command)
            self.closed_by_server = not self._aborted
        finally:
            notifier.cancel()
            await asyncio.gather(notifier, return_exceptions=True)
            with contextlib.suppress(ConnectionError):
                async with self._lock:
                    writer.write(b"HANGUP\n")  # AGISIGHUP: also after a normal, successful AGI
                writer.close()
                await writer.wait_closed()
        return "HANGUP" if self._host.dead else "SUCCESS"

    async def _send_env(self, writer: asyncio.StreamWriter) -> None:
        # Asterisk wrote the block in two pieces (e.g. 394 + 109 bytes), split after agi_context.
        lines = [f"{k}: {v}\n" for k, v in self._env]
        split = next(i for i, (k, _) in enumerate(self._env) if k == "agi_context") + 1
        writer.write("".join(lines[:split]).encode())
        await writer.drain()
        writer.write(("".join(lines[split:]) + "\n").encode())
        await writer.drain()

    def abort(self) -> None:
        """Stop waiting for the server (shutdown grace expired): HANGUP and FIN from our side."""
        self._aborted = True
        if self._reader is not None:
            self._reader.feed_eof()

    async def _notify_hangup(self) -> None:
        await self._host.hangup_event.wait()
        await self._clock.sleep(_HANGUP_NOTICE_DELAY_S)
        await self._idle.wait()  # after the answer of a command the hangup interrupted
        async with self._lock:
            if self._writer is not None and not self._writer.is_closing():
                self._writer.write(b"HANGUP\n")

    async def _send(self, text: str) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(text.encode())
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def _dispatch(self, command: str) -> None:
        self._idle.clear()
        try:
            await self._answer_command(command)
        finally:
            self._idle.set()

    async def _answer_command(self, command: str) -> None:
        args = agi_args(command)
        host, events = self._host, self._host.events
        command_id = random.randrange(1 << 31)
        events.agi_exec_start(host.channel, command_id, command)
        words = tuple(a.lower() for a in args)
        match = next((entry for entry in self._table if words[: len(entry[0])] == entry[0]), None)
        if match is None:
            answer = Answer(f"510 {_UNKNOWN}", 510, _UNKNOWN)
        elif host.dead and not match[1]:
            answer = Answer(f"511 {_DEAD}", 511, _DEAD)
        else:
            answer = await match[2](args)
        async with self._lock:
            if answer is _USAGE_ANSWER:
                # Published before the text, like res_agi; the text follows in a later recv().
                events.agi_exec_end(host.channel, command_id, command, answer.code, answer.result)
                await self._send("520-Invalid command syntax.  Proper usage follows:\n")
                await self._clock.sleep(_USAGE_TEXT_DELAY_S)
                await self._send(USAGE[" ".join(match[0] if match else ())] + "520 End of proper usage.\n")
                return
            await self._send(answer.line + "\n")
            events.agi_exec_end(host.channel, command_id, command, answer.code, answer.result)

    # -- command handlers: argument checks mirror res_agi's RESULT_SHOWUSAGE conditions ---------

    async def _answer(self, args: list[str]) -> Answer:
        self._host.answer()
        return Answer("200 result=0")

    async def _channel_status(self, args: list[str]) -> Answer:
        if len(args) == 2:
            return Answer(f"200 result={self._host.channel.state}")
        if len(args) == 3:
            other = self._host.find_channel(args[2])
            return Answer(f"200 result={other.state if other else -1}")
        return _USAGE_ANSWER

    async def _exec(self, args: list[str]) -> Answer:
        if len(args) < 2:
            return _USAGE_ANSWER
        res = await self._host.exec_app(args[1], args[2] if len(args) > 2 else "")
        if res is None:
            return Answer("200 result=-2")  # "Could not find application"
        return Answer(f"200 result={res}") if res >= 0 else Answer(f"200 result={res}", -1, "Failure")

    async def _get_full_variable(self, args: list[str]) -> Answer:
        if len(args) not in (4, 5):
            return _USAGE_ANSWER
        if len(args) == 5 and self._host.find_channel(args[4]) is None:
            return Answer("200 result=0")
        return Answer(f"200 result=1 ({substitute(args[3], self._host.read)})")

    async def _get_variable(self, args: list[str]) -> Answer:
        if len(args) != 3:
            return _USAGE_ANSWER
        value = self._host.read(args[2])
        return Answer("200 result=0") if value is None else Answer(f"200 result=1 ({value})")

    async def _hangup(self, args: list[str]) -> Answer:
        if len(args) == 1 or (len(args) == 2 and args[1] == self._host.channel.name):
            self._host.hangup_from_agi()
            return Answer("200 result=1")
        return Answer("200 result=-1")

    async def _noop(self, args: list[str]) -> Answer:
        return Answer("200 result=0")

    async def _set_variable(self, args: list[str]) -> Answer:
        if len(args) != 4:  # an unquoted value with blanks is a syntax error
            return _USAGE_ANSWER
        self._host.set_var(args[2], args[3])
        return Answer("200 result=1")

    async def _stream_file(self, args: list[str]) -> Answer:
        if not 4 <= len(args) <= 5:  # the escape-digits argument is mandatory, even as ""
            return _USAGE_ANSWER
        played = await self._host.stream_file(args[2])
        if played is None:
            return Answer("200 result=-1 endpos=0")  # "Unable to open file" (a warning only)
        res, endpos = played
        if res < 0:
            return Answer(f"200 result=-1 endpos={endpos}", -1, "Failure")
        return Answer(f"200 result={res} endpos={endpos}")

    async def _verbose(self, args: list[str]) -> Answer:
        return _USAGE_ANSWER if len(args) < 2 else Answer("200 result=1")
