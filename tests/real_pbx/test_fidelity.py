"""Simulator fidelity (issue 15, part 2): the same scenario on the real Asterisk and on the simulator,
both captured on the wire between the PBX and the real daemon (real_pbx/capture.py), must give the
same AGI conversation (environment, every command, every reply's shape) and the same course of AMI
events for the call, ids and times aside (real_pbx/conversation.py says what is set aside).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.simulator import SimCall
from real_pbx.capture import CaptureProxy, Connection
from real_pbx.conversation import agi_environment, agi_exchanges, ami_events, call_course, parse_env
from real_pbx.lane import CITY_NUMBER, RECORDED_LINE, STAFF_EXTENSION, STEREO_LINE, Lane, lane_unavailable
from recorderd.config import parse_config
from storage.age import generate_identity
from support.asterisk import free_tcp_port
from support.running import start_daemon, start_simulator

pytestmark = [pytest.mark.real_pbx, pytest.mark.slow, pytest.mark.timeout(240)]

SECRET = "fidelity-secret"


@pytest.fixture(scope="module")
def capture_lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    why = lane_unavailable()
    if why is not None:
        pytest.skip(f"real-PBX lane: {why}")  # conftest's lane fixture decides CI's fail-not-skip
    lane = Lane(tmp_path_factory.mktemp("fidelity"), capture=True)
    try:
        lane.start()
        yield lane
    finally:
        lane.close()


def real_call(lane: Lane, caller: str, dialled: str) -> tuple[Connection, list[dict[str, str]]]:
    agi_before = len(lane.proxies["agi"].connections)
    ami = lane.proxies["ami"].connections[0]
    start = len(ami.pieces)
    lane.call(caller=caller, dialled=dialled)
    remote = dialled if caller == STAFF_EXTENSION else caller
    lane.wait_row(lambda r: r.remote_number == remote)
    [agi] = lane.proxies["agi"].connections[agi_before:]
    agi.done.wait(10)
    window = Connection(ami.opened, ami.pieces[start:])
    return agi, ami_events(window)


async def simulated_call(root: Path, lane: Lane, call: SimCall) -> tuple[Connection, list[dict[str, str]]]:
    """The lane's configuration (its lines), the real daemon in-process, the simulator as the PBX."""
    # The AMI user as shipped (config/asterisk/manager.conf, which the lane loads): read = call,agent
    sim = await start_simulator(root, SECRET, 25.0, ami_read="call,agent")
    ami_port = free_tcp_port()
    ami_proxy = CaptureProxy(ami_port, sim.ami_port, "ami-client", "asterisk")
    _identity, recipient = generate_identity()
    text = lane.config.read_text()
    lines = text[text.index("[defaults]") :]
    config = parse_config(f"""
timezone = "Asia/Tokyo"
data_dir = "{root / "data"}"
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
port = {ami_port}
username = "recorder"
secret = "{SECRET}"
[encryption]
recipients = ["{recipient}"]
[announcements.ja]
sound = "recorderd/announce-ja"
{lines}""")
    run = await start_daemon(config, sim)
    agi_port = free_tcp_port()
    agi_proxy = CaptureProxy(agi_port, run.endpoints.agi_port, "asterisk", "agi-server")
    sim.set_agi_target("127.0.0.1", agi_port)
    try:
        await sim.run_call(call)
        assert run.daemon.manager is not None
        await run.daemon.manager.drain()
        for conn in agi_proxy.connections:  # the daemon closed its side; the proxy's threads finish
            await asyncio.to_thread(conn.done.wait, 10)
    finally:
        await run.close()
        await sim.close()
        agi_proxy.close()
        ami_proxy.close()
    [agi] = agi_proxy.connections
    return agi, ami_events(ami_proxy.connections[0])


def course(agi: Connection, events: list[dict[str, str]]) -> list[str]:
    """The call's AMI course: its channels by the AGI channel's Linkedid, its spy by the UUID the
    daemon put in the Originate."""
    uniqueid = parse_env(agi.sent_by("asterisk").decode(errors="replace").split("\n\n", 1)[0])["agi_uniqueid"]
    linkedid = next((e.get("Linkedid", uniqueid) for e in events if e.get("Uniqueid") == uniqueid), uniqueid)
    sent = agi.sent_by("agi-server").decode()
    spy_uuid = sent.split("AudioSocket/", 1)[1].split("/")[1] if "AudioSocket/" in sent else ""
    return call_course(events, linkedid, spy_uuid)


def per_channel(course: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in course:
        out.setdefault(line.split()[1], []).append(line)
    return out


@pytest.mark.parametrize("dialled", [RECORDED_LINE, STEREO_LINE], ids=["mono", "stereo"])
def test_simulator_speaks_as_the_real_pbx_for_a_recorded_inbound_call(
    capture_lane: Lane, tmp_path: Path, dialled: str
) -> None:
    caller = "0311118001" if dialled == RECORDED_LINE else "0311118002"
    real_agi, real_ami = real_call(capture_lane, caller, dialled)
    speech = capture_lane.caller["caller 1"].astype("<i2").tobytes()
    agent = capture_lane.agent.astype("<i2").tobytes()
    sim = SimCall(caller=caller, dialled=dialled, caller_audio=speech, agent_audio=agent, bridged=True)
    sim_agi, sim_ami = asyncio.run(simulated_call(tmp_path, capture_lane, sim))

    compare(real_agi, real_ami, sim_agi, sim_ami)


def compare(
    real_agi: Connection, real_ami: list[dict[str, str]], sim_agi: Connection, sim_ami: list[dict[str, str]]
) -> None:
    compare_agi(real_agi, sim_agi)
    real, simulated = course(real_agi, real_ami), course(sim_agi, sim_ami)
    # Each channel's events in order. Across channels, real Asterisk's order is a race between the
    # channels' threads (seen: "Newstate Local;2 Up" before or after "DialBegin SIP"), so not compared.
    table = "AMI course:\n" + "\n".join(
        f"{r!s:40} {s!s:40} {'' if r == s else '<<'}" for r, s in itertools.zip_longest(real, simulated)
    )
    assert per_channel(simulated) == per_channel(real), table
    assert sorted(simulated) == sorted(real), table


def test_simulator_speaks_as_the_real_pbx_for_an_outbound_call(capture_lane: Lane, tmp_path: Path) -> None:
    real_agi, real_ami = real_call(capture_lane, STAFF_EXTENSION, CITY_NUMBER)
    speech = capture_lane.caller["caller 1"].astype("<i2").tobytes()
    agent = capture_lane.agent.astype("<i2").tobytes()
    sim = SimCall(caller=STAFF_EXTENSION, dialled=CITY_NUMBER, direction="outbound", caller_name="Ext 201",
                  caller_audio=speech, agent_audio=agent, bridged=True)  # fmt: skip
    sim_agi, sim_ami = asyncio.run(simulated_call(tmp_path, capture_lane, sim))
    # The AGI runs while the SIP channel rings; then Dial() reaches the far end through a Local pair,
    # the SIP channel is answered when the far end answers, and both sit in one bridge.
    compare(real_agi, real_ami, sim_agi, sim_ami)


def compare_agi(real_agi: Connection, sim_agi: Connection) -> None:
    real_env, sim_env = agi_environment(real_agi), agi_environment(sim_agi)
    differ = {k: (real_env.get(k), sim_env.get(k)) for k in real_env.keys() | sim_env.keys()
              if real_env.get(k) != sim_env.get(k)}  # fmt: skip
    assert not differ, f"AGI environment (real, simulator): {differ}"
    assert agi_exchanges(sim_agi) == agi_exchanges(real_agi)
