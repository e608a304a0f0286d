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
from recorderd.records.export import keep_until
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


# Every table below follows 民法第138条〜第143条 unless the article's own words say otherwise:
# art. 140, a period that does not start at 00:00 does not count its first day (day 1 = the next day;
# exactly 00:00 JST counts that day); art. 143, months and years run by the calendar and end the day
# before the corresponding day, or at the end of the month that has none; art. 141, the period ends at
# the end of its last day (due at 00:00 JST the next day = 15:00 UTC of the last day).


# -- Toyonaka 第5条第2項: 概ね31日 (no words on day 1: art. 140): last day = the recording day + 31 ------
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 3, 1, 10), "2026-04-01"),  # day 1 = 2 Mar; day 31 = 1 Apr
        (tokyo(2026, 1, 31, 23, 59), "2026-03-03"),  # day 1 = 1 Feb; 28 February days + 3 March days
        (utc(2026, 1, 31, 14, 59), "2026-03-03"),  # the same instant in UTC
        (utc(2026, 1, 31, 15, 0), "2026-03-03"),  # = 00:00 JST 1 Feb: art. 140 proviso, 1 Feb is day 1
        (tokyo(2026, 2, 28, 10), "2026-03-31"),  # month end: day 1 = 1 Mar, day 31 = 31 Mar
        (tokyo(2028, 2, 29, 12), "2028-03-31"),  # leap day not counted: day 1 = 1 Mar
        (tokyo(2028, 2, 28, 12), "2028-03-30"),  # day 1 = 29 Feb 2028 (counted), day 31 = 30 Mar
        (tokyo(2026, 3, 31, 23, 59), "2026-05-01"),  # FY boundary: day 1 = 1 Apr, day 31 = 1 May
        (utc(2026, 4, 30, 14, 59), "2026-05-31"),  # = 23:59 JST 30 April: day 1 = 1 May
        (tokyo(2026, 12, 15, 9), "2027-01-15"),  # day 1 = 16 Dec, 16 days of Dec + 15 of Jan
    ],
)
def test_toyonaka_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("toyonaka"), "callcentre", started)
    assert (v["retention_policy"], v["expires_at"], v["move_at"]) == ("raw", due(last_day), None)


# -- Saitama 第4条第6項: raw to the end of the month after; output data to the end of the next FY -----
# "記録した日の属する月の翌月末": the words name the recording day's month; no day is left out.
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 1, 15, 10), "2026-02-28"),
        (tokyo(2026, 1, 31, 23, 59), "2026-02-28"),  # January's next month
        (utc(2026, 1, 31, 14, 59), "2026-02-28"),  # the same instant
        (utc(2026, 1, 31, 15, 0), "2026-03-31"),  # = 00:00 JST 1 February: February's next month
        (tokyo(2028, 1, 29, 9), "2028-02-29"),
        (tokyo(2028, 2, 29, 9), "2028-03-31"),
        (tokyo(2026, 12, 31, 23, 59), "2027-01-31"),
        (tokyo(2026, 3, 31, 23, 59), "2026-04-30"),  # FY boundary: March's next month
        (utc(2026, 3, 31, 15, 0), "2026-05-31"),  # = 00:00 JST 1 April
    ],
)
def test_saitama_raw_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("saitama"), "callcentre", started)
    assert (v["retention_policy"], v["expires_at"]) == ("raw", due(last_day))


# 第2号 出力データ: "記録した日の属する年度の翌年度末" where 記録した日 is the day the output data is made.
@pytest.mark.parametrize(
    ("made", "last_day"),
    [
        (tokyo(2026, 3, 31, 23, 59), "2027-03-31"),  # made in FY2025 -> end of FY2026
        (utc(2026, 3, 31, 14, 59), "2027-03-31"),  # the same instant
        (utc(2026, 3, 31, 15, 0), "2028-03-31"),  # 00:00 JST 1 April: FY2026 -> end of FY2027
        (tokyo(2026, 4, 1, 9), "2028-03-31"),
        (tokyo(2027, 2, 28, 9), "2028-03-31"),  # still FY2026
        (tokyo(2028, 2, 29, 9), "2029-03-31"),  # FY2027
    ],
)
def test_saitama_output_data_counts_from_the_day_it_is_made(made: dt.datetime, last_day: str) -> None:
    started = made - dt.timedelta(days=20)  # the call was recorded earlier
    config = profile("saitama")
    assert Retention(config, None).copy_expiry(started, made) == due(last_day)  # type: ignore[arg-type]
    # The raw recording keeps its own date (第1号): the end of the month after its recording month.
    v = computed(config, "callcentre", started, preserved_at=made)
    local = started.astimezone(TOKYO).date()
    nxt = (local.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    raw_last = (nxt + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    assert (v["retention_policy"], v["expires_at"]) == ("raw", due(raw_last.isoformat()))


@pytest.mark.parametrize(
    ("made", "last_day"),
    [
        (tokyo(2026, 3, 31, 23, 59), "2027-03-31"),  # an export made in FY2025
        (utc(2026, 3, 31, 15, 0), "2028-03-31"),  # 00:00 JST 1 April: FY2026
    ],
)
def test_saitama_export_copies_count_from_the_day_they_are_made(made: dt.datetime, last_day: str) -> None:
    assert keep_until(profile("saitama").exports, made, TOKYO) == dt.date.fromisoformat(last_day)


# -- Osaka 第6条第1項: moved at 6 months, deleted at 12 months, both counted from the recording ------
@pytest.mark.parametrize(
    ("started", "move_last_day", "last_day"),
    [
        (tokyo(2026, 1, 10, 9), "2026-07-10", "2027-01-10"),  # day 1 = 11 Jan; the day before 11 Jul / 11 Jan
        (tokyo(2026, 1, 31, 10), "2026-07-31", "2027-01-31"),  # day 1 = 1 Feb: whole months
        (tokyo(2026, 8, 29, 10), "2027-02-28", "2027-08-29"),  # day 1 = 30 Aug: no 30 Feb -> end of Feb
        (tokyo(2026, 8, 31, 12), "2027-02-28", "2027-08-31"),  # day 1 = 1 Sep
        (tokyo(2027, 8, 31, 12), "2028-02-29", "2028-08-31"),  # leap February
        (tokyo(2026, 3, 31, 23, 59), "2026-09-30", "2027-03-31"),  # day 1 = 1 Apr
        (utc(2026, 3, 31, 14, 59), "2026-09-30", "2027-03-31"),  # the same instant (23:59 JST)
        (utc(2026, 3, 31, 15, 0), "2026-09-30", "2027-03-31"),  # 00:00 JST 1 April: 1 Apr is day 1
        (tokyo(2028, 2, 29, 10), "2028-08-31", "2029-02-28"),  # day 1 = 1 Mar 2028
        (tokyo(2026, 12, 31, 9), "2027-06-30", "2027-12-31"),  # day 1 = 1 Jan 2027
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
    config = profile("osaka-water")
    ret = Retention(config, None)  # type: ignore[arg-type]
    started, made = tokyo(2026, 1, 10, 9), tokyo(2026, 5, 20, 10)
    # Preserved 10:00 on 20 May 2026: day 1 = 21 May; 5 years end the day before 21 May 2031.
    assert ret.copy_expiry(started, made) == due("2031-05-20")
    # Preserved 23:00 on 29 Feb 2028: day 1 = 1 Mar 2028; 5 years end 28 Feb 2033.
    assert ret.copy_expiry(tokyo(2028, 1, 10, 9), tokyo(2028, 2, 29, 23)) == due("2033-02-28")
    # The device copy leaves the system after its own 12 months (第6条第1項), preserved or not.
    v = computed(config, "credit", started, preserved_at=made)
    assert (v["retention_policy"], v["move_at"], v["expires_at"]) == (
        "standard",
        due("2026-07-10"),
        due("2027-01-10"),
    )


# -- Kawasaki 第5条第1項: 翌日から起算して14日後まで: the words fix day 1 = the next day, always --------
# (The other reading, "14日後" as the day 14 days after day 1, would keep one day more: see
# docs/retention.md; the profile follows the usual reading, the recording day + 14.)
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 4, 1, 10), "2026-04-15"),
        (tokyo(2026, 1, 31, 23, 59), "2026-02-14"),
        (utc(2026, 1, 31, 15, 0), "2026-02-15"),  # = 00:00 JST 1 February: the words still say 翌日
        (tokyo(2028, 2, 28, 12), "2028-03-13"),  # 29 February is day 1
        (tokyo(2028, 2, 29, 12), "2028-03-14"),  # day 1 = 1 March
        (tokyo(2026, 2, 28, 23, 59), "2026-03-14"),
        (tokyo(2026, 12, 25, 9), "2027-01-08"),
        (tokyo(2026, 3, 31, 23, 59), "2026-04-14"),
        (utc(2026, 3, 31, 14, 59), "2026-04-14"),  # the same instant
    ],
)
def test_kawasaki_retention(started: dt.datetime, last_day: str) -> None:
    v = computed(profile("kawasaki"), "ward-info", started)
    assert (v["retention_policy"], v["expires_at"], v["metadata_expires_at"]) == (
        "raw",
        due(last_day),
        due(last_day),
    )


# -- Matsumoto 第7条第5項: 記録された日から3か月 ("日から", not "起算して": art. 140 applies) ----------
@pytest.mark.parametrize(
    ("started", "last_day"),
    [
        (tokyo(2026, 1, 15, 10), "2026-04-15"),  # day 1 = 16 Jan; the day before 16 Apr
        (tokyo(2026, 1, 31, 10), "2026-04-30"),  # day 1 = 1 Feb: whole months
        (tokyo(2025, 11, 29, 10), "2026-02-28"),  # day 1 = 30 Nov: no 30 Feb -> end of February
        (tokyo(2026, 11, 30, 10), "2027-02-28"),  # day 1 = 1 Dec
        (tokyo(2027, 11, 30, 10), "2028-02-29"),  # into a leap February
        (tokyo(2026, 12, 1, 10), "2027-03-01"),  # day 1 = 2 Dec; the day before 2 Mar
        (tokyo(2028, 2, 29, 10), "2028-05-31"),  # day 1 = 1 Mar 2028
        (tokyo(2026, 3, 31, 23, 59), "2026-06-30"),  # day 1 = 1 Apr
        (utc(2026, 3, 31, 14, 59), "2026-06-30"),  # the same instant
        (utc(2026, 3, 31, 15, 0), "2026-06-30"),  # 00:00 JST 1 April: 1 Apr is day 1
        (tokyo(2026, 5, 31, 10), "2026-08-31"),  # day 1 = 1 Jun
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
    assert computed(profile("matsumoto"), None, tokyo(2026, 1, 15, 10))["expires_at"] == due("2026-04-15")


def test_only_saitama_and_osaka_may_preserve_and_only_osaka_tiers() -> None:
    kinds = {n: profile(n).retention for n in ("toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto")}
    assert {n for n, r in kinds.items() if r.preservation} == {
        "saitama",
        "osaka-water",
    }  # Kawasaki 5-5: no copies
    assert {n for n, r in kinds.items() if r.stores} == {"osaka-water"}
