"""The channels of one call and the AMI event sequences of its dialplan, after the captures.

* SIP (``ami/sip-call.txt``): one ``SIP/127.0.0.1-0000000N`` channel.
* Local (``ami/local-call.txt``): a ``Local/<exten>@<context>-0000000N`` pair. ``;2`` runs the
  dialplan and the AGI; ``;1`` is the caller side and owns the Linkedid.
* Bridged (``ami/sip-bridged-call.txt``): after the AGI, ``Dial(Local/s@agent-sim/n,30)`` adds an
  agent pair and a basic bridge.
* Bridged outbound (the real lane's outbound call, tests/real_pbx/test_fidelity.py): the AGI runs
  while the caller's channel rings, then ``Dial(Local/<number>@trunk-sim/n,120)`` reaches the far
  end the same way as the agent inbound; app_dial answers the caller's channel when the far end
  answers (Newstate Up after DialEnd, before the bridge).

Sequences the captures do not show (a caller hang-up on a Local or bridged call, shutdown of a
bridged call) follow the same building blocks in a plausible order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.simulator.channel import RING, UP, Channel, Events
from pbx.simulator.model import SimCall

__all__ = ["Legs", "build_legs"]

# app_dial clears these on the caller before dialling (sip-bridged-call.txt).
_DIAL_VARS = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


@dataclass
class Legs:
    events: Events
    call: SimCall
    main: Channel  # runs the dialplan and the AGI (the SIP channel, or Local ;2)
    one: Channel | None  # Local ;1
    agi_url: str
    # Dial()ed after the AGI, so its Uniqueids come after the spy's, as in the capture.
    make_agent: Callable[[], tuple[Channel, Channel]] | None = None
    agent: tuple[Channel, Channel] | None = None
    bridge_id: str = ""
    bridged_at_ms: int = 0
    spied: bool = False  # a ChanSpy is attached to main
    one_gone: bool = False  # Local ;1 already hung up (shutdown)
    call_ms: Callable[[], int] = lambda: 0  # call time now, for ANSWEREDTIME

    @property
    def inbound(self) -> bool:
        return self.call.direction == "inbound"

    @property
    def far_end(self) -> str:
        """What Dial() reaches after the AGI: the agent (inbound) or the far end on the trunk."""
        return "s@agent-sim" if self.inbound else f"{self.call.dialled}@trunk-sim"

    @property
    def far_device(self) -> str:
        """The Local device Dial() reaches, as DeviceStateChange names it."""
        return f"Local/{self.far_end}"

    def channels(self) -> list[Channel]:
        extra = [self.one] if self.one else []
        return [self.main, *extra, *(self.agent or ())]

    def arrive(self) -> None:
        """Everything up to the AGI() application starting."""
        ev, main, c = self.events, self.main, self.call
        if self.one is None:
            ev.newchannel(main)
            for name in ("SIPURI", "SIPDOMAIN", "SIPCALLID"):
                ev.varset(main, name, main.variables[name])
            ev.newstate(main, RING)
            ev.device_state("SIP/127.0.0.1", "INVALID")
        else:
            one = self.one
            ev.newchannel(one)
            ev.newchannel(main)
            ev.newexten(one, 1, "AppDial2", "(Outgoing Line)")
            for ch in (one, main):  # the Originate's CallerID lands on both halves
                ch.cid_num = ch.conn_num = c.caller or "<unknown>"
                ch.cid_name = ch.conn_name = c.caller_name or "<unknown>"
            for ch in (one, main):
                ev.new_callerid(ch)
                ev.new_connected_line(ch)
            ev.local_bridge(one, main, "Yes")
            ev.dial_begin(None, one, f"{main.exten}@{main.context}")
        if self.inbound:
            bridged = ", bridged to agent-sim" if c.bridged else ""
            ev.newexten(main, 1, "NoOp", f"inbound to {c.dialled} from {c.caller}{bridged}")
            ev.newexten(main, 2, "Answer")
            self.answer()
            ev.newexten(main, 3, "AGI", self.agi_url)
        else:
            ev.newexten(main, 1, "AGI", self.agi_url)  # to-pstn: the AGI runs while ringing

    def answer(self) -> None:
        ev, main = self.events, self.main
        if main.state == UP:
            return
        ev.newstate(main, UP)
        if self.one is None:
            ev.device_state("SIP/127.0.0.1", "INVALID")
            return
        ev.newstate(self.one, UP)
        ev.dial_end(None, self.one)
        ev.device_state(self.main.device, "INUSE")
        ev.device_state(self.main.device, "INUSE")

    def after_agi(self, agi_status: str) -> None:
        """Dialplan steps from AGI() to the start of the conversation."""
        ev, main = self.events, self.main
        if self.make_agent is not None:
            self._dial_agent(self.make_agent())
        elif not self.inbound:
            ev.newexten(main, 2, "Playback", "custom/agent-speech")
            self.answer()  # Playback answers the ringing channel
        else:
            status = main.variables.get("RECORDER_STATUS", "")
            ev.newexten(main, 4, "NoOp", f"AGISTATUS={agi_status} RECORDER_STATUS={status}")
            ev.newexten(main, 5, "Playback", "custom/agent-speech")

    def _dial_agent(self, agent: tuple[Channel, Channel]) -> None:
        """``Dial(Local/s@agent-sim/n,30)`` up to the agent's Playback, as sip-bridged-call.txt;
        outbound ``Dial(Local/<number>@trunk-sim/n,120)`` from priority 2 of to-pstn, as the lane."""
        ev, main = self.events, self.main
        self.agent = a1, a2 = agent
        peer, device = f"{self.far_end}/n", self.far_device
        if self.inbound:
            ev.newexten(main, 4, "Dial", f"Local/{peer},30")
        else:
            ev.newexten(main, 2, "Dial", f"Local/{peer},120")
        for name in _DIAL_VARS:
            ev.varset(main, name, "")
        ev.newchannel(a1)
        ev.newchannel(a2)
        ev.varset(a1, "DIALEDPEERNUMBER", peer)
        a1.exten, a1.cid_num, a1.conn_num, a1.conn_name = main.exten, main.exten, main.cid_num, main.cid_name
        ev.newexten(a1, 1, "AppDial", "(Outgoing Line)")
        ev.new_callerid(a1)
        ev.new_connected_line(a1)
        ev.varset(a2, "DIALEDPEERNUMBER", peer)
        a2.cid_num, a2.cid_name, a2.conn_num = main.cid_num, main.cid_name, main.exten
        ev.new_callerid(a2)
        ev.new_connected_line(a2)
        ev.local_bridge(a1, a2, "No")
        ev.dial_begin(main, a1, peer)
        ev.newexten(a2, 1, "Answer")
        ev.newstate(a2, UP)
        ev.device_state(device, "INUSE")
        ev.newstate(a1, UP)
        ev.varset(main, "DIALSTATUS", "ANSWER")
        ev.varset(main, "DIALEDPEERNAME", a1.name)
        ev.varset(main, "DIALEDPEERNUMBER", peer)
        a1.exten = ""
        ev.dial_end(main, a1)
        self.answer()  # a ringing caller (outbound): app_dial answers it before the bridge (the lane)
        self.bridge_id = Events.new_bridge_id()
        self.bridged_at_ms = self.call_ms()
        ev.bridge("BridgeCreate", self.bridge_id, 0)
        ev.newexten(a1, 1, "AppDial", "(Outgoing Line)")
        ev.bridge("BridgeEnter", self.bridge_id, 1, a1)
        ev.device_state(device, "INUSE")
        ev.bridge("BridgeEnter", self.bridge_id, 2, main)
        self._bridge_peers(a1.name)
        ev.newexten(a2, 2, "Playback", "custom/agent-speech")
        if self.spied:  # ChanSpy joining a bridged channel re-announces the peers
            self._bridge_peers(a1.name)

    def spy_attached(self) -> None:
        self.spied = True
        if self.agent is not None and self.bridge_id:
            self._bridge_peers(self.agent[0].name)

    def _bridge_peers(self, agent_name: str) -> None:
        assert self.agent is not None
        a1, main = self.agent[0], self.main
        self.events.varset(a1, "BRIDGEPEER", main.name if agent_name else "")
        self.events.varset(a1, "BRIDGEPVTCALLID", main.variables.get("SIPCALLID", "") if agent_name else "")
        self.events.varset(main, "BRIDGEPEER", agent_name)

    def shutdown_now(self) -> None:
        """``core stop now``: a Local ;1 leg dies at once, while ;2 waits for its AGI
        (ami/shutdown-core-stop-now-during-call.txt)."""
        if self.one is not None and not self.one_gone:
            self.one_gone = True
            self.events.soft_hangup_request(self.one, 16)
            self.events.hangup_request(self.main, 0)
            self.events.hangup(self.one, 0)

    def end(self, reason: str, spy_stop: Callable[[], None]) -> None:
        """Hang every leg up. ``reason``: normal, caller, shutdown or agi; ``spy_stop`` emits
        ChanSpyStop at the point the captures show it."""
        ev, main = self.events, self.main
        normal = reason == "normal"
        cause = 0 if reason in ("caller", "shutdown") else 16  # a BYE or shutdown: Cause 0 Unknown
        if self.agent is not None:
            self._end_agent(normal)
        elif normal and self.inbound:
            ev.varset(main, "PLAYBACKSTATUS", "SUCCESS")
            ev.newexten(main, 6, "Wait", "1")
            ev.newexten(main, 7, "Hangup")
        elif normal:
            ev.varset(main, "PLAYBACKSTATUS", "SUCCESS")
            ev.newexten(main, 3, "Hangup")
        if reason != "agi":  # (AGI HANGUP sent its own when it ran)
            ev.soft_hangup_request(main, 16)
        if self.one is None:
            if reason != "caller":  # a BYE reports the QoS variables when it arrives
                ev.rtp_qos(main)
            spy_stop()
            ev.hangup(main, cause)
            ev.device_state("SIP/127.0.0.1", "INVALID")
            return
        if not self.one_gone:
            ev.hangup_request(self.one, cause)
            ev.soft_hangup_request(self.one, 16)
            ev.hangup(self.one, cause)
        spy_stop()
        ev.hangup(main, cause)
        ev.device_state(main.device, "NOT_INUSE")
        ev.device_state(main.device, "NOT_INUSE")

    def _end_agent(self, agent_first: bool) -> None:
        ev, main = self.events, self.main
        assert self.agent is not None
        a1, a2 = self.agent
        if agent_first:  # the agent's Playback ended: it hangs up and the bridge dissolves
            ev.varset(a2, "PLAYBACKSTATUS", "SUCCESS")
            ev.newexten(a2, 3, "Hangup")
            ev.soft_hangup_request(a2, 16)
            ev.hangup_request(a1, 16)
            ev.hangup(a2, 16)
            self._bridge_peers("")
            ev.bridge("BridgeLeave", self.bridge_id, 1, a1)
            ev.hangup(a1, 16)
            ev.bridge("BridgeLeave", self.bridge_id, 0, main)
        else:  # the caller's side went first (no capture: a plausible order)
            self._bridge_peers("")
            ev.bridge("BridgeLeave", self.bridge_id, 1, main)
            ev.hangup_request(a1, 16)
            ev.bridge("BridgeLeave", self.bridge_id, 0, a1)
            ev.hangup(a1, 16)
            ev.soft_hangup_request(a2, 16)
            ev.hangup(a2, 16)
        ev.device_state(self.far_device, "NOT_INUSE")
        ev.device_state(self.far_device, "NOT_INUSE")
        ev.bridge("BridgeDestroy", self.bridge_id, 0)
        talk_ms = self.call_ms() - self.bridged_at_ms
        for name in ("ANSWEREDTIME", "DIALEDTIME"):
            ev.varset(main, name, str(talk_ms // 1000))
            ev.varset(main, f"{name}_MS", str(talk_ms))
        ev.varset(main, "DIALSTATUS", "ANSWER")


def build_legs(
    events: Events,
    call: SimCall,
    *,
    agi_url: str,
    uniqueid: Callable[[], str],
    sip_index: int,
    local_index: Callable[[], int],
) -> Legs:
    context = "from-pstn" if call.direction == "inbound" else "to-pstn"
    cid_num, cid_name = call.caller or "<unknown>", call.caller_name or "<unknown>"
    if call.tech == "SIP":
        uid = uniqueid()
        main = Channel(f"SIP/127.0.0.1-{sip_index:08x}", uid, uid, context, call.dialled)
        main.cid_num, main.cid_name = cid_num, cid_name
        pid = 23090 + sip_index  # SIPp's Call-ID is <call number>-<pid>@<ip>
        main.variables.update(
            SIPURI=f"sip:{call.caller}@127.0.0.1:5061", SIPDOMAIN="127.0.0.1", SIPCALLID=f"1-{pid}@127.0.0.1"
        )
        legs = Legs(events, call, main, None, agi_url)
    else:
        n = local_index()
        base = f"Local/{call.dialled}@{context}-{n:08x}"
        uid1 = uniqueid()
        one = Channel(f"{base};1", uid1, uid1, context, call.dialled)
        main = Channel(f"{base};2", uniqueid(), uid1, context, call.dialled, state=RING)
        legs = Legs(events, call, main, one, agi_url)
    if call.bridged:
        linked = main.linkedid
        exten, _, far_context = legs.far_end.partition("@")

        def make_agent() -> tuple[Channel, Channel]:
            base = f"{legs.far_device}-{local_index():08x}"
            a1 = Channel(f"{base};1", uniqueid(), linked, far_context, exten)
            return a1, Channel(f"{base};2", uniqueid(), linked, far_context, exten, state=RING)

        legs.make_agent = make_agent
    return legs
