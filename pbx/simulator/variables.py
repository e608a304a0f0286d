"""Dialplan variables and functions a call answers to (``GET VARIABLE``, ``GET FULL VARIABLE``).

Values follow ``agi/*.txt``: on chan_sip ``${CALLERID(dnid)}`` is the Request-URI user and
``${SIP_HEADER(...)}`` works; on Local channels ``${CALLERID(dnid)}`` is empty,
``${CONNECTEDLINE(num)}`` is the caller's own number and SIP-only functions fail.
``None`` means "not set / the function failed": ``GET VARIABLE`` then answers ``200 result=0``
and ``${...}`` expands to nothing.
"""

from __future__ import annotations

from pbx.simulator.channel import Channel
from pbx.simulator.clock import SimClock
from pbx.simulator.model import SimCall

__all__ = ["read_variable"]

_STATE = {0: "Down", 4: "Ring", 6: "Up"}


def read_variable(call: SimCall, ch: Channel, clock: SimClock, name: str) -> str | None:
    if name.endswith(")") and "(" in name:
        func, _, arg = name[:-1].partition("(")
        return _function(call, ch, func.upper(), arg)
    builtin = {
        "UNIQUEID": ch.uniqueid,
        "CHANNEL": ch.name,
        "EXTEN": ch.exten,
        "CONTEXT": ch.context,
        "PRIORITY": str(ch.priority),
        "LANGUAGE": "en",
        "EPOCH": str(int(clock.wall())),
    }
    return builtin[name] if name in builtin else ch.variables.get(name)


def _function(call: SimCall, ch: Channel, func: str, arg: str) -> str | None:
    sip = call.tech == "SIP"
    item = arg.strip().lower()
    if func == "CALLERID":
        return {
            "num": call.caller,
            "name": call.caller_name,
            "all": f'"{call.caller_name}" <{call.caller}>',
            "ani": call.caller,
            "dnid": call.dialled if sip else "",
            "rdnis": "",
        }.get(item)
    if func == "CONNECTEDLINE":
        return {"num": "" if sip else call.caller, "name": "" if sip else call.caller_name}.get(item)
    if func == "CHANNEL":
        return {
            "linkedid": ch.linkedid,
            "uniqueid": ch.uniqueid,
            "name": ch.name,
            "channeltype": call.tech,
            "state": _STATE.get(ch.state, "Unknown"),
            "language": "en",
            "context": ch.context,
            "exten": ch.exten,
            "accountcode": "",
            "audionativeformat": "(ulaw)" if sip else "(slin)",
            **({"peerip": "127.0.0.1", "recvip": "127.0.0.1"} if sip else {}),
        }.get(item)
    if func == "SIP_HEADER" and sip:
        call_id = ch.variables.get("SIPCALLID", "")
        pid = call_id.split("-", 1)[-1].split("@", 1)[0]
        headers = {
            "from": f'"{call.caller_name}" <sip:{call.caller}@127.0.0.1:5061>;tag={pid}SIPpTag001',
            "to": f"<sip:{call.dialled}@127.0.0.1:5060>",
            "call-id": call_id,
            "contact": f"sip:{call.caller}@127.0.0.1:5061",
        }
        return headers.get(item, "")  # an absent header reads as empty, e.g. Diversion
    return None
