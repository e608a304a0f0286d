"""``channels`` (issue 15 part 3): mono by default, "stereo" globally or per line, nothing else."""

import datetime as dt
import uuid

import pytest

from pbx.agi.protocol import originate_spy
from recorderd.config import ConfigError, parse_config
from recorderd.daemon.policy import CallFacts, decide, describe

JST = dt.timezone(dt.timedelta(hours=9))
AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=JST)
LINES = """
[defaults]
inbound = "record"
outbound = "record"
[[lines]]
name = "disputes"
numbers = ["06-6858-7070"]
channels = "stereo"
[[lines]]
name = "general"
numbers = ["06-6858-5050"]
[[lines]]
name = "plain"
numbers = ["06-6858-6060"]
channels = "mono"
"""


def _channels(text: str, number: str, direction: str = "inbound") -> str:
    facts = (
        CallFacts("inbound", number, "0311112222")
        if direction == "inbound"
        else CallFacts("outbound", number, "0311112222")
    )
    return decide(parse_config(text), facts, AT).channels


def test_mono_is_the_default() -> None:
    assert parse_config("").channels == "mono"
    assert _channels(LINES, "0668585050") == "mono"
    assert _channels(LINES, "0669999999") == "mono"  # the defaults


def test_a_line_may_ask_for_stereo_and_the_global_setting_covers_the_rest() -> None:
    assert _channels(LINES, "0668587070") == "stereo"
    stereo = 'channels = "stereo"\n' + LINES
    assert _channels(stereo, "0668585050") == "stereo"  # the line says nothing: the global value
    assert _channels(stereo, "0669999999") == "stereo"  # no line: the defaults, the global value
    assert _channels(stereo, "201", "outbound") == "stereo"
    assert _channels(stereo, "0668586060") == "mono"  # a line's own word wins


BAD = ['channels = "Stereo"\n', "channels = 2\n", 'channels = "left"\n',
       '[[lines]]\nname = "x"\nnumbers = ["0668581111"]\nchannels = "both"\n']  # fmt: skip


@pytest.mark.parametrize("text", BAD)
def test_anything_else_is_refused_with_the_key_named(text: str) -> None:
    with pytest.raises(ConfigError, match="channels"):
        parse_config(text)


def test_check_config_says_which_lines_are_stereo() -> None:
    text = "\n".join(describe(parse_config(LINES)))
    assert "0668587070     line 'disputes': RECORD, STEREO" in text
    assert "line 'general': RECORD\n" in text + "\n" and "'plain': RECORD\n" in text + "\n"
    whole = "\n".join(describe(parse_config('channels = "stereo"\n' + LINES)))
    assert "default: RECORD, STEREO" in whole and "'plain': RECORD\n" in whole + "\n"


def test_stereo_spy_adds_chanspy_d() -> None:
    u = uuid.UUID("3b822974-3568-4aae-8706-5af766fb4539")
    assert originate_spy("127.0.0.1:9092", u, "17.1", stereo=True).endswith("ChanSpy,17.1\\\\,qEuD,,,a")
    assert originate_spy("127.0.0.1:9092", u, "17.1").endswith("ChanSpy,17.1\\\\,qEu,,,a")
