"""Retention arithmetic: when a recording moves between stores and when it must be gone.

Pure functions: no database, no clock, no configuration file. The instant a recording started (aware,
any zone) and the municipality's zone go in; aware UTC instants come out. Every rule is a statement
about *local calendar days* in that zone, because the regulations are (see docs/retention.md):

* a period names its **last day**: the recording is kept through the whole of that local day and
  is due at 00:00 of the next local day (the ``expiry``; 民法第141条: a period ends at the end of
  its last day);
* ``days`` / ``months`` / ``years`` count from **day 1**. By default (``day_one = "civil"``, 民法
  第140条) the day of the anchor is not counted unless the anchor is exactly 00:00 local: a call
  at 10:00 on 1 March has day 1 = 2 March. A regulation's own words beat the default:
  ``"next_day"`` ("翌日から起算して", Kawasaki: always the next day) or ``"same_day"`` ("…の日から
  起算して": the anchor's day counts);
* ``months`` / ``years`` run by the calendar (民法第143条): they end on the day before the day of
  month N months after day 1 that corresponds to it, or on the last day of that month when it has no
  such day (day 1 = 30 Aug, 6 months: no 30 Feb, so 28/29 Feb);
* ``month_end`` N: the last day of the Nth month after the month holding the anchor's day (Saitama
  "記録した日の属する月の翌月末": N = 1); no day is left out, the words name the day's month;
* ``fiscal_year_end`` N: the last day of the Nth fiscal year after the one holding the anchor's day
  (Saitama output data: N = 1; Japan's fiscal year starts on 1 April).

Tiers chain by default: a tier's day 1 is the day after the previous tier's last day (the move is
at 00:00, so that day counts). A tier with ``counted_from = "anchor"`` instead ends where the sum of
its and the earlier periods, counted from the anchor, ends (Osaka: move at 6 months and delete at 12
months, both from the recording).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal

Unit = Literal["days", "months", "years", "month_end", "fiscal_year_end"]
DayOne = Literal["civil", "same_day", "next_day"]
CountedFrom = Literal["previous", "anchor"]
UNITS: tuple[Unit, ...] = ("days", "months", "years", "month_end", "fiscal_year_end")
PRIMARY = "primary"  # the store name of the data directory itself


@dataclass(frozen=True, slots=True)
class Period:
    unit: Unit
    count: int
    day_one: DayOne = "civil"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown period unit {self.unit!r}")
        if self.day_one not in ("civil", "same_day", "next_day"):
            raise ValueError(f"unknown day_one {self.day_one!r}")
        if self.day_one != "civil" and self.unit in ("month_end", "fiscal_year_end"):
            raise ValueError(f"day_one applies to days, months and years, not {self.unit}")
        lowest = 0 if self.unit in ("month_end", "fiscal_year_end") else 1
        if self.count < lowest:
            raise ValueError(f"{self.unit} must be >= {lowest}, got {self.count}")


@dataclass(frozen=True, slots=True)
class Tier:
    store: str  # where the recording lives during this tier
    keep: Period
    # "previous": day 1 is the day after the previous tier's last day. "anchor": this tier ends where
    # the earlier periods plus this one, counted together from the anchor, end (same unit only).
    counted_from: CountedFrom = "previous"

    def __post_init__(self) -> None:
        if self.counted_from not in ("previous", "anchor"):
            raise ValueError(f"unknown counted_from {self.counted_from!r}")


@dataclass(frozen=True, slots=True)
class Policy:
    """Keep in the data directory for ``keep``, then in each tier's store in turn, then delete."""

    name: str
    keep: Period
    tiers: tuple[Tier, ...] = ()

    def __post_init__(self) -> None:
        periods = [self.keep]
        for tier in self.tiers:
            if tier.counted_from == "anchor" and any(
                (p.unit, p.day_one) != (tier.keep.unit, tier.keep.day_one) for p in periods
            ):
                raise ValueError(
                    f"tier {tier.store}: counted from the anchor, it needs the same unit and day_one "
                    "as every period before it"
                )
            periods.append(tier.keep)


@dataclass(frozen=True, slots=True)
class Stage:
    store: str
    last_day: dt.date  # the last local day the recording is in this store
    until: dt.datetime  # UTC: 00:00 local of the day after last_day


@dataclass(frozen=True, slots=True)
class Schedule:
    stages: tuple[Stage, ...]

    @property
    def expires_at(self) -> dt.datetime:
        """When the audio is due for deletion (UTC)."""
        return self.stages[-1].until

    @property
    def last_day(self) -> dt.date:
        return self.stages[-1].last_day

    def move_after(self, store: str) -> Stage | None:
        """The stage that follows ``store``: where to move next and when (None: nothing follows)."""
        names = [s.store for s in self.stages]
        if store not in names:
            return None
        i = names.index(store)
        return self.stages[i + 1] if i + 1 < len(self.stages) else None

    def until_for(self, store: str) -> dt.datetime | None:
        """When a recording now in ``store`` must leave it (moved on, or deleted)."""
        for s in self.stages:
            if s.store == store:
                return s.until
        return None


def add_months(day: dt.date, months: int) -> dt.date | None:
    """The corresponding day ``months`` later, or None when that month has no such day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    if day.day > calendar.monthrange(year, month)[1]:
        return None
    return dt.date(year, month, day.day)


def month_last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def fiscal_year(day: dt.date, start_month: int) -> int:
    """The fiscal year holding ``day``, named by the year it starts in (FY2026: Apr 2026 - Mar 2027)."""
    return day.year if day.month >= start_month else day.year - 1


def last_day(period: Period, first: dt.date, fiscal_year_start_month: int = 4) -> dt.date:
    """The last local day of ``period`` whose day 1 is ``first`` (``day_one`` already applied)."""
    n = period.count
    if period.unit == "days":
        return first + dt.timedelta(days=n - 1)
    if period.unit in ("months", "years"):
        months = n if period.unit == "months" else 12 * n
        corresponding = add_months(first, months)
        if corresponding is None:  # no such day in the final month: its last day (art. 143(2))
            target = add_months(first.replace(day=1), months)
            assert target is not None
            return month_last_day(target.year, target.month)
        return corresponding - dt.timedelta(days=1)
    if period.unit == "month_end":
        target = add_months(first.replace(day=1), n)
        assert target is not None
        return month_last_day(target.year, target.month)
    # fiscal_year_end: the day before the start of fiscal year (FY(first) + n + 1)
    if not 1 <= fiscal_year_start_month <= 12:
        raise ValueError("fiscal_year_start_month must be 1-12")
    start_next = dt.date(fiscal_year(first, fiscal_year_start_month) + n + 1, fiscal_year_start_month, 1)
    return start_next - dt.timedelta(days=1)


def local_day(instant: dt.datetime, zone: dt.tzinfo) -> dt.date:
    if instant.tzinfo is None:
        raise ValueError("retention needs an aware datetime (UTC from the database)")
    return instant.astimezone(zone).date()


def day_end(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """The instant (UTC) a thing kept "through ``day``" becomes due: 00:00 local of the next day."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)


def first_day(period: Period, anchor: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """Day 1 of ``period`` counted from ``anchor`` (民法第140条 unless the period says otherwise)."""
    local = anchor.astimezone(zone) if anchor.tzinfo is not None else None
    if local is None:
        raise ValueError("retention needs an aware datetime (UTC from the database)")
    day = local.date()
    if period.unit in ("month_end", "fiscal_year_end") or period.day_one == "same_day":
        return day
    if period.day_one == "civil" and local.time() == dt.time():
        return day  # art. 140 proviso: a period starting at 00:00 counts its first day
    return day + dt.timedelta(days=1)


def schedule(
    policy: Policy, anchor: dt.datetime, zone: dt.tzinfo, *, fiscal_year_start_month: int = 4
) -> Schedule:
    """Where a recording anchored at ``anchor`` lives, and until when, under ``policy``.

    ``anchor`` is the recording's start, or the preservation instant for a preservation policy.
    """
    first = first_day(policy.keep, anchor, zone)
    day1 = first
    total = 0
    stages = []
    tiers = (Tier(PRIMARY, policy.keep), *policy.tiers)
    for tier in tiers:
        period = tier.keep
        total += period.count
        if tier.counted_from == "anchor":
            end = last_day(Period(period.unit, total, period.day_one), day1, fiscal_year_start_month)
        else:
            if period.day_one == "next_day" and tier is not tiers[0]:
                first += dt.timedelta(days=1)
            end = last_day(period, first, fiscal_year_start_month)
        stages.append(Stage(tier.store, end, day_end(end, zone)))
        first = end + dt.timedelta(days=1)  # the move is at 00:00 of this day: it counts (art. 140)
    return Schedule(tuple(stages))


def expiry(
    period: Period, anchor: dt.datetime, zone: dt.tzinfo, *, fiscal_year_start_month: int = 4
) -> dt.datetime:
    """When something kept for ``period`` from ``anchor`` is due (UTC)."""
    return schedule(
        Policy("-", period), anchor, zone, fiscal_year_start_month=fiscal_year_start_month
    ).expires_at


def describe_period(period: Period, counted_from: str = "the recording") -> str:
    """How a period reads in a plan or report ("31 days from the recording, its day not counted")."""
    n = period.count
    if period.unit == "month_end":
        month = {0: "the month", 1: "the month after the month"}
        what = month.get(n, f"the {_nth(n)} month after the month")
        return f"to the end of {what} of {counted_from}"
    if period.unit == "fiscal_year_end":
        year = {0: "the fiscal year", 1: "the fiscal year after the fiscal year"}
        fy = year.get(n, f"the {_nth(n)} fiscal year after the fiscal year")
        return f"to the end of {fy} of {counted_from}"
    unit = period.unit if n != 1 else period.unit[:-1]
    how = {
        "civil": "its day not counted (民法第140条)",
        "next_day": "counted from the next day",
        "same_day": "its day counted",
    }[period.day_one]
    return f"{n} {unit} from {counted_from}, {how}"


def describe_policy(policy: Policy, counted_from: str = "the recording") -> str:
    text = describe_period(policy.keep, counted_from)
    total = policy.keep.count
    for tier in policy.tiers:
        total += tier.keep.count
        if tier.counted_from == "anchor":
            whole = Period(tier.keep.unit, total, tier.keep.day_one)
            text += f", then in {tier.store} until {describe_period(whole, counted_from)}"
        else:  # the move is at 00:00, so its day counts (art. 140 proviso)
            keep = (
                tier.keep
                if tier.keep.day_one != "civil"
                else Period(tier.keep.unit, tier.keep.count, "same_day")
            )
            text += f", then {describe_period(keep, 'the move at 00:00')} in {tier.store}"
    return text


def _nth(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")
