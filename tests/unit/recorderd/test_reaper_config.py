"""The [retention] section: misspellings and dangling names stop start-up with a message naming them;
and the disk guard warns, refuses new recordings past its threshold, and never deletes anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorderd.config import ConfigError, parse_config
from recorderd.config.retention import RetentionConfig
from recorderd.retention.diskguard import FULL_ALERT, DiskGuard, Usage
from recorderd.retention.rules import fingerprint
from storage.retention import Period

LINE = '[[lines]]\nname = "general"\nnumbers = ["0668585050"]\n'


def cfg(retention: str, lines: str = LINE) -> str:
    return f"{lines}\n[retention]\n{retention}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            cfg('default = "raw"\n[retention.policies.raw]\nkeep = { dayz = 31 }'),
            "unknown key 'retention.policies.raw.keep.dayz'",
        ),
        (cfg("[retention.policies.raw]\nkeep = { days = 31, months = 1 }"), "exactly one of"),
        (cfg("[retention.policies.raw]\nkeep = { days = 0 }"), "greater than or equal to 1"),
        (
            cfg('[retention.policies.raw]\nkeep = { month_end = 1, day_one = "next_day" }'),
            "day_one applies to days",
        ),
        (cfg('default = "nope"'), "default: no policy 'nope'"),
        (cfg("", LINE + 'retention = "nope"\n'), "line 'general': retention: no policy 'nope'"),
        (
            cfg(
                '[retention.policies.t]\nkeep = { days = 6 }\ntiers = [{ store = "x", keep = { days = 1 } }]'
            ),
            "store 'x' is not under [retention.stores]",
        ),
        (cfg('[retention.stores]\nprimary = "/srv/x"'), "reserved"),
        (cfg('[retention.stores]\nsecondary = "relative/dir"'), "absolute"),
        (
            cfg('default = "p"\n[retention.policies.p]\nkeep = { years = 5 }\nanchor = "preservation"'),
            "counts from preservation",
        ),
        (cfg("fiscal_year_start_month = 13"), "less than or equal to 12"),
        (
            cfg('[retention.preservation]\ndir = "/media/x"\npolicy = "gone"'),
            "preservation.policy: no policy",
        ),
    ],
)
def test_mistakes_name_themselves(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)


def test_policies_translate_to_the_pure_model() -> None:
    c = parse_config(cfg('default = "k"\n[retention.policies.k]\nkeep = { days = 14, day_one = "next_day" }'))
    assert c.retention.policy("k").keep == Period("days", 14, "next_day")
    assert c.retention.interval_s == 600 and c.retention.fiscal_year_start_month == 4


def test_fingerprint_changes_with_what_decides_expiries_only() -> None:
    base = cfg('default = "k"\n[retention.policies.k]\nkeep = { days = 14 }\nbasis = "art. 5"')
    a = fingerprint(parse_config(base))[0]
    assert a == fingerprint(parse_config(base.replace("art. 5", "第5条")))[0]  # wording only
    assert a == fingerprint(parse_config(base.replace('"k"\n', '"k"\ninterval_s = 60\n', 1)))[0]  # not what
    assert a != fingerprint(parse_config(base.replace("days = 14", "days = 15")))[0]
    two = base + "\n[retention.policies.j]\nkeep = { days = 3 }"
    assert (
        fingerprint(parse_config(two))[0]
        != fingerprint(parse_config(two.replace(LINE, LINE + 'retention = "j"\n')))[0]
    )
    assert a != fingerprint(parse_config('timezone = "UTC"\n' + base))[0]


class Sink:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def alert(self, kind: str, *, transient: bool = False, **fields: object) -> None:
        self.log.append(("alert", kind))

    def resolve(self, kind: str, **fields: object) -> None:
        self.log.append(("resolve", kind))

    def event(self, kind: str, **fields: object) -> None:
        self.log.append(("event", kind))


def test_disk_guard_warns_then_refuses_then_recovers(tmp_path: Path) -> None:
    free = {"mb": 50_000}
    config = RetentionConfig(disk_warn_free_percent=10, disk_refuse_free_mb=512)
    sink = Sink()
    guard = DiskGuard(tmp_path, config, sink, usage=lambda _p: Usage(100_000 * 2**20, 0, free["mb"] * 2**20))
    assert (guard.check(), guard.refusal()) == ("ok", None)
    free["mb"] = 9_000  # under 10 %: a warning, recordings go on
    assert (guard.check(), guard.refusal(), sink.log) == ("low", None, [])
    free["mb"] = 500  # under 512 MB: refuse new recordings, one open alert
    assert (guard.check(), guard.refusal()) == ("full", "disk_full")
    guard.check()
    assert sink.log == [("alert", FULL_ALERT)]
    free["mb"] = 20_000
    assert (guard.check(), guard.refusal(), sink.log[-1]) == ("ok", None, ("resolve", FULL_ALERT))
    assert list(tmp_path.iterdir()) == []  # nothing touched, let alone deleted


def test_disk_guard_keeps_its_state_when_the_disk_cannot_be_read(tmp_path: Path) -> None:
    def broken(_p: Path) -> Usage:
        raise OSError("EIO")

    guard = DiskGuard(tmp_path, RetentionConfig(), Sink(), usage=broken)
    guard.state = "full"
    assert guard.check() == "full" and guard.refusal() == "disk_full"


def test_the_arithmetic_version_is_part_of_the_fingerprint() -> None:
    """Upgrading to the Civil Code reading (issue 11) changes no configuration, yet every row must be
    recomputed: the version of the arithmetic is in what the reaper compares."""
    import json

    from recorderd.retention.rules import ARITHMETIC, fingerprint

    c = parse_config(cfg('default = "k"\n[retention.policies.k]\nkeep = { days = 31 }'))
    assert json.loads(fingerprint(c)[1])["arithmetic"] == ARITHMETIC >= 2
    tiered = cfg(
        'default = "k"\n[retention.stores]\ns = "/srv/s"\n[retention.policies.k]\nkeep = { months = 6 }\n'
        'tiers = [{ store = "s", keep = { months = 6 }, counted_from = "recording" }]'
    )
    assert (
        fingerprint(parse_config(tiered))[0]
        != fingerprint(parse_config(tiered.replace("recording", "move")))[0]
    )
