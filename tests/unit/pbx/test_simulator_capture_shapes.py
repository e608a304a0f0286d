"""What the simulator writes, compared with the capture bytes without any socket in between."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest

from pbx.simulator.agi import AgiSession
from pbx.simulator.agi_usage import USAGE
from pbx.simulator.channel import UP, Channel, Events, Fields
from pbx.simulator.clock import SimClock
from pbx.simulator.dialplan import agi_args, substitute
from pbx.simulator.legs import build_legs
from pbx.simulator.model import SimCall
from pbx.simulator.variables import read_variable
from support.captures import FIXTURES, chunks, from_asterisk, sidecar


class Recorder:
    def __init__(self) -> None:
        self.blocks: list[list[tuple[str, str]]] = []

    def publish(self, name: str, privilege: str, fields: Fields) -> None:
        self.blocks.append([("Event", name), ("Privilege", privilege), ("Timestamp", "T"), *fields])


def capture_events(name: str) -> list[list[tuple[str, str]]]:
    """Every event of an AMI capture, with ``Timestamp`` blanked as Recorder does."""
    data = b"".join(from_asterisk(FIXTURES / "ami" / f"{name}.txt")).decode()
    out = []
    for block in data.split("\r\n\r\n"):
        pairs = [line.partition(": ") for line in block.split("\r\n") if ": " in line]
        fields = [(k, "T" if k == "Timestamp" else v) for k, _, v in pairs]
        if fields and fields[0][0] == "Event":
            out.append(fields)
    return out


def first(events: list[list[tuple[str, str]]], name: str, **match: str) -> list[tuple[str, str]]:
    return next(b for b in events if b[0][1] == name and all(dict(b).get(k) == v for k, v in match.items()))


def uniqueids(start: int, epoch: str = "1795323180") -> Callable[[], str]:
    counter = itertools.count(start)
    return lambda: f"{epoch}.{next(counter)}"


def test_call_and_spy_events_are_byte_identical_to_recording_sequence() -> None:
    cap = capture_events("recording-sequence-sip")
    rec = Recorder()
    ev = Events(rec)
    call = SimCall("0311112222", "0668585050")
    legs = build_legs(
        ev,
        call,
        agi_url="agi://127.0.0.1:4573/inbound",
        uniqueid=uniqueids(10),
        sip_index=3,
        local_index=itertools.count().__next__,
    )
    legs.arrive()
    spy = Channel(
        "AudioSocket/127.0.0.1:9092-3b822974-3568-4aae-8706-5af766fb4539",
        "1795323180.11",
        "1795323180.11",
        "default",
        "s",
    )
    ev.newchannel(spy)
    ev.dial_begin(None, spy, "127.0.0.1:9092/3b822974-3568-4aae-8706-5af766fb4539/c(slin)")
    ev.newstate(spy, UP)
    legs.main.priority = 3
    ev.chanspy(True, spy, legs.main)
    ev.hangup(spy, 0)
    ours = rec.blocks
    for name, match in [
        ("Newchannel", {"Uniqueid": "1795323180.10"}),
        ("Newstate", {"ChannelStateDesc": "Ring"}),
        ("Newstate", {"ChannelStateDesc": "Up", "Uniqueid": "1795323180.10"}),
        ("Newexten", {"Application": "AGI"}),
        ("Newchannel", {"Uniqueid": "1795323180.11"}),
        ("DialBegin", {}),
        ("ChanSpyStart", {}),
        ("Hangup", {"Uniqueid": "1795323180.11"}),
    ]:
        assert first(ours, name, **match) == first(cap, name, **match)
    assert next(b for b in ours if dict(b).get("Variable") == "SIPCALLID")[-1] == (
        "Value",
        "1-23093@127.0.0.1",
    )


SCENARIOS: dict[str, dict[str, Any]] = {
    # agi capture: how to rebuild its call, and the Uniqueid counter at its first channel
    "sip-inbound": {"call": SimCall("0311112222", "0668585050"), "uid": 2, "sip": 0},
    "sip-bridged-0668585099": {
        "call": SimCall("0311112222", "0668585099", bridged=True),
        "uid": 6,
        "sip": 13,
    },
    "local-inbound": {
        "call": SimCall("0311112222", "0668585050", tech="Local", caller_name="Test"),
        "uid": 0,
    },
    "outbound-to-pstn": {
        "call": SimCall("201", "0312345678", direction="outbound", tech="Local", caller_name="Ext 201"),
        "uid": 13,
    },
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_get_full_variable_answers_match_the_captures(name: str) -> None:
    side = sidecar(FIXTURES / "agi" / f"{name}.txt")
    spec = SCENARIOS[name]
    epoch = side["env"]["agi_uniqueid"].split(".")[0]
    legs = build_legs(
        Events(Recorder()),
        spec["call"],
        agi_url="",
        uniqueid=uniqueids(spec["uid"], epoch),
        sip_index=spec.get("sip", 0),
        local_index=itertools.count().__next__,
    )
    legs.arrive()
    assert legs.main.uniqueid == side["env"]["agi_uniqueid"]
    clock = SimClock(1.0)
    checked = 0
    for c in side["commands"]:
        args = agi_args(c["sent"])
        if args[:3] == ["GET", "FULL", "VARIABLE"]:
            value = substitute(args[3], lambda n: read_variable(spec["call"], legs.main, clock, n))
            assert f"200 result=1 ({value})" == c["received_lines"][0]
            checked += 1
    assert checked


def test_usage_texts_are_the_captured_ones() -> None:
    cs = list(chunks(FIXTURES / "agi" / "errors-510-520.txt"))
    for i, c in enumerate(cs):
        if (
            c.src == "agi-server"
            and cs[i + 1].data == b"520-Invalid command syntax.  Proper usage follows:\n"
        ):
            words = " ".join(c.data.decode().split()[: 3 if c.data.startswith(b"GET FULL") else 2]).lower()
            assert USAGE[words] + "520 End of proper usage.\n" == cs[i + 2].data.decode()


class FakeWriter:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def drain(self) -> None:
        pass


@pytest.mark.parametrize("name", ["sip-inbound", "local-inbound", "outbound-to-pstn"])
async def test_env_block_is_written_in_two_chunks_like_asterisk(name: str) -> None:
    path = FIXTURES / "agi" / f"{name}.txt"
    env = list(sidecar(path)["env"].items())
    session = AgiSession(None, SimClock(1.0), env, [])  # type: ignore[arg-type]
    writer = FakeWriter()
    await session._send_env(writer)  # type: ignore[arg-type]
    assert writer.writes == [c.data for c in chunks(path)][:2]
    assert re.search(rb"agi_accountcode: \n", writer.writes[1])  # the trailing blank is real
