"""An AGI or AMI conversation, read from a capture and stripped of what differs between runs.

Both the real lane and the simulator are captured the same way (real_pbx/capture.py); these turn a
capture into what must be the same for the same scenario: the AGI environment's stable keys, every
command and the shape of every reply; the AMI events of the call in order. Ids (uniqueids, UUIDs,
channel sequence numbers, thread ids), times and ports are replaced by placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from real_pbx.capture import Connection

# What is left out: ids, times and the machine; everything else in the environment must match.
ENV_VARIES = {"agi_uniqueid", "agi_threadid", "agi_channel", "agi_request"}
_IDS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<uuid>"),
    (re.compile(r"\b1[0-9]{9}\.[0-9]+\b"), "<uniqueid>"),
    (re.compile(r"127\.0\.0\.1:[0-9]+"), "<host:port>"),
    (re.compile(r"-[0-9a-f]{8}(;[12])?\b"), r"-<n>\1"),
    (re.compile(r"endpos=[0-9]+"), "endpos=<n>"),
]


def normalise(text: str) -> str:
    for pattern, repl in _IDS:
        text = pattern.sub(repl, text)
    return text


def agi_environment(conn: Connection) -> dict[str, str]:
    """The ``agi_*`` block Asterisk sent first (up to the blank line)."""
    text = conn.sent_by("asterisk").decode(errors="replace")
    head = text.split("\n\n", 1)[0]
    return {k: normalise(v) for k, v in parse_env(head).items() if k not in ENV_VARIES}


def parse_env(head: str) -> dict[str, str]:
    """``agi_x: value`` lines (``agi_accountcode:`` may have nothing after the colon)."""
    env = {}
    for line in head.splitlines():
        key, _sep, value = line.partition(":")
        env[key] = value.removeprefix(" ")
    return env


def agi_exchanges(conn: Connection) -> list[tuple[str, str]]:
    """(command, reply) pairs, normalised: each command the server sent and the reply lines
    Asterisk gave it (up to the next command)."""
    out: list[tuple[str, str]] = []
    reply: list[str] = []
    command: str | None = None
    started = False
    for piece in conn.pieces:
        text = piece.data.decode(errors="replace")
        if piece.src == "asterisk":
            if not started:
                continue  # the environment block
            reply += [line for line in text.splitlines() if line]
        else:
            started = True
            if command is not None:
                out.append((command, " | ".join(reply)))
            command, reply = normalise(text.strip()), []
    if command is not None:
        out.append((command, normalise(" | ".join(reply))))
    return [(c, normalise(r)) for c, r in out]


def ami_events(conn: Connection) -> list[dict[str, str]]:
    """Every event block Asterisk sent, as key → value (first value of a repeated key)."""
    text = conn.sent_by("asterisk").decode(errors="replace").replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(": ")
            if sep and key not in fields:
                fields[key] = value
        if "Event" in fields:
            events.append(fields)
    return events


# The events the daemon acts on or that mark a call's course (recorderd/daemon/amitrack.py, calls.py).
CALL_EVENTS = {
    "Newchannel", "Newstate", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "ChanSpyStart",
    "ChanSpyStop", "SoftHangupRequest", "HangupRequest", "Hangup", "AGIExecStart", "AGIExecEnd",
}  # fmt: skip


def channel_kind(name: str) -> str:
    """``SIP/127.0.0.1-00000003`` → ``SIP``; ``Local/s@lane-agent-00000001;2`` → ``Local;2``; the spy."""
    tech = name.split("/", 1)[0]
    leg = name[-2:] if name[-2:] in (";1", ";2") else ""
    return f"{tech}{leg}"


def call_course(events: Iterable[dict[str, str]], linkedid: str, spy_uuid: str) -> list[str]:
    """The call's events the daemon cares about, in order: ``Event channel-kind [state/extra]``
    (the spy's AudioSocket channel has a Linkedid of its own: it is known by its UUID)."""
    out = []
    for e in events:
        if e.get("Event") not in CALL_EVENTS:
            continue
        linked = e.get("Linkedid") or e.get("SpyeeLinkedid")
        spy = spy_uuid and spy_uuid in e.get("Channel", "")
        if linked != linkedid and not spy:
            continue
        if e["Event"].startswith("ChanSpy"):
            e = {**e, "Channel": e.get("SpyeeChannel", "")}
        extra = e.get("ChannelStateDesc", "") if e["Event"] in ("Newchannel", "Newstate") else ""
        if e["Event"] == "DialEnd":
            extra = e.get("DialStatus", "")
        if e["Event"] == "Hangup":
            extra = e.get("Cause", "")
        if e["Event"] in ("AGIExecStart", "AGIExecEnd"):
            extra = e.get("Command", "").split(" ", 1)[0]
        out.append(f"{e['Event']} {channel_kind(e.get('Channel', ''))} {extra}".strip())
    return out
