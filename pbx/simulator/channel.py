"""Channels and the AMI events about them, with field layouts copied from ``ami/*.txt``.

Every channel event carries the same snapshot block (``Channel`` ... ``Linkedid``); events
about two channels repeat it with a prefix (``Dest``, ``Spyer``/``Spyee``, ``LocalOne``/``LocalTwo``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Channel", "EventSink", "Events", "Fields"]

Fields = Sequence[tuple[str, str]]

DOWN, RING, UP = 0, 4, 6
_STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up"}
_CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing"}

# chan_sip's end-of-call QoS variables, verbatim from ami/recording-sequence-sip.txt.
_RTP_QOS = (
    "ssrc=602986916;themssrc=3390111744;lp=0;rxjitter=0.000000;rxcount=514;txjitter=0.000250;"
    "txcount=525;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=88.087887"
)
_RTP_QOS_VARS = (
    ("RTPAUDIOQOS", _RTP_QOS),
    (
        "RTPAUDIOQOSJITTER",
        "minrxjitter=000.000000;maxrxjitter=000.001000;avgrxjitter=000.000301;stdevrxjitter=000.000146;"
        "mintxjitter=000.000000;maxtxjitter=000.000000;avgtxjitter=000.000000;stdevtxjitter=000.000000;",
    ),
    (
        "RTPAUDIOQOSLOSS",
        "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;  stdevrxlost=000.000000;"
        "  mintxlost=000.000000;  maxtxlost=000.000000;  avgtxlost=000.000000;  stdevtxlost=000.000000;",
    ),
    (
        "RTPAUDIOQOSRTT",
        "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;     stdevrtt=000.000000;",
    ),
    (
        "RTPAUDIOQOSMES",
        "   minrxmes=088.087887;   maxrxmes=088.087887;   avgrxmes=088.087887;   stdevrxmes=000.000000;"
        "   mintxmes=000.000000;   maxtxmes=000.000000;   avgtxmes=000.000000;   stdevtxmes=000.000000;",
    ),
    ("RTPAUDIOQOS", _RTP_QOS),
)
_BRIDGE_HEAD = (
    ("BridgeType", "basic"),
    ("BridgeTechnology", "simple_bridge"),
    ("BridgeCreator", "<unknown>"),
    ("BridgeName", "<unknown>"),
)


class EventSink(Protocol):
    def publish(self, name: str, privilege: str, fields: Fields) -> None: ...


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: int = DOWN
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def device(self) -> str:
        """The device name in DeviceStateChange: the channel name minus its ``-<suffix>``."""
        return self.name.rsplit("-", 1)[0]

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        p = prefix
        return [
            (f"{p}Channel", self.name),
            (f"{p}ChannelState", str(self.state)),
            (f"{p}ChannelStateDesc", _STATE_DESC[self.state]),
            (f"{p}CallerIDNum", self.cid_num),
            (f"{p}CallerIDName", self.cid_name),
            (f"{p}ConnectedLineNum", self.conn_num),
            (f"{p}ConnectedLineName", self.conn_name),
            (f"{p}Language", "en"),
            (f"{p}AccountCode", ""),
            (f"{p}Context", self.context),
            (f"{p}Exten", self.exten),
            (f"{p}Priority", str(self.priority)),
            (f"{p}Uniqueid", self.uniqueid),
            (f"{p}Linkedid", self.linkedid),
        ]


class Events:
    """Typed emitters for the events a call produces, so the call logic reads like the captures."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    def _call(self, name: str, ch: Channel, *extra: tuple[str, str], privilege: str = "call,all") -> None:
        self._sink.publish(name, privilege, [*ch.snapshot(), *extra])

    def newchannel(self, ch: Channel) -> None:
        self._call("Newchannel", ch)

    def newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        self._call("Newstate", ch)

    def varset(self, ch: Channel, name: str, value: str) -> None:
        ch.variables[name] = value
        self._call("VarSet", ch, ("Variable", name), ("Value", value), privilege="dialplan,all")

    def newexten(self, ch: Channel, priority: int, app: str, data: str = "") -> None:
        ch.priority = priority
        ext = ("Extension", ch.exten)
        self._call("Newexten", ch, ext, ("Application", app), ("AppData", data), privilege="dialplan,all")

    def new_callerid(self, ch: Channel) -> None:
        self._call("NewCallerid", ch, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))

    def new_connected_line(self, ch: Channel) -> None:
        self._call("NewConnectedLine", ch)

    def agi_exec_start(self, ch: Channel, command_id: int, command: str) -> None:
        extra = (("CommandId", str(command_id)), ("Command", command))
        self._call("AGIExecStart", ch, *extra, privilege="agi,all")

    def agi_exec_end(self, ch: Channel, command_id: int, command: str, code: int, result: str) -> None:
        extra = (("CommandId", str(command_id)), ("Command", command))
        outcome = (("ResultCode", str(code)), ("Result", result))
        self._call("AGIExecEnd", ch, *extra, *outcome, privilege="agi,all")

    def dial_begin(self, caller: Channel | None, dest: Channel, dialstring: str) -> None:
        head = caller.snapshot() if caller else []
        self._sink.publish(
            "DialBegin", "call,all", [*head, *dest.snapshot("Dest"), ("DialString", dialstring)]
        )

    def dial_end(self, caller: Channel | None, dest: Channel, status: str = "ANSWER") -> None:
        head = caller.snapshot() if caller else []
        self._sink.publish("DialEnd", "call,all", [*head, *dest.snapshot("Dest"), ("DialStatus", status)])

    def local_bridge(self, one: Channel, two: Channel, optimization: str) -> None:
        tail = (("Context", two.context), ("Exten", two.exten), ("LocalOptimization", optimization))
        fields = [*one.snapshot("LocalOne"), *two.snapshot("LocalTwo"), *tail]
        self._sink.publish("LocalBridge", "call,all", fields)

    def chanspy(self, started: bool, spyer: Channel, spyee: Channel) -> None:
        name = "ChanSpyStart" if started else "ChanSpyStop"
        self._sink.publish(name, "call,all", [*spyer.snapshot("Spyer"), *spyee.snapshot("Spyee")])

    def soft_hangup_request(self, ch: Channel, cause: int) -> None:
        self._call("SoftHangupRequest", ch, ("Cause", str(cause)))

    def hangup_request(self, ch: Channel, cause: int | None) -> None:
        # A remote BYE gives a HangupRequest without Cause (ami/hangup-during-stream-file.txt).
        self._call("HangupRequest", ch, *((("Cause", str(cause)),) if cause is not None else ()))

    def hangup(self, ch: Channel, cause: int) -> None:
        self._call("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", _CAUSE_TXT.get(cause, "Unknown")))

    def rtp_qos(self, ch: Channel, *, bye: bool = False) -> None:
        # A BYE reports the five summaries; a local hang-up repeats RTPAUDIOQOS at the end.
        for name, value in _RTP_QOS_VARS[:5] if bye else _RTP_QOS_VARS:
            self.varset(ch, name, value)

    def device_state(self, device: str, state: str) -> None:
        self._sink.publish("DeviceStateChange", "call,all", [("Device", device), ("State", state)])

    def bridge(self, name: str, bridge_id: str, members: int, ch: Channel | None = None) -> None:
        head = [("BridgeUniqueid", bridge_id), *_BRIDGE_HEAD, ("BridgeNumChannels", str(members))]
        head.append(("BridgeVideoSourceMode", "none"))
        self._sink.publish(name, "call,all", [*head, *(ch.snapshot() if ch else [])])

    @staticmethod
    def new_bridge_id() -> str:
        return str(uuid.uuid4())
