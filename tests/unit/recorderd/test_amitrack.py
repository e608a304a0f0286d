"""The AMI tracker, fed the real event streams Asterisk 20.20.1 produced."""

import datetime as dt

from pbx.ami.protocol import NEED_DATA, AmiClientConnection, Closed, Message
from recorderd.daemon.amitrack import CallUpdate, ChannelTracker
from support.captures import FIXTURES, from_asterisk

RECEIVED = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def _events(name: str) -> list[Message]:
    conn = AmiClientConnection()
    out: list[Message] = []
    for chunk in from_asterisk(FIXTURES / "ami" / name):
        conn.receive_data(chunk)
        while (ev := conn.next_event()) is not NEED_DATA:
            if isinstance(ev, Closed):
                return out
            if isinstance(ev, Message) and ev.is_event:
                out.append(ev)
    return out


def _merge(updates: list[CallUpdate]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for u in updates:
        merged |= u.fields
    return merged


def _track(capture: str, uniqueid: str, *, watch_first: bool) -> dict[str, object]:
    tracker = ChannelTracker()
    updates: list[CallUpdate] = []
    events = _events(capture)
    if watch_first:
        updates += tracker.watch(uniqueid, "call-1")
    for i, ev in enumerate(events):
        # The AGI connects after Answer(): watch from the first AGIExecStart of that channel.
        agi_start = ev.get("Event") == "AGIExecStart" and ev.get("Uniqueid") == uniqueid
        if not watch_first and agi_start and tracker.watching == 0:
            updates += tracker.watch(uniqueid, "call-1")
        updates += tracker.feed(ev, RECEIVED + dt.timedelta(seconds=i))
    assert all(u.call_id == "call-1" for u in updates)
    return _merge(updates)


def test_bridged_call_gives_answer_agent_and_hangup() -> None:
    got = _track("sip-bridged-call.txt", "1795323167.6", watch_first=False)
    # Answered before the AGI connected: remembered and handed over on watch().
    assert got["answered_at"] == dt.datetime.fromtimestamp(1795323167.681762, dt.UTC)
    assert got["pbx_linkedid"] == "1795323167.6"
    assert got["agent_channel"] == "Local/s@agent-sim-00000001;1"
    assert got["ended_at"] == dt.datetime.fromtimestamp(1795323177.383618, dt.UTC)
    assert (got["hangup_cause"], got["hangup_cause_text"]) == (16, "Normal Clearing")


def test_caller_hangup_during_agi_reports_the_real_hangup() -> None:
    got = _track("hangup-during-stream-file.txt", "1795323205.12", watch_first=False)
    assert "answered_at" in got and "ended_at" in got
    assert "agent_channel" not in got


def test_unwatched_channels_produce_nothing() -> None:
    tracker = ChannelTracker()
    updates = [u for ev in _events("sip-bridged-call.txt") for u in tracker.feed(ev, RECEIVED)]
    assert updates == []


def test_outbound_call_answer_comes_after_watch() -> None:
    events = _events("outbound-to-pstn.txt")
    uid = next(e.get("Uniqueid") for e in events if e.get("Event") == "AGIExecStart")
    assert uid is not None
    got = _track("outbound-to-pstn.txt", uid, watch_first=True)
    assert "ended_at" in got


def test_memory_of_answers_is_bounded() -> None:
    class Ev(dict[str, str]):
        def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
            return super().get(name, default)

    tracker = ChannelTracker()
    for i in range(10_000):
        tracker.feed(Ev(Event="Newstate", ChannelStateDesc="Up", Uniqueid=f"1.{i}"), RECEIVED)
    assert tracker.watch("1.0", "c") == []  # forgotten: too old
    assert tracker.watch("1.9999", "d") != []


def test_seen_knows_every_channel_the_real_stream_named_and_no_other() -> None:
    tracker = ChannelTracker()
    events = _events("recording-sequence-sip.txt")
    named = {ev.get("Uniqueid") for ev in events} - {None}
    for ev in events:
        tracker.feed(ev, RECEIVED)
    assert named and all(tracker.seen(uid) for uid in named if uid)
    assert not tracker.seen("1796600000.999")  # an invented uniqueid, as a forged AGI would claim
    spied = {ev.get("SpyeeUniqueid") for ev in events if ev.get("Event") == "ChanSpyStart"}
    assert spied and all(tracker.seen(uid) for uid in spied if uid)  # the capture has the spy attach
