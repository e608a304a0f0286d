"""The dialplan applications a FastAGI ``EXEC`` can run on a simulated call.

Only what a recorder plausibly runs is simulated. ``Originate`` is real only for the spy recipe
(``AudioSocket/<host>:<port>/<uuid>/c(slin)`` + ``app,ChanSpy``); any other Originate fails with
``ORIGINATE_STATUS=FAILED``. Unknown applications give ``None`` ("Could not find application",
``200 result=-2``).
"""

from __future__ import annotations

import asyncio
import re
import uuid as uuidlib
from collections.abc import Collection
from typing import Protocol

from pbx.simulator.channel import UP, Channel, Events
from pbx.simulator.dialplan import app_args
from pbx.simulator.legs import Legs
from pbx.simulator.media import FRAME_SAMPLES, RATE
from pbx.simulator.model import SimCall
from pbx.simulator.spy import CallMedia, Spy

__all__ = ["AppCall", "exec_app"]


class AppPbx(Protocol):
    """What the applications read of the whole PBX (calls.PbxState)."""

    @property
    def calls(self) -> Collection[AppCall]: ...
    def uniqueid(self) -> str: ...
    def live_channels(self) -> list[Channel]: ...


class AppCall(Protocol):
    """What the applications need of the call they run on (calls.CallRun, which imports this module:
    the applications see the call through this protocol, so the two modules form no circle)."""

    @property
    def pbx(self) -> AppPbx: ...
    @property
    def call(self) -> SimCall: ...
    @property
    def events(self) -> Events: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def legs(self) -> Legs: ...
    @property
    def media(self) -> CallMedia: ...
    @property
    def spies(self) -> list[Spy]: ...
    @property
    def dead(self) -> bool: ...
    def set_var(self, name: str, value: str) -> None: ...
    def answer(self) -> None: ...
    def hangup_from_agi(self) -> None: ...
    async def wait_until_sample(self, sample: int) -> bool: ...
    async def play(self, name: str) -> tuple[int, int] | None: ...


_AUDIOSOCKET_CONNECT_TIMEOUT_S = 2.0  # real seconds
_CODEC = re.compile(r"c\((\w+)\)")


async def exec_app(call: AppCall, app: str, data: str) -> int | None:
    """EXEC: the applications a recorder plausibly runs; None = "Could not find application"."""
    name = app.lower()
    if name == "originate":
        return await _originate(call, data)
    if name == "playback":
        return await _playback(call, data)
    if name in ("noop", "verbose"):
        return 0
    if name == "set":
        var, _, value = data.partition("=")
        call.set_var(var, value)
        return 0
    if name == "answer":
        call.answer()
        return 0
    if name == "wait":
        try:
            seconds = float(data or 0)
        except ValueError:
            seconds = 0.0
        now = call.media.frame_now() * FRAME_SAMPLES
        return 0 if await call.wait_until_sample(round(now + seconds * RATE)) else -1
    if name == "hangup":
        call.hangup_from_agi()
        return -1
    return None


async def _playback(call: AppCall, data: str) -> int:
    if call.dead:
        return -1
    options = app_args(data)
    if "noanswer" not in options[1:]:
        call.answer()  # Playback answers an unanswered channel first
    status = "SUCCESS"
    for name in options[0].split("&") if options else []:
        played = await call.play(name)
        if played is None:
            status = "FAILED"
        elif played[0] < 0:
            call.events.varset(call.channel, "PLAYBACKSTATUS", "FAILED")
            return -1
    call.events.varset(call.channel, "PLAYBACKSTATUS", status)
    return 0


async def _originate(call: AppCall, data: str) -> int:
    """``Originate(tech_data,app,ChanSpy,<target>\\,<opts>,,,a)``: only the spy recipe is real.

    The AudioSocket TCP connect happens before Originate returns, so a dead server shows
    as ``ORIGINATE_STATUS=FAILED`` at once (agi/audiosocket-down-originate.txt).
    """
    args = app_args(data, 7)
    if len(args) < 3 or "/" not in args[0] or args[1].lower() not in ("app", "exten"):
        call.events.varset(call.channel, "ORIGINATE_STATUS", "FAILED")
        return -1
    tech, _, dest = args[0].partition("/")
    hostport, _, rest = dest.partition("/")
    spy_uuid, _, opts = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    codec_match = _CODEC.search(opts)
    # Without c(slin) the codec is the requester's first format: ulaw on chan_sip, yet the
    # frames are still tagged 0x10 (a README pitfall).
    default_codec = "ulaw" if call.call.tech == "SIP" else "slin"
    codec = codec_match.group(1).lower() if codec_match else default_codec
    try:
        spy_uuid = str(uuidlib.UUID(spy_uuid))
        supported = (
            tech.lower() == "audiosocket"
            and args[1].lower() == "app"
            and args[2].lower() == "chanspy"
            and codec in ("slin", "ulaw")
        )
        if not supported:
            raise ValueError(f"not simulated: {args[0]} {args[1]} {args[2]}")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port)), _AUDIOSOCKET_CONNECT_TIMEOUT_S
        )
    except (OSError, ValueError, TimeoutError):
        call.events.varset(call.channel, "ORIGINATE_STATUS", "FAILED")
        return 0
    _start_spy(call, hostport, dest, spy_uuid, codec, args[3] if len(args) > 3 else "", reader, writer)
    return 0


def _start_spy(
    call: AppCall,
    hostport: str,
    dialstring: str,
    spy_uuid: str,
    codec: str,
    chanspy_data: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    ev = call.events
    uid = call.pbx.uniqueid()
    spy = Channel(f"AudioSocket/{hostport}-{spy_uuid}", uid, uid, "default", "s")  # own Linkedid
    ev.newchannel(spy)
    ev.varset(spy, "AUDIOSOCKET_UUID", spy_uuid)
    ev.varset(spy, "AUDIOSOCKET_SERVICE", hostport)
    ev.newexten(spy, 1, "AppDial2", "(Outgoing Line)")
    ev.varset(call.channel, "ORIGINATE_STATUS", "SUCCESS")
    ev.dial_begin(None, spy, dialstring)
    ev.newstate(spy, UP)
    ev.dial_end(None, spy)
    ev.device_state(spy.device, "INUSE")
    target_arg, *rest = app_args(chanspy_data) or [""]
    options = rest[0] if rest else ""
    live = call.pbx.live_channels()
    if "u" in options:  # ChanSpy(<uniqueid>,...u)
        target = next((ch for ch in live if ch.uniqueid == target_arg), None)
    else:  # ChanSpy(<channel name prefix>)
        target = next((ch for ch in live if target_arg and ch.name.startswith(target_arg)), None)
    # ChanSpy may target another call's channel: render from that call's audio.
    owner = next((c for c in call.pbx.calls if target in c.legs.channels()), call)
    media = owner.media
    call.spies.append(
        Spy(
            media=media,
            events=ev,
            channel=spy,
            target=target,
            spy_uuid=spy_uuid,
            codec=codec,
            only_from_channel="o" in options,
            stereo="D" in options,
            on_attach=owner.legs.spy_attached if target is owner.channel else None,
            attach_delay_s=call.call.spy_attach_delay_s,
            reader=reader,
            writer=writer,
        )
    )
