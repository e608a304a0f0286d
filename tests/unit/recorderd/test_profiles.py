"""The five municipal profiles (config/profiles/*.toml) behave as their regulations say.

Retention tables: for each profile, recording instants at month ends, 29 February, the fiscal year
boundary, and the same instant written as 23:59 JST and as 14:59/15:00 UTC, with the expiry worked
out by hand from the article (comments). An expiry is the UTC instant of 00:00 JST after the last
day kept, i.e. 15:00 UTC on the last day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from recorderd.cli.daemon import daemon_main
from recorderd.config import Config, load_config
from recorderd.daemon.policy import CallFacts, decide
from recorderd.retention.engine import Retention
from support.installed import as_installed

PROFILES = Path(__file__).resolve().parents[3] / "config" / "profiles"
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
NOON = dt.datetime(2026, 6, 10, 3, tzinfo=dt.UTC)


def tokyo(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=TOKYO)  # type: ignore[misc]


def utc(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=dt.UTC)  # type: ignore[misc]


def due(day: str) -> dt.datetime:
    """The expiry for a last day kept ("2026-03-31" -> 15:00 UTC that day = 00:00 JST the next)."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(15), dt.UTC)


def profile(name: str) -> Config:
    return load_config(PROFILES / f"{name}.toml")


def computed(config: Config, line: str | None, started: dt.datetime, **extra: Any) -> dict[str, Any]:
    row = SimpleNamespace(
        **(
            {
                "id": "x",
                "line": line,
                "started_at": started,
                "audio_path": "a.age",
                "audio_store": None,
                "audio_deleted_at": None,
                "preserved_at": None,
            }
            | extra
        )
    )
    return Retention(config, None).compute(row)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto"])
def test_profile_passes_check_config(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon_main(["check-config", str(as_installed(PROFILES / f"{name}.toml", tmp_path))]) == 0
    assert "OK" in capsys.readouterr().out


# -- Toyonaka 第5条第2項: 概ね31日; day 1 = the recording day, last day = day 1 + 30 ----------------------
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 3, 1, 10), "2026-03-31"),
        (tokyo(2026, 1, 31, 23, 59), "2026-03-02"),  # 31 Jan + 30: February has 28 days
        (utc(2026, 1, 31, 15, 0), "2026-03-03"),  # = 00:00 JST 1 February
        (tokyo(2028, 2, 29, 12), "2028-03-30"),  # leap day is day 1
        (tokyo(2026, 3, 31, 23, 59), "2026-04-30"),
        (utc(2026, 4, 30, 14, 59), "2026-05-30"),  # = 23:59 JST 30 April
        (tokyo(2026, 12, 15, 9), "2027-01-14"),
    ],
)
def test_toyonaka_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("toyonaka"), "callcentre", started)
    assert (v["retention_policy"], v["expires_at"], v["move_at"]) == ("raw", due(last_day), None)


# -- Saitama 第4条第6項: raw to the end of the month after; output data to the end of the next FY -----
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 1, 15, 10), "2026-02-28"),
        (tokyo(2026, 1, 31, 23, 59), "2026-02-28"),
        (utc(2026, 1, 31, 15, 0), "2026-03-31"),  # = 00:00 JST 1 February: February's next month
        (tokyo(2028, 1, 29, 9), "2028-02-29"),
        (tokyo(2028, 2, 29, 9), "2028-03-31"),
        (tokyo(2026, 12, 31, 23, 59), "2027-01-31"),
        (utc(2026, 3, 31, 15, 0), "2026-05-31"),  # = 00:00 JST 1 April
    ],
)
def test_saitama_raw_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("saitama"), "callcentre", started)
    assert (v["retention_policy"], v["expires_at"]) == ("raw", due(last_day))


@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 3, 31, 23, 59), "2027-03-31"),  # FY2025 -> end of FY2026
        (utc(2026, 3, 31, 14, 59), "2027-03-31"),  # the same instant
        (utc(2026, 3, 31, 15, 0), "2028-03-31"),  # 00:00 JST 1 April: FY2026 -> end of FY2027
        (tokyo(2026, 4, 1, 9), "2028-03-31"),
        (tokyo(2027, 2, 28, 9), "2028-03-31"),  # still FY2026
        (tokyo(2028, 2, 29, 9), "2029-03-31"),  # FY2027
    ],
)
def test_saitama_output_data_counts_fiscal_years_from_the_recording(
    started: dt.datetime, last_day: str
) -> None:
    preserved = started + dt.timedelta(days=20)  # the output is made later; the rule counts from recording
    v = computed(profile("saitama"), "callcentre", started, preserved_at=preserved)
    assert (v["retention_policy"], v["expires_at"]) == ("output", due(last_day))


# -- Osaka 第6条: 6 months here, then 6 months in secondary storage (counted from the move) ---------
@pytest.mark.parametrize(
    ("started", "move_last_day", "last_day"),
    [
        (tokyo(2026, 1, 10, 9), "2026-07-09", "2027-01-09"),
        (tokyo(2026, 8, 31, 12), "2027-02-28", "2027-08-31"),  # no 31 Feb; the tier starts 1 March
        (tokyo(2027, 8, 31, 12), "2028-02-29", "2028-08-31"),  # leap February
        (tokyo(2026, 3, 31, 23, 59), "2026-09-30", "2027-03-31"),  # no 31 September
        (utc(2026, 3, 31, 15, 0), "2026-09-30", "2027-03-31"),  # 00:00 JST 1 April: 1 Oct - 1 = 30 Sep
        (tokyo(2028, 2, 29, 10), "2028-08-28", "2029-02-28"),  # 29 Aug starts the tier; no 29 Feb 2029
        (tokyo(2026, 12, 31, 9), "2027-06-30", "2027-12-31"),
    ],
)
def test_osaka_tiers(started: dt.datetime, move_last_day: str, last_day: str) -> None:
    v = computed(profile("osaka-water"), "main", started)
    assert (v["retention_policy"], v["move_at"], v["expires_at"]) == (
        "standard",
        due(move_last_day),
        due(last_day),
    )
    moved = computed(profile("osaka-water"), "main", started, audio_store="secondary")
    assert (moved["move_at"], moved["expires_at"]) == (None, due(last_day))


def test_osaka_external_preservation_is_five_years_from_preservation() -> None:
    v = computed(profile("osaka-water"), "credit", tokyo(2026, 1, 10, 9), preserved_at=tokyo(2026, 5, 20, 10))
    assert (v["retention_policy"], v["expires_at"], v["move_at"]) == ("external", due("2031-05-19"), None)
    leap = computed(
        profile("osaka-water"), "credit", tokyo(2028, 1, 10, 9), preserved_at=tokyo(2028, 2, 29, 23)
    )
    assert leap["expires_at"] == due("2033-02-28")  # no 29 February 2033


# -- Kawasaki 第5条第1項: 翌日から起算して14日後まで: day 1 = the next day, last day = the call + 14 ---------
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 4, 1, 10), "2026-04-15"),
        (tokyo(2026, 1, 31, 23, 59), "2026-02-14"),
        (utc(2026, 1, 31, 15, 0), "2026-02-15"),  # = 00:00 JST 1 February
        (tokyo(2028, 2, 28, 12), "2028-03-13"),  # 29 February is day 1
        (tokyo(2026, 2, 28, 23, 59), "2026-03-14"),
        (tokyo(2026, 12, 25, 9), "2027-01-08"),
        (tokyo(2026, 3, 31, 23, 59), "2026-04-14"),
    ],
)
def test_kawasaki_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("kawasaki"), "ward-info", started)
    assert (v["retention_policy"], v["expires_at"], v["metadata_expires_at"]) == (
        "raw",
        due(last_day),
        due(last_day),
    )


# -- Matsumoto 第7条第5項: 記録された日から3か月: the day before the same date 3 months on ------------
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 1, 15, 10), "2026-04-14"),
        (tokyo(2026, 11, 30, 10), "2027-02-28"),  # no 30 February: the month's last day
        (tokyo(2027, 11, 30, 10), "2028-02-29"),
        (tokyo(2026, 12, 1, 10), "2027-02-28"),
        (tokyo(2028, 2, 29, 10), "2028-05-28"),
        (tokyo(2026, 3, 31, 23, 59), "2026-06-30"),  # no 31 June
        (utc(2026, 3, 31, 15, 0), "2026-06-30"),  # 00:00 JST 1 April: 1 July - 1
        (tokyo(2026, 5, 31, 10), "2026-08-30"),
    ],
)
def test_matsumoto_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("matsumoto"), None, started)  # calls on no named line: the default
    assert (v["retention_policy"], v["expires_at"], v["metadata_expires_at"]) == (
        "raw",
        due(last_day),
        due(last_day),
    )


# -- recorded and excluded lines ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "number", "line"),
    [
        ("toyonaka", "06-6858-5050", "callcentre"),
        ("toyonaka", "０６－６８５８－２５２５", "cityhall-main"),
        ("osaka-water", "06-6458-1132", "main"),
        ("osaka-water", "0664587160", "credit"),
        ("osaka-water", "+81664587211", "account"),
        ("osaka-water", "06-6458-7225", "fax-group"),
        ("kawasaki", "044-200-3939", "thankyou-call"),
        ("kawasaki", "044-200-2111", "cityhall-main"),
        *(
            ("kawasaki", n, "ward-info")
            for n in (
                "044-201-3113",
                "044-271-0130",
                "044-322-1960",
                "044-556-6666",
                "044-744-3113",
                "044-861-3113",
                "044-856-3113",
                "044-935-3113",
                "044-965-5100",
            )
        ),
        ("saitama", "048-835-3156", "callcentre"),
        ("matsumoto", "0263-34-3000", None),  # any external number: recorded by default
    ],
)
def test_recorded_lines_are_announced(name: str, number: str, line: str | None) -> None:
    d = decide(profile(name), CallFacts("inbound", number, "0311112222"), NOON)
    assert (d.action, d.line) == ("record", line)
    assert d.announcement is not None and d.announcement.sound == "recorderd/announce-ja"


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("toyonaka", "06-6858-1111"),
        ("osaka-water", "06-6458-0000"),
        ("kawasaki", "044-200-0000"),
        ("saitama", "048-000-0000"),
        ("matsumoto", "0263-00-0000"),
    ],
)
def test_other_and_counselling_lines_are_excluded_without_numbers(name: str, number: str) -> None:
    d = decide(profile(name), CallFacts("inbound", number, "0311112222"), NOON)
    assert (d.action, d.announcement, d.keep_numbers) == ("exclude", None, False)


def test_matsumoto_records_outbound_calls_without_announcement() -> None:
    d = decide(profile("matsumoto"), CallFacts("outbound", "201", "0312345678"), NOON)
    assert (d.action, d.announcement) == ("record", None)
    assert computed(profile("matsumoto"), None, tokyo(2026, 1, 15, 10))["expires_at"] == due("2026-04-14")


def test_only_saitama_and_osaka_may_preserve_and_only_osaka_tiers() -> None:
    kinds = {n: profile(n).retention for n in ("toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto")}
    assert {n for n, r in kinds.items() if r.preservation} == {
        "saitama",
        "osaka-water",
    }  # Kawasaki 5-5: no copies
    assert {n for n, r in kinds.items() if r.stores} == {"osaka-water"}
