"""The FastAGI sans-IO core against every Asterisk 20.20.1 capture, and against malformed input."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.agi.protocol import (
    NEED_DATA,
    AgiServerConnection,
    Closed,
    Environment,
    HangupNotice,
    Response,
    parse_response_line,
)
from pbx.errors import PeerProtocolError, UsageError
from support.captures import agi_captures, chunks, from_asterisk, sidecar

CAPTURES = agi_captures()
IDS = [p.stem for p in CAPTURES]


def _commands(path: Path) -> list[bytes]:
    return [c.data for c in chunks(path) if c.dst == "asterisk" and c.data]


def _stream(path: Path) -> bytes:
    return b"".join(from_asterisk(path))


def drive(path: Path, pieces: list[bytes]) -> list[object]:
    """Feed Asterisk's bytes in ``pieces`` (then EOF); send our side's commands as the capture
    did, each one right after the previous answer (or the environment)."""
    commands = _commands(path)
    conn = AgiServerConnection()
    feed = iter([*pieces, b""])
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(next(feed))
            continue
        events.append(event)
        if isinstance(event, Closed):
            return events
        if isinstance(event, Environment | Response) and commands:
            wire = commands.pop(0)
            assert conn.send_command(wire[:-1].decode()) == wire


def lines_of(r: Response) -> list[str]:
    if r.usage:
        return [f"{r.code}-{r.text}", *r.usage]
    return [f"{r.code} {r.text}"]


def check_against_sidecar(path: Path, events: list[object]) -> None:
    meta = sidecar(path)
    env = events[0]
    assert isinstance(env, Environment)
    assert env.values == meta["env"]
    rest = events[1:]
    for cmd in meta["commands"]:
        lines = cmd["received_lines"]
        for _ in range(lines.count("HANGUP")):
            assert isinstance(rest.pop(0), HangupNotice)
        lines = [x for x in lines if x != "HANGUP"]
        resp = rest.pop(0)
        assert isinstance(resp, Response), cmd["sent"]
        got = lines_of(resp)
        if resp.usage:  # the final "520 End of proper usage." line is not kept
            assert got == lines[:-1]
            assert lines[-1].startswith(f"{resp.code} ")
        else:
            assert got == lines
    # Every capture ends the same way: we half-close, Asterisk says HANGUP and closes.
    assert rest == [HangupNotice(), Closed()]


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_capture_whole(path: Path) -> None:
    check_against_sidecar(path, drive(path, [_stream(path)]))


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_capture_real_recv_chunks(path: Path) -> None:
    check_against_sidecar(path, drive(path, [c for c in from_asterisk(path) if c]))


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_capture_byte_by_byte(path: Path) -> None:
    data = _stream(path)
    events = drive(path, [data[i : i + 1] for i in range(len(data))])
    assert events == drive(path, [data])
    check_against_sidecar(path, events)


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=40))
def test_capture_random_split(path: Path, cuts: list[int]) -> None:
    data = _stream(path)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    assert drive(path, pieces) == drive(path, [data])


def test_capture_details() -> None:
    by_name = {p.stem: p for p in CAPTURES}

    def responses(name: str) -> list[Response]:
        return [e for e in drive(by_name[name], [_stream(by_name[name])]) if isinstance(e, Response)]

    sip = responses("sip-inbound")
    assert sip[0].data == "0311112222|SIPp Caller|0668585050||0668585050|127.0.0.1|1-23090@127.0.0.1|(ulaw)"
    assert sip[1].data == '"SIPp Caller" <sip:0311112222@127.0.0.1:5061>;tag=23090SIPpTag001'
    assert sip[3] == Response(code=200, result=1, data="", text="result=1 ()")

    hup = responses("hangup-during-stream-file")
    assert (hup[1].result, hup[1].endpos, hup[1].hangup) == (-1, 24000, True)
    assert hup[3].code == 511
    assert hup[3].dead_channel
    assert not hup[3].ok
    assert hup[3].text == "Command Not Permitted on a dead channel or intercept routine"

    assert responses("local-inbound")[-1] == Response(200, 0, None, 3404, "result=0 endpos=3404")

    errors = responses("errors-510-520")
    assert errors[0] == Response(510, text="Invalid or unknown command")
    usage = errors[1]
    assert usage.code == 520
    assert usage.text == "Invalid command syntax.  Proper usage follows:"
    assert len(usage.usage) == 5
    assert usage.usage[-1] == "    <value>FAILED</value>"
    assert usage.result is None
    assert errors[-2].result == -2
    assert not errors[-2].hangup

    env = next(e for e in drive(by_name["outbound-to-pstn"], [_stream(by_name["outbound-to-pstn"])]))
    assert isinstance(env, Environment)
    assert (env.script, env.callerid, env.calleridname) == ("outbound", "201", "Ext 201")
    assert (env.dnid, env.extension, env.context) == ("unknown", "0312345678", "to-pstn")
    assert env.values["agi_accountcode"] == ""
    assert env.get("no_such_key") == ""


@pytest.mark.parametrize(
    ("text", "result", "data", "endpos"),
    [
        ("result=1", 1, None, None),
        ("result=1 (1795323180.10)", 1, "1795323180.10", None),
        ("result=1 (a (b) c)", 1, "a (b) c", None),
        ("result=1 (timeout) endpos=120", 1, "timeout", 120),
        ("result=-1 endpos=24000", -1, None, 24000),
        ("result=-2", -2, None, None),
        ("result= (timeout)", None, "timeout", None),
        ("result=1 (x endpos=5)", 1, "x endpos=5", None),
    ],
)
def test_parse_response_line(text: str, result: int | None, data: str | None, endpos: int | None) -> None:
    r = parse_response_line(200, text)
    assert (r.result, r.data, r.endpos, r.text) == (result, data, endpos, text)


# -- malformed input and misuse ---------------------------------------------------------------------


ENV = b"agi_network: yes\nagi_uniqueid: 1.2\nagi_accountcode: \n\n"


def ready() -> AgiServerConnection:
    conn = AgiServerConnection()
    conn.receive_data(ENV)
    assert isinstance(conn.next_event(), Environment)
    return conn


@pytest.mark.parametrize(
    "data",
    [
        b"".join(b"agi_k%d: v\n" % i for i in range(200)),  # too many lines
        b"".join(b"agi_k%d: %s\n" % (i, b"v" * 200) for i in range(100)),  # too many bytes
        b"agi_big: " + b"x" * 100_000,  # a 100 KB line, no newline needed to reject it
        b"agi_big: " + b"x" * 10_000 + b"\n\n",
        b"agi_network yes\n\n",  # no ": "
        b"agi_network:yes\n\n",
        b"network: yes\n\n",  # not agi_*
        "agi_ключ: v\n\n".encode(),  # non-ASCII key
        b"HANGUP\n",
    ],
)
def test_bad_environment(data: bytes) -> None:
    conn = AgiServerConnection()
    conn.receive_data(data)
    with pytest.raises(PeerProtocolError):
        drain(conn)


def drain(conn: AgiServerConnection) -> None:
    while conn.next_event() is not NEED_DATA:
        pass


def test_environment_split_and_lenient_values() -> None:
    conn = AgiServerConnection()
    # Shift_JIS caller name: kept (with replacement characters) rather than losing the call.
    raw = b"agi_calleridname: \x93\x8c\x8b\x9e\nagi_callerid: 0311112222\n\n"
    for i in range(len(raw)):
        assert conn.next_event() is NEED_DATA
        conn.receive_data(raw[i : i + 1])
    env = conn.next_event()
    assert isinstance(env, Environment)
    assert "\ufffd" in env.calleridname
    assert env.callerid == "0311112222"


def test_eof_cases() -> None:
    conn = AgiServerConnection()
    conn.receive_data(b"")
    assert conn.next_event() == Closed()  # connect + close (health check): not an error
    assert conn.next_event() == Closed()
    with pytest.raises(UsageError):
        conn.receive_data(b"x")

    conn = AgiServerConnection()
    conn.receive_data(b"agi_network: yes\n")
    conn.receive_data(b"")
    with pytest.raises(PeerProtocolError):
        conn.next_event()

    conn = ready()
    conn.send_command("GET VARIABLE X")
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\nusage\n")
    conn.receive_data(b"")
    with pytest.raises(PeerProtocolError):
        conn.next_event()

    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(b"200 res")
    conn.receive_data(b"")
    with pytest.raises(PeerProtocolError):
        conn.next_event()

    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(b"")
    assert conn.next_event() == Closed()  # the session turns this into AgiClosedError
    with pytest.raises(UsageError):
        conn.send_command("NOOP")


@pytest.mark.parametrize(
    "data",
    [b"200 result=1\n", b"hello\n", b"\xff\xfe\n", b"200 result=1 (" + b"x" * 9000 + b")\n"],
)
def test_bad_responses(data: bytes) -> None:
    conn = ready()
    if not data.startswith(b"200 result=1\n"):
        conn.send_command("NOOP")
    conn.receive_data(data)
    with pytest.raises(PeerProtocolError):
        conn.next_event()


def test_usage_block_limit() -> None:
    conn = AgiServerConnection(max_usage_bytes=100)
    conn.receive_data(ENV)
    conn.next_event()
    conn.send_command("EXEC")
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\n" + (b"u" * 60 + b"\n") * 2)
    with pytest.raises(PeerProtocolError):
        conn.next_event()


def test_hangup_while_idle_and_while_waiting() -> None:
    conn = ready()
    conn.receive_data(b"HANGUP\n")
    assert conn.next_event() == HangupNotice()
    assert conn.next_event() is NEED_DATA
    conn.send_command('STREAM FILE beep ""')
    conn.receive_data(b"HANGUP\n200 result=-1 endpos=0\n")
    assert conn.next_event() == HangupNotice()
    r = conn.next_event()
    assert isinstance(r, Response)
    assert r.hangup


def test_send_command_misuse() -> None:
    with pytest.raises(UsageError):
        AgiServerConnection().send_command("NOOP")  # before the environment
    conn = ready()
    for bad in ("NOOP\n", "NO\rOP", "NO\0OP", "SET VARIABLE X " + "y" * 3000):
        with pytest.raises(UsageError):
            conn.send_command(bad)
    assert conn.send_command("NOOP") == b"NOOP\n"
    assert conn.command_outstanding
    with pytest.raises(UsageError):
        conn.send_command("NOOP")  # one at a time
