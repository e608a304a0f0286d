import datetime as dt

import pytest

from recorderd.config import parse_config
from recorderd.daemon.policy import CallFacts, decide, describe

JST = dt.timezone(dt.timedelta(hours=9))
CONFIG = parse_config("""
[announcements.ja]
sound = "recorderd/announce-ja"
[defaults]
inbound = "exclude"
outbound = "record"
[[lines]]
name = "general"
numbers = ["06-6858-5050"]
announcement = "ja"
hours = [{ days = ["mon","tue","wed","thu","fri"], start = "08:45", end = "17:30" }]
[[lines]]
name = "night"
numbers = ["06-6858-9999"]
hours = [{ days = ["fri"], start = "22:00", end = "06:00" }]
[[lines]]
name = "kokoro"
numbers = ["06-6858-1111"]
action = "exclude"
[[lines]]
name = "kokoro-out"
direction = "outbound"
numbers = ["301"]
action = "exclude"
""")
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=JST)


def _in(number: str, at: dt.datetime = MONDAY_10) -> tuple[str, str | None, bool]:
    d = decide(CONFIG, CallFacts("inbound", number, "0311112222"), at)
    return d.action, d.line, d.announcement is not None


def test_recorded_line_in_hours_is_announced() -> None:
    assert _in("0668585050") == ("record", "general", True)


def test_counselling_line_is_never_recorded_nor_announced_and_keeps_no_numbers() -> None:
    d = decide(CONFIG, CallFacts("inbound", "0668581111", "0311112222"), MONDAY_10)
    assert (d.action, d.announcement, d.keep_numbers) == ("exclude", None, False)


def test_unknown_inbound_number_follows_default() -> None:
    assert _in("0312345678") == ("exclude", None, False)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (dt.datetime(2026, 11, 23, 8, 44, tzinfo=JST), "exclude"),
        (dt.datetime(2026, 11, 23, 8, 45, tzinfo=JST), "record"),
        (dt.datetime(2026, 11, 23, 17, 29, 59, tzinfo=JST), "record"),
        (dt.datetime(2026, 11, 23, 17, 30, tzinfo=JST), "exclude"),
        (dt.datetime(2026, 11, 22, 10, 0, tzinfo=JST), "exclude"),  # Sunday
        # 23:59 UTC on Sunday is 08:59 JST on Monday: the window is in the configured zone.
        (dt.datetime(2026, 11, 22, 23, 59, tzinfo=dt.UTC), "record"),
    ],
)
def test_hours_are_evaluated_in_japan_time(local: dt.datetime, expected: str) -> None:
    assert _in("0668585050", local)[0] == expected


def test_overnight_window_belongs_to_the_day_it_started() -> None:
    assert _in("0668589999", dt.datetime(2026, 11, 27, 23, 0, tzinfo=JST))[0] == "record"  # Fri night
    assert _in("0668589999", dt.datetime(2026, 11, 28, 5, 59, tzinfo=JST))[0] == "record"  # Sat dawn
    assert _in("0668589999", dt.datetime(2026, 11, 28, 6, 0, tzinfo=JST))[0] == "exclude"
    assert _in("0668589999", dt.datetime(2026, 11, 28, 23, 0, tzinfo=JST))[0] == "exclude"  # Sat night


def test_outbound_matches_the_extension_and_is_never_announced() -> None:
    rec = decide(CONFIG, CallFacts("outbound", "201", "0312345678"), MONDAY_10)
    assert (rec.action, rec.announcement) == ("record", None)
    excl = decide(CONFIG, CallFacts("outbound", "301", "0312345678"), MONDAY_10)
    assert (excl.action, excl.line) == ("exclude", "kokoro-out")


def test_naive_time_is_a_bug() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(CONFIG, CallFacts("inbound", "0668585050", None), dt.datetime(2026, 1, 1))


def test_describe_lists_every_number_and_the_defaults() -> None:
    text = "\n".join(describe(CONFIG))
    assert "0668585050" in text and "RECORD" in text and "recorderd/announce-ja" in text
    assert "0668581111" in text and "EXCLUDE" in text
    assert "outbound (any other)    default: RECORD" in text
