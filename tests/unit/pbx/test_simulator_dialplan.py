"""The simulator's own ports of res_agi's and the dialplan's string parsers."""

from __future__ import annotations

import pytest

from pbx.simulator.dialplan import agi_args, app_args, substitute

ORIGINATE = (
    "EXEC Originate AudioSocket/127.0.0.1:9092/3b822974-3568-4aae-8706-5af766fb4539/c(slin)"
    ",app,ChanSpy,1795323180.10\\\\,qEu,,,a"
)  # exactly the bytes of agi/recording-sequence-sip.txt


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ('STREAM FILE beep ""', ["STREAM", "FILE", "beep", ""]),  # "" is an argument (argc 4)
        ("STREAM FILE beep", ["STREAM", "FILE", "beep"]),
        ('SET VARIABLE RECORDER_STATUS "streaming"', ["SET", "VARIABLE", "RECORDER_STATUS", "streaming"]),
        ("SET VARIABLE X two words", ["SET", "VARIABLE", "X", "two", "words"]),
        (
            'VERBOSE "recorder: inbound call 1795323123.1" 1',
            ["VERBOSE", "recorder: inbound call 1795323123.1", "1"],
        ),
        ('GET FULL VARIABLE "${A}|${B}"', ["GET", "FULL", "VARIABLE", "${A}|${B}"]),
        ("A\tB  C ", ["A", "B", "C"]),
        ('X "a \\"quoted\\" b"', ["X", 'a "quoted" b']),
        ("X a\\ b", ["X", "a b"]),
        ("", []),
    ],
)
def test_agi_args_like_res_agi(line: str, args: list[str]) -> None:
    assert agi_args(line) == args


def test_agi_layer_eats_one_backslash_and_the_app_layer_splits() -> None:
    args = agi_args(ORIGINATE)
    assert args[:2] == ["EXEC", "Originate"]
    assert len(args) == 3
    assert args[2].endswith("1795323180.10\\,qEu,,,a")
    fields = app_args(args[2], 7)
    assert fields == [
        "AudioSocket/127.0.0.1:9092/3b822974-3568-4aae-8706-5af766fb4539/c(slin)",
        "app",
        "ChanSpy",
        "1795323180.10,qEu",  # what ChanSpy receives
        "",
        "",
        "a",
    ]
    assert app_args(fields[3]) == ["1795323180.10", "qEu"]


def test_app_args_details() -> None:
    assert app_args("a,b(c,d),e") == ["a", "b(c,d)", "e"]  # no split inside parentheses
    assert app_args('a,"b,c",d') == ["a", "b,c", "d"]  # nor inside quotes, which go away
    assert app_args("a,b,") == ["a", "b", ""]
    assert app_args("a,b,c,d", 3) == ["a", "b", "c,d"]  # the last field keeps the rest
    assert app_args("") == []
    # A single backslash on the AGI wire is eaten by the AGI layer: ChanSpy gets "uid" only.
    single = agi_args("EXEC Originate X/y,app,ChanSpy,1.2\\,qEu,,,a")[2]
    assert app_args(single, 7)[3] == "1.2"


def test_substitute() -> None:
    values = {"A": "1", "B": "hello", "CALLERID(num)": "0311112222", "X": "B"}
    read = values.get
    assert substitute("${A}|${B}|${NOPE}", read) == "1|hello|"
    assert substitute("${CALLERID(num)}", read) == "0311112222"
    assert substitute("${${X}}", read) == "hello"  # nested
    assert substitute("${B:1:3}|${B:-2}", read) == "ell|lo"
    assert substitute("no vars", read) == "no vars"
    assert substitute("${A", read) == "${A"  # unterminated: copied through
