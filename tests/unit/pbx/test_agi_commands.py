"""AGI command building: quoting and EXEC escaping, checked against Python models of the two
Asterisk parsers a command line goes through (res_agi ``parse_args``, then the application's
``ast_app_separate_args`` with remove_chars=1, as used by AST_STANDARD_APP_ARGS) and against
the exact lines of the captures."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.agi.protocol import exec_command, originate_spy, quote
from pbx.errors import UsageError
from support.captures import agi_captures, sidecar


def agi_parse_args(line: str) -> list[str]:
    """Model of res_agi.c parse_args: blanks split, quotes group, backslash escapes any char."""
    argv: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                argv.append([])
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            argv.append([])
            whitespace = False
        argv[-1].append(ch)
        escaped = False
    return ["".join(a) for a in argv]


def app_separate_args(data: str) -> list[str]:
    """Model of main/app.c __ast_app_separate_args(data, ',', remove_chars=1)."""
    if not data:
        return []
    args: list[str] = []
    cur: list[str] = []
    paren = bracket = 0
    quote_on = False
    i = 0
    while i < len(data):
        ch = data[i]
        if ch == "(":
            paren += 1
            cur.append(ch)
        elif ch == ")":
            paren = max(paren - 1, 0)
            cur.append(ch)
        elif ch == "[":
            bracket += 1
            cur.append(ch)
        elif ch == "]":
            bracket = max(bracket - 1, 0)
            cur.append(ch)
        elif ch == '"':
            quote_on = not quote_on  # removed
        elif ch == "\\":
            i += 1  # the next character is literal and not parsed
            cur.append(data[i])
        elif ch == "," and not (paren or quote_on or bracket):
            args.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    args.append("".join(cur))
    return args


CAPTURE_LINES = [c["sent"] for p in agi_captures() for c in sidecar(p)["commands"]]
_ORIGINATE = re.compile(
    r"EXEC Originate AudioSocket/([^/]+)/([0-9a-f-]{36})/c\(slin\),app,ChanSpy,(.+)\\\\,qEu,,,a"
)


def test_originate_spy_matches_the_capture_byte_for_byte() -> None:
    line = originate_spy("127.0.0.1:9092", uuid.UUID("3b822974-3568-4aae-8706-5af766fb4539"), "1795323180.10")
    wire = (
        b"EXEC Originate AudioSocket/127.0.0.1:9092/3b822974-3568-4aae-8706-5af766fb4539/c(slin),"
        b"app,ChanSpy,1795323180.10\\\\,qEu,,,a"
    )
    assert line.encode() == wire
    assert line in CAPTURE_LINES


def test_originate_spy_matches_every_capture() -> None:
    originates = [s for s in CAPTURE_LINES if s.startswith("EXEC Originate")]
    assert len(originates) == 6
    for sent in originates:
        m = _ORIGINATE.fullmatch(sent)
        assert m is not None, sent
        assert originate_spy(m.group(1), uuid.UUID(m.group(2)), m.group(3)) == sent


def test_originate_spy_reaches_chanspy_as_intended() -> None:
    line = originate_spy("10.0.0.5:9092", uuid.UUID(int=1), "1795323180.10")
    argv = agi_parse_args(line)
    assert argv[:2] == ["EXEC", "Originate"]
    assert len(argv) == 3
    originate = app_separate_args(argv[2])
    assert originate == [f"AudioSocket/10.0.0.5:9092/{uuid.UUID(int=1)}/c(slin)", "app", "ChanSpy",
                         "1795323180.10,qEu", "", "", "a"]  # fmt: skip
    assert app_separate_args(originate[3]) == ["1795323180.10", "qEu"]


def test_capture_lines_built_by_helpers() -> None:
    assert f"SET VARIABLE RECORDER_STATUS {quote('streaming')}" in CAPTURE_LINES
    assert f"STREAM FILE beep {quote('')}" in CAPTURE_LINES
    assert f"VERBOSE {quote('recorder: inbound call 1795323123.1')} 1" in CAPTURE_LINES
    expr = "${CALLERID(num)}|${CALLERID(name)}|${CALLERID(dnid)}|${EXTEN}|${CHANNEL(linkedid)}"
    assert f"GET FULL VARIABLE {quote(expr)}" in CAPTURE_LINES
    assert exec_command("Playback", "beep") in CAPTURE_LINES
    assert exec_command("NoSuchApp", "foo") in CAPTURE_LINES


def test_exec_examples() -> None:
    assert exec_command("Hangup") == "EXEC Hangup"
    assert exec_command("Set", "A=b c,d") == 'EXEC Set "A=b c\\\\,d"'
    assert exec_command("X", "a(b", "c") == "EXEC X a\\\\(b,c"
    for bad in ("", "Play back", 'X"', "X\\"):
        with pytest.raises(UsageError):
            exec_command(bad, "x")


_TEXT = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=40)


@given(arg=_TEXT)
def test_quote_round_trips_through_parse_args(arg: str) -> None:
    assert agi_parse_args(f"SET VARIABLE X {quote(arg)}") == ["SET", "VARIABLE", "X", arg]


@given(args=st.lists(_TEXT, min_size=1, max_size=6))
def test_exec_args_reach_the_application_verbatim(args: list[str]) -> None:
    argv = agi_parse_args(exec_command("App", *args))
    assert argv[:2] == ["EXEC", "App"]
    assert len(argv) == 3  # res_agi hands the application argv[2] only
    expected = [] if args == [""] else args  # an empty data string is no argument at all
    assert app_separate_args(argv[2]) == expected
