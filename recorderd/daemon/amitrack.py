"""Turn the AMI event stream into call metadata: answer time, agent channel, hang-up time and cause.

Sans-IO: feed events, get updates. AMI tells us about every channel on the PBX; we keep only the
ones whose Uniqueid an AGI session has told us to watch, plus a small bounded memory of recent
answers, because an inbound call is answered (Newstate Up) *before* its AGI connects to us.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

_RECENT_LIMIT = 4096
_SEEN_LIMIT = 16384  # channels AMI named lately (several per call: SIP, Local, agent, spy)


class AmiEvent(Protocol):
    def get(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class CallUpdate:
    call_id: str
    fields: dict[str, object]


@dataclass
class _Watched:
    call_id: str
    channel: str | None = None
    bridges: set[str] = field(default_factory=set)
    agent: str | None = None


def event_time(event: AmiEvent, fallback: dt.datetime) -> dt.datetime:
    """The PBX's own timestamp (``timestampevents=yes``), else when we received the event."""
    raw = event.get("Timestamp")
    if raw:
        try:
            return dt.datetime.fromtimestamp(float(raw), dt.UTC)
        except (ValueError, OverflowError):
            pass
    return fallback


class ChannelTracker:
    def __init__(self) -> None:
        self._watched: dict[str, _Watched] = {}  # by Uniqueid
        # Recent answers of any channel: Uniqueid -> (when, Linkedid).
        self._answered: OrderedDict[str, tuple[dt.datetime, str | None]] = OrderedDict()
        self._bridge_members: dict[str, dict[str, str]] = {}  # bridge -> uniqueid -> channel name
        self._seen: OrderedDict[str, None] = OrderedDict()  # Uniqueids AMI reported lately

    def seen(self, uniqueid: str) -> bool:
        """Did the PBX's event stream name this channel lately? (corroboration of an AGI claim)"""
        return uniqueid in self._seen

    def watch(self, uniqueid: str, call_id: str) -> list[CallUpdate]:
        """Start following a channel; returns what we already know (an earlier answer)."""
        self._watched[uniqueid] = _Watched(call_id)
        known = self._answered.get(uniqueid)
        if known is None:
            return []
        return [CallUpdate(call_id, {"answered_at": known[0], "pbx_linkedid": known[1]})]

    def unwatch(self, uniqueid: str) -> None:
        self._watched.pop(uniqueid, None)

    @property
    def watching(self) -> int:
        return len(self._watched)

    def feed(self, event: AmiEvent, received: dt.datetime) -> list[CallUpdate]:
        name = event.get("Event")
        uid = event.get("Uniqueid")
        if name is None or uid is None:
            return []
        seen = self._seen
        if uid in seen:
            seen.move_to_end(uid)
        else:
            seen[uid] = None
            if len(seen) > _SEEN_LIMIT:
                seen.popitem(last=False)
        when = event_time(event, received)
        if name == "Newstate" and event.get("ChannelStateDesc") == "Up":
            return self._on_up(uid, when, event.get("Linkedid"))
        if name == "BridgeEnter":
            return self._on_bridge_enter(event, uid)
        if name == "BridgeLeave":
            members = self._bridge_members.get(event.get("BridgeUniqueid") or "")
            if members is not None:
                members.pop(uid, None)
            return []
        if name == "BridgeDestroy":
            self._bridge_members.pop(event.get("BridgeUniqueid") or "", None)
            return []
        if name == "Hangup":
            return self._on_hangup(event, uid, when)
        return []

    def _on_up(self, uid: str, when: dt.datetime, linkedid: str | None) -> list[CallUpdate]:
        if uid not in self._answered:
            self._answered[uid] = (when, linkedid)
            if len(self._answered) > _RECENT_LIMIT:
                self._answered.popitem(last=False)
        watched = self._watched.get(uid)
        if watched is None:
            return []
        return [CallUpdate(watched.call_id, {"answered_at": when, "pbx_linkedid": linkedid})]

    def _on_bridge_enter(self, event: AmiEvent, uid: str) -> list[CallUpdate]:
        bridge = event.get("BridgeUniqueid") or ""
        channel = event.get("Channel") or ""
        members = self._bridge_members.setdefault(bridge, {})
        members[uid] = channel
        updates = []
        for member_uid in members:
            watched = self._watched.get(member_uid)
            if watched is None:
                continue
            watched.bridges.add(bridge)
            # The first other party in our bridge is the agent (or, outbound, the far end).
            others = [c for u, c in members.items() if u != member_uid]
            if others and watched.agent is None:
                watched.agent = others[0]
                updates.append(CallUpdate(watched.call_id, {"agent_channel": others[0]}))
        return updates

    def _on_hangup(self, event: AmiEvent, uid: str, when: dt.datetime) -> list[CallUpdate]:
        self._answered.pop(uid, None)
        watched = self._watched.pop(uid, None)
        if watched is None:
            return []
        cause_raw = event.get("Cause")
        cause = int(cause_raw) if cause_raw and cause_raw.lstrip("-").isdigit() else None
        return [
            CallUpdate(
                watched.call_id,
                {"ended_at": when, "hangup_cause": cause, "hangup_cause_text": event.get("Cause-txt")},
            )
        ]
