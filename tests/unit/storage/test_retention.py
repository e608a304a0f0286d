"""Retention arithmetic as tables. Every expectation was worked out by hand from the rule's words
(docs/retention.md), not by running the code: day 1, the last day, and the instant it is due
(00:00 Asia/Tokyo of the day after the last day = 15:00 UTC of the last day)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from storage.retention import (
    Period,
    Policy,
    Tier,
    add_months,
    describe_period,
    describe_policy,
    expiry,
    fiscal_year,
    last_day,
    schedule,
)

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
D = dt.date


def utc(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=dt.UTC)  # type: ignore[misc]


def tokyo(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=TOKYO)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2026, 1, 31), 1, None),  # no 31 February
        (D(2026, 1, 28), 1, D(2026, 2, 28)),
        (D(2028, 1, 29), 1, D(2028, 2, 29)),  # leap year
        (D(2026, 1, 29), 1, None),
        (D(2026, 11, 30), 3, None),  # no 30 February
        (D(2026, 12, 15), 3, D(2027, 3, 15)),  # across the year
        (D(2028, 2, 29), 12, None),  # no 29 February 2029
        (D(2026, 5, 30), -1, D(2026, 4, 30)),
    ],
)
def test_add_months(day: dt.date, months: int, expected: dt.date | None) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("period", "first", "expected"),
    [
        # days: day 1 counts, so N days end on first + N - 1
        (Period("days", 31), D(2026, 3, 1), D(2026, 3, 31)),
        (Period("days", 31), D(2026, 2, 1), D(2026, 3, 3)),  # 28 days of February + 3
        (Period("days", 31), D(2028, 2, 1), D(2028, 3, 2)),  # leap February: 29 + 2
        (Period("days", 1), D(2026, 6, 10), D(2026, 6, 10)),
        (Period("days", 14), D(2026, 12, 25), D(2027, 1, 7)),
        # months: the day before the corresponding day; the month's end when there is none
        (Period("months", 3), D(2026, 1, 15), D(2026, 4, 14)),
        (Period("months", 3), D(2026, 12, 1), D(2027, 2, 28)),
        (Period("months", 3), D(2026, 11, 30), D(2027, 2, 28)),
        (Period("months", 3), D(2027, 11, 30), D(2028, 2, 29)),  # into a leap February
        (Period("months", 1), D(2026, 1, 31), D(2026, 2, 28)),
        (Period("months", 1), D(2026, 3, 31), D(2026, 4, 30)),
        (Period("months", 1), D(2026, 3, 30), D(2026, 4, 29)),
        (Period("months", 6), D(2026, 8, 31), D(2027, 2, 28)),
        (Period("months", 6), D(2027, 8, 31), D(2028, 2, 29)),
        # years: 12 N months
        (Period("years", 5), D(2028, 2, 29), D(2033, 2, 28)),
        (Period("years", 5), D(2026, 4, 1), D(2031, 3, 31)),
        (Period("years", 1), D(2026, 1, 1), D(2026, 12, 31)),
        # month_end N: the last day of the Nth month after day 1's month
        (Period("month_end", 1), D(2026, 1, 15), D(2026, 2, 28)),
        (Period("month_end", 1), D(2026, 1, 31), D(2026, 2, 28)),
        (Period("month_end", 1), D(2028, 1, 1), D(2028, 2, 29)),
        (Period("month_end", 1), D(2026, 12, 31), D(2027, 1, 31)),
        (Period("month_end", 0), D(2026, 2, 1), D(2026, 2, 28)),
        # fiscal_year_end N (April start): end of March of FY(day 1) + N + 1
        (Period("fiscal_year_end", 1), D(2026, 3, 31), D(2027, 3, 31)),  # FY2025 -> end of FY2026
        (Period("fiscal_year_end", 1), D(2026, 4, 1), D(2028, 3, 31)),  # FY2026 -> end of FY2027
        (Period("fiscal_year_end", 1), D(2027, 1, 10), D(2028, 3, 31)),  # still FY2026
        (Period("fiscal_year_end", 0), D(2026, 4, 1), D(2027, 3, 31)),
    ],
)
def test_last_day(period: Period, first: dt.date, expected: dt.date) -> None:
    assert last_day(period, first) == expected


def test_fiscal_year_start_is_configurable() -> None:
    assert fiscal_year(D(2026, 3, 31), 4) == 2025 and fiscal_year(D(2026, 4, 1), 4) == 2026
    assert fiscal_year(D(2026, 12, 31), 1) == 2026
    # A January fiscal year is the calendar year; an October one ends in September.
    assert last_day(Period("fiscal_year_end", 1), D(2026, 6, 1), 1) == D(2027, 12, 31)
    assert last_day(Period("fiscal_year_end", 1), D(2026, 9, 30), 10) == D(2027, 9, 30)
    assert last_day(Period("fiscal_year_end", 1), D(2026, 10, 1), 10) == D(2028, 9, 30)


@pytest.mark.parametrize(
    ("started", "period", "due"),
    [
        # 23:59 JST on 31 March is 14:59 UTC the same day: FY2025.
        (utc(2026, 3, 31, 14, 59), Period("fiscal_year_end", 1), utc(2027, 3, 31, 15)),
        # One minute later: 00:00 JST on 1 April, though still 31 March in UTC: FY2026.
        (utc(2026, 3, 31, 15, 0), Period("fiscal_year_end", 1), utc(2028, 3, 31, 15)),
        (tokyo(2026, 4, 1, 0, 0), Period("fiscal_year_end", 1), utc(2028, 3, 31, 15)),
        # 民法第140条: 23:59 JST on 31 Jan is not 00:00, so 31 Jan is not counted: day 1 = 1 Feb,
        # day 31 = 3 Mar (28 February days + 3); due 00:00 JST 4 Mar = 15:00 UTC 3 Mar.
        (tokyo(2026, 1, 31, 23, 59), Period("days", 31), utc(2026, 3, 3, 15)),
        (utc(2026, 1, 31, 14, 59), Period("days", 31), utc(2026, 3, 3, 15)),  # the same instant
        # 15:00 UTC = exactly 00:00 JST 1 Feb: the proviso of art. 140 counts 1 Feb as day 1: 3 Mar.
        (utc(2026, 1, 31, 15, 0), Period("days", 31), utc(2026, 3, 3, 15)),
        # One second later it is not 00:00 any more: day 1 = 2 Feb, day 31 = 4 Mar.
        (utc(2026, 1, 31, 15, 0, 1), Period("days", 31), utc(2026, 3, 4, 15)),
        # "same_day" (a regulation's "…日から起算して"): 31 Jan is day 1, day 31 = 2 Mar.
        (tokyo(2026, 1, 31, 23, 59), Period("days", 31, "same_day"), utc(2026, 3, 2, 15)),
        # Months (civil): 10:00 on 29 Feb 2028 -> day 1 = 1 Mar -> 3 months end 31 May 2028.
        (tokyo(2028, 2, 29, 10), Period("months", 3), utc(2028, 5, 31, 15)),
        # 10:00 on 30 Nov 2026 -> day 1 = 1 Dec -> 3 months end 28 Feb 2027.
        (tokyo(2026, 11, 30, 10), Period("months", 3), utc(2027, 2, 28, 15)),
        # Kawasaki: day 1 is the next day; 1 April -> kept through 15 April.
        (tokyo(2026, 4, 1, 10), Period("days", 14, "next_day"), utc(2026, 4, 15, 15)),
        (tokyo(2026, 2, 28, 23, 30), Period("days", 14, "next_day"), utc(2026, 3, 14, 15)),
        (tokyo(2028, 2, 28, 12), Period("days", 14, "next_day"), utc(2028, 3, 13, 15)),  # 29 Feb counts
        # Saitama raw: the end of the month after the recording month.
        (tokyo(2026, 1, 31, 23, 59), Period("month_end", 1), utc(2026, 2, 28, 15)),
        (tokyo(2026, 2, 1, 0, 0), Period("month_end", 1), utc(2026, 3, 31, 15)),
    ],
)
def test_expiry_instant(started: dt.datetime, period: Period, due: dt.datetime) -> None:
    assert expiry(period, started, TOKYO) == due


def test_tiers_chain_from_the_day_after_the_previous_tier() -> None:
    chained = Policy("standard", Period("months", 6), (Tier("secondary", Period("months", 6)),))
    # 09:00 on 10 Jan: day 1 = 11 Jan; 6 months end 10 Jul (the day before 11 Jul). The tier starts at
    # 00:00 on 11 Jul (that day counts: art. 140 proviso) and ends 10 Jan 2027.
    s = schedule(chained, tokyo(2026, 1, 10, 9), TOKYO)
    assert [(st.store, st.last_day) for st in s.stages] == [
        ("primary", D(2026, 7, 10)),
        ("secondary", D(2027, 1, 10)),
    ]
    assert s.until_for("primary") == utc(2026, 7, 10, 15)  # moves at 00:00 JST on 11 July
    assert s.expires_at == utc(2027, 1, 10, 15)
    assert s.move_after("primary") == s.stages[1] and s.move_after("secondary") is None
    # 29 August: day 1 = 30 Aug; no 30 Feb, so the first 6 months end 28 Feb 2027; the tier's day 1
    # is 1 March and it ends 31 August 2027.
    s = schedule(chained, tokyo(2026, 8, 29, 12), TOKYO)
    assert [st.last_day for st in s.stages] == [D(2027, 2, 28), D(2027, 8, 31)]


def test_tiers_counted_from_the_anchor_end_where_the_whole_period_ends() -> None:
    osaka = Policy(
        "standard", Period("months", 6), (Tier("secondary", Period("months", 6), counted_from="anchor"),)
    )
    # 29 August 2026 10:00: day 1 = 30 Aug. 6 months: no 30 Feb -> 28 Feb 2027 (move at 00:00 1 Mar).
    # 12 months from the same day 1: the day before 30 Aug 2027 = 29 Aug 2027 (chained: 31 Aug).
    s = schedule(osaka, tokyo(2026, 8, 29, 10), TOKYO)
    assert [st.last_day for st in s.stages] == [D(2027, 2, 28), D(2027, 8, 29)]
    # 29 Feb 2028 10:00: day 1 = 1 Mar 2028 -> 31 Aug 2028, then 28 Feb 2029 (the day before 1 Mar).
    s = schedule(osaka, tokyo(2028, 2, 29, 10), TOKYO)
    assert [st.last_day for st in s.stages] == [D(2028, 8, 31), D(2029, 2, 28)]
    with pytest.raises(ValueError, match="same unit"):
        Policy("x", Period("days", 10), (Tier("s", Period("months", 1), counted_from="anchor"),))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        expiry(Period("days", 1), dt.datetime(2026, 1, 1), TOKYO)


@pytest.mark.parametrize(("unit", "count"), [("days", 0), ("months", 0), ("weeks", 1), ("month_end", -1)])
def test_bad_periods_are_refused(unit: str, count: int) -> None:
    with pytest.raises(ValueError, match=r"unknown period unit|must be >="):
        Period(unit, count)  # type: ignore[arg-type]


def test_descriptions_read_as_the_rule() -> None:
    assert (
        describe_period(Period("days", 31)) == "31 days from the recording, its day not counted (民法第140条)"
    )
    assert (
        describe_period(Period("days", 14, "next_day"))
        == "14 days from the recording, counted from the next day"
    )
    assert (
        describe_period(Period("month_end", 1)) == "to the end of the month after the month of the recording"
    )
    assert describe_period(Period("fiscal_year_end", 1), "the preservation") == (
        "to the end of the fiscal year after the fiscal year of the preservation"
    )
    chained = Policy("standard", Period("months", 6), (Tier("secondary", Period("months", 6)),))
    assert describe_policy(chained) == (
        "6 months from the recording, its day not counted (民法第140条), "
        "then 6 months from the move at 00:00, its day counted in secondary"
    )
    osaka = Policy(
        "standard", Period("months", 6), (Tier("secondary", Period("months", 6), counted_from="anchor"),)
    )
    assert describe_policy(osaka) == (
        "6 months from the recording, its day not counted (民法第140条), "
        "then in secondary until 12 months from the recording, its day not counted (民法第140条)"
    )
