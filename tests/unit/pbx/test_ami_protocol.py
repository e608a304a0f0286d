"""The sans-IO AMI core against real Asterisk 20 captures, hostile input and the action encoder."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.ami.protocol import NEED_DATA, AmiClientConnection, Banner, Closed, Message, encode_action
from pbx.errors import PeerProtocolError, UsageError
from support.captures import FIXTURES, ami_captures, from_asterisk, to_asterisk

AMI = FIXTURES / "ami"
CAPTURES = ami_captures()
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
Item = Banner | Message | Closed


def parse(pieces: Iterable[bytes], **limits: int) -> list[Item]:
    conn = AmiClientConnection(**limits)
    out: list[Item] = []
    for piece in pieces:
        conn.receive_data(piece)
        while (item := conn.next_event()) is not NEED_DATA:
            out.append(item)
            if isinstance(item, Closed):
                return out
    return out


def messages(name: str) -> list[Message]:
    return [m for m in parse(from_asterisk(AMI / name)) if isinstance(m, Message)]


def fed_until_error(pieces: Iterable[bytes], **limits: int) -> int:
    """How many bytes went in before the parser raised PeerProtocolError."""
    conn = AmiClientConnection(**limits)
    fed = 0
    for piece in pieces:
        conn.receive_data(piece)
        fed += len(piece)
        try:
            while conn.next_event() is not NEED_DATA:
                pass
        except PeerProtocolError:
            return fed
    raise AssertionError("no PeerProtocolError")


# --- every capture, every framing -------------------------------------------------------------


def test_there_are_ami_captures() -> None:
    assert len(CAPTURES) == 16


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_parses_whole_and_byte_by_byte_identically(path: Path) -> None:
    recorded = from_asterisk(path)
    whole = b"".join(recorded)
    reference = parse(recorded)  # the recv() boundaries Asterisk really produced
    assert reference[0] == Banner("Asterisk Call Manager/9.0.0")
    assert reference[-1] == Closed()
    body = reference[1:-1]
    assert all(isinstance(m, Message) for m in body)
    # Independent count: every AMI message ends with an empty line.
    assert len(body) == whole.count(b"\r\n\r\n")
    assert parse([whole, b""]) == reference
    assert parse([whole[i : i + 1] for i in range(len(whole))] + [b""]) == reference


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_capture_split_at_random_points(path: Path, data: st.DataObject) -> None:
    whole = b"".join(from_asterisk(path))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=40)))
    bounds = [0, *cuts, len(whole)]
    pieces = [whole[a:b] for a, b in itertools.pairwise(bounds) if b > a]  # b"" would be EOF
    assert parse([*pieces, b""]) == parse([whole, b""])


# --- concrete facts from the captures ---------------------------------------------------------


def test_login_accepted_then_fully_booted_and_successful_auth() -> None:
    first, booted, auth = messages("local-call.txt")[:3]
    assert first.is_response
    assert not first.is_event
    assert (first.name, first.action_id, first.get("Message")) == ("Success", "a1", "Authentication accepted")
    assert (booted.name, booted.get("Status")) == ("FullyBooted", "Fully Booted")
    assert (auth.name, auth.get("AccountID"), auth.get("UsingPassword")) == (
        "SuccessfulAuth",
        "recorder",
        "0",
    )


def test_values_keep_inner_spaces_and_empty_values() -> None:
    newchannel = next(m for m in messages("local-call.txt") if m.name == "Newchannel")
    assert newchannel.get("AccountCode") == ""
    assert newchannel.get("CallerIDNum") == "<unknown>"
    assert newchannel.get("Channel") == "Local/0668585050@from-pstn-00000000;1"
    originate = messages("local-call.txt")[3]
    assert originate.get("Message") == "Originate successfully queued"


def test_sip_call_chanspystart_names_the_spied_sip_channel() -> None:
    msgs = messages("sip-call.txt")
    sip = next(m for m in msgs if m.name == "Newchannel" and (m.get("Channel") or "").startswith("SIP/"))
    spy = next(m for m in msgs if m.name == "ChanSpyStart")
    assert spy.get("SpyeeUniqueid") == sip.get("Uniqueid")
    assert (spy.get("SpyerChannel") or "").startswith("AudioSocket/127.0.0.1:9092-")


def test_wrong_secret_gives_error_then_closed() -> None:
    items = parse(from_asterisk(AMI / "login-wrong-secret.txt"))
    assert len(items) == 3
    banner, error, closed = items
    assert isinstance(banner, Banner)
    assert banner.version == "9.0.0"
    assert isinstance(error, Message)
    assert error.is_response
    assert (error.name, error.get("Message"), error.action_id) == ("Error", "Authentication failed", "b1")
    assert closed == Closed()


def test_shutdown_event_then_closed() -> None:
    items = parse(from_asterisk(AMI / "shutdown-core-stop-now.txt"))
    shutdown, closed = items[-2:]
    assert isinstance(shutdown, Message)
    assert shutdown.is_event
    assert (shutdown.name, shutdown.get("Shutdown"), shutdown.get("Restart")) == (
        "Shutdown",
        "Cleanly",
        "False",
    )
    assert closed == Closed()


def test_unauthenticated_client_gets_banner_then_closed() -> None:
    items = parse(from_asterisk(AMI / "shutdown-core-stop-now-unauthenticated.txt"))
    assert items == [Banner("Asterisk Call Manager/9.0.0"), Closed()]


def test_originate_response_is_an_event_despite_its_response_field() -> None:
    event = next(m for m in messages("spy-originate-local.txt") if m.name == "OriginateResponse")
    assert event.is_event
    assert not event.is_response
    assert event.get("Response") == "Success"
    assert event.action_id == "a2"


def test_ping_and_coresettings_responses() -> None:
    _, _, _, pong, settings_ = messages("ping-coresettings.txt")[:5]
    assert (pong.action_id, pong.get("Ping")) == ("a2", "Pong")
    assert (settings_.get("AMIversion"), settings_.get("AsteriskVersion")) == ("9.0.0", "20.20.1")


# --- the Message API --------------------------------------------------------------------------


def test_message_accessors() -> None:
    m = Message(
        (("Response", "Success"), ("ActionID", "x1"), ("Output", "a"), ("output", " b "), ("Empty", ""))
    )
    assert m.get("actionid") == "x1"
    assert m.action_id == "x1"
    assert m.get("Missing") is None
    assert m.get("Missing", "d") == "d"
    assert m.get_all("OUTPUT") == ["a", " b "]
    assert m.as_dict() == {
        "Response": "Success",
        "ActionID": "x1",
        "Output": "a",
        "output": " b ",
        "Empty": "",
    }
    assert m.name == "Success"
    assert m.is_response
    assert not m.is_event
    assert Message((("Foo", "bar"),)).name is None
    assert Message(()).name is None


def test_bare_lf_and_stray_blank_lines_are_tolerated() -> None:
    items = parse([b"Asterisk Call Manager/9.0.0\n\r\nEvent: A\nX:no-space\n\n\r\n\r\nEvent: B\r\n\r\n", b""])
    assert items[1:] == [
        Message((("Event", "A"), ("X", "no-space"))),
        Message((("Event", "B"),)),
        Closed(),
    ]


# --- hostile or broken peers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        BANNER + b"Event: X\r\nthis line has no colon\r\n\r\n",
        BANNER + b": no key\r\n\r\n",
        BANNER + b"Event: Newchannel\r\nCallerIDName: \x82\xa0\x82\xa2\r\n\r\n",  # Shift_JIS, not UTF-8
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\xff\xfe\r\n",
    ],
    ids=["no-colon", "empty-key", "not-utf8", "http", "ssh", "binary-banner"],
)
def test_malformed_input_raises(payload: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        parse([payload])


def test_error_is_sticky() -> None:
    conn = AmiClientConnection()
    conn.receive_data(BANNER + b"garbage\r\nEvent: Fine\r\n\r\n")
    assert isinstance(conn.next_event(), Banner)
    for _ in range(2):
        with pytest.raises(PeerProtocolError):
            conn.next_event()


def test_100kb_line_is_refused_before_it_is_buffered() -> None:
    pieces = [BANNER, b"Event: X\r\nKey: ", *[b"a" * 1024] * 100]
    fed = fed_until_error(pieces, max_line=8192)
    assert fed - len(BANNER) < 8192 + 2 * 1024


def test_endless_line_before_banner_is_refused() -> None:
    assert fed_until_error([b"x" * 1000] * 100, max_line=8192) < 10_000


def test_endless_message_without_blank_line_is_refused() -> None:
    pieces = [BANNER, *[b"Variable: some=value\r\n"] * 10_000]
    fed = fed_until_error(pieces, max_message_bytes=65536)
    assert fed < 65536 + 100


def test_line_limit_boundary_counts_content_not_crlf() -> None:
    ok = BANNER + b"K: " + b"v" * 27 + b"\r\n\r\n"  # a 30-byte line, split between its CR and LF
    assert parse([ok[:-3], ok[-3:-2], ok[-2:]], max_line=30, max_message_bytes=100)[1:] == [
        Message((("K", "v" * 27),))
    ]
    with pytest.raises(PeerProtocolError):
        parse([BANNER + b"K: " + b"v" * 28 + b"\r\n\r\n"], max_line=30, max_message_bytes=100)


@pytest.mark.parametrize(
    "payload",
    [BANNER + b"Event: Half\r\n", BANNER + b"Event: Ha", b"Asterisk Call Man"],
    ids=["mid-message", "mid-line", "mid-banner"],
)
def test_eof_in_the_middle_raises(payload: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        parse([payload, b""])


def test_eof_before_anything_is_closed_and_then_usage_errors() -> None:
    conn = AmiClientConnection()
    conn.receive_data(b"")
    assert conn.next_event() == Closed()
    with pytest.raises(UsageError):
        conn.next_event()
    with pytest.raises(UsageError):
        conn.receive_data(b"more")


def test_bad_limits_are_a_usage_error() -> None:
    with pytest.raises(UsageError):
        AmiClientConnection(max_message_bytes=10, max_line=100)


# --- encode_action ----------------------------------------------------------------------------


def test_encode_login_matches_the_bytes_sent_in_the_capture() -> None:
    sent = to_asterisk(AMI / "local-call.txt")
    login = {"Username": "recorder", "Secret": "recorder-secret", "Events": "on"}
    assert encode_action("Login", login, "a1") == sent[0]
    originate = [
        ("Channel", "Local/0668585050@from-pstn"),
        ("Context", "test-caller"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("CallerID", '"Test" <0311112222>'),
        ("Timeout", "30000"),
        ("Async", "true"),
    ]
    assert encode_action("Originate", originate, "a2") == sent[1]


def test_encode_keeps_repeated_keys() -> None:
    data = encode_action("Originate", [("Variable", "A=1"), ("Variable", "B=2")], "x")
    assert data == b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nActionID: x\r\n\r\n"


@pytest.mark.parametrize(
    ("name", "fields", "action_id"),
    [
        ("Ping", {"Channel": "SIP/x\r\nAction: Hangup"}, "a"),
        ("Ping", {"Chan\nnel": "x"}, "a"),
        ("Ping\r\n", {}, "a"),
        ("Ping", {}, "a\n"),
        ("Ping", {"Key:": "x"}, "a"),
        ("Ping", {"": "x"}, "a"),
        ("Ping", {"ActionID": "mine"}, "a"),
        ("Ping", [("action", "Logoff")], "a"),
        ("", {}, "a"),
        ("Ping", {}, ""),
        ("Ping", {"Data": "\ud800"}, "a"),
    ],
)
def test_encode_refuses_injection_and_bad_fields(
    name: str, fields: dict[str, str] | list[tuple[str, str]], action_id: str
) -> None:
    with pytest.raises(UsageError):
        encode_action(name, fields, action_id)


_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_()-]{0,20}", fullmatch=True).filter(
    lambda k: k.lower() not in ("action", "actionid")
)
_values = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=50)


@settings(max_examples=100, deadline=None)
@given(name=_keys, pairs=st.lists(st.tuples(_keys, _values), max_size=8), action_id=_keys)
def test_encode_then_parse_round_trips(name: str, pairs: list[tuple[str, str]], action_id: str) -> None:
    wire = encode_action(name, pairs, action_id)
    assert parse([BANNER, wire])[1:] == [Message((("Action", name), *pairs, ("ActionID", action_id)))]
