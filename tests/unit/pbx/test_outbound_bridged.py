"""A bridged outbound call on the simulator takes the course the real Asterisk 20.20.1 took on the lane
(ami/lane/lane-sip-outbound.txt, made by tests/real_pbx/regenerate_fixtures.py): the AGI while the
SIP channel rings, Dial() to the far end through a Local pair, the SIP channel answered when the far
end answers, one bridge, the far end hangs up first. tests/real_pbx/test_fidelity.py checks the same
against a live Asterisk with the daemon in between; this keeps it checked where no Asterisk runs.
"""

from __future__ import annotations

import itertools

from pbx.simulator.channel import RING, Events, Fields
from pbx.simulator.legs import build_legs
from pbx.simulator.model import SimCall
from real_pbx.conversation import call_course
from support.captures import FIXTURES, from_asterisk

CAPTURE = FIXTURES / "ami" / "lane" / "lane-sip-outbound.txt"  # apart: not one of the wire-shape captures


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def publish(self, name: str, privilege: str, fields: Fields) -> None:
        event = {"Event": name}
        for key, value in fields:
            event.setdefault(key, value)
        self.events.append(event)


def captured_events() -> list[dict[str, str]]:
    text = b"".join(from_asterisk(CAPTURE)).decode().replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                fields.setdefault(key, value)
        if "Event" in fields:
            events.append(fields)
    return events


def legs_only(course: list[str]) -> list[str]:
    """The call's own channels: the spy (its AudioSocket channel, ChanSpy) is the daemon's doing."""
    return [line for line in course if not line.startswith("ChanSpy") and " AudioSocket" not in line]


def test_a_bridged_outbound_call_dials_the_far_end_as_the_real_pbx_does() -> None:
    real = captured_events()
    sip = next(e for e in real if e["Event"] == "Newchannel" and e["Channel"].startswith("SIP/"))
    expected = legs_only(call_course(real, sip["Linkedid"], ""))

    rec = Recorder()
    call = SimCall("201", "0312345678", direction="outbound", caller_name="Ext 201", bridged=True)
    legs = build_legs(Events(rec), call, agi_url="agi://127.0.0.1:4573/outbound",
                      uniqueid=(f"1796619952.{n}" for n in itertools.count(8)).__next__,
                      sip_index=2, local_index=itertools.count(2).__next__)  # fmt: skip
    legs.arrive()
    assert legs.main.state == RING  # the AGI runs before anyone answers
    legs.after_agi("SUCCESS")
    legs.end("normal", lambda: None)
    ours = call_course(rec.events, legs.main.linkedid, "")

    assert "DialBegin SIP" in expected and "BridgeEnter Local;1" in expected  # the capture is what we think
    # The captured order is one run's interleaving of the channels' threads; ours is one of them.
    assert ours == expected
    dial = next(e for e in rec.events if e["Event"] == "DialBegin" and e.get("Channel") == legs.main.name)
    assert dial["DestChannel"].startswith("Local/0312345678@trunk-sim-")
