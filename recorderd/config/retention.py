"""The ``[retention]`` section: policies, stores, preservation, the reaper's limits (docs/retention.md).

A policy is written as the regulation says it, one key per rule::

    [retention.policies.raw]
    keep = { days = 14, day_one = "next_day" }        # Kawasaki: 翌日から起算して14日後まで
    [retention.policies.standard]
    keep = { months = 6 }                              # Osaka: 6 months here, then
    tiers = [{ store = "secondary", keep = { months = 6 } }]   # 6 months on the secondary volume

The models only validate and translate; the arithmetic is ``storage.retention`` (pure, tested as tables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, model_validator

from recorderd.config.base import Strict
from storage.retention import PRIMARY, Period, Policy, Tier

_COUNTED = ("days", "months", "years")
_UNITS = (*_COUNTED, "month_end", "fiscal_year_end")


class PeriodConfig(Strict):
    """Exactly one of the units; ``day_one`` says whether day 1 is the day itself or the next day."""

    days: StrictInt | None = Field(None, ge=1)
    months: StrictInt | None = Field(None, ge=1)
    years: StrictInt | None = Field(None, ge=1)
    month_end: StrictInt | None = Field(None, ge=0)  # 1: to the end of the month after the recording month
    fiscal_year_end: StrictInt | None = Field(None, ge=0)  # 1: to the end of the next fiscal year
    # "civil": 民法第140条 (the anchor's day is not counted unless the anchor is 00:00); "next_day":
    # the words "翌日から起算して"; "same_day": the words "…日から起算して" (the day itself counts).
    day_one: Literal["civil", "same_day", "next_day"] = "civil"

    @model_validator(mode="after")
    def _exactly_one(self) -> PeriodConfig:
        given = [u for u in _UNITS if getattr(self, u) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_UNITS)} (got {', '.join(given) or 'none'})")
        if self.day_one != "civil" and given[0] not in _COUNTED:
            raise ValueError(f"day_one applies to days, months and years, not {given[0]}")
        return self

    def period(self) -> Period:
        unit = next(u for u in _UNITS if getattr(self, u) is not None)
        return Period(unit, getattr(self, unit), self.day_one)  # type: ignore[arg-type]


class TierConfig(Strict):
    store: str  # a name under [retention.stores]
    keep: PeriodConfig
    # "move": counted from the day the recording moves there; "recording": this period is added to
    # the earlier ones and the whole is counted from the recording (Osaka: move at 6, delete at 12).
    counted_from: Literal["move", "recording"] = "move"


class PolicyConfig(Strict):
    keep: PeriodConfig
    tiers: list[TierConfig] = []
    # "preservation": counted from the day a call is preserved (Osaka's 5 years), else its recording.
    anchor: Literal["recording", "preservation"] = "recording"
    basis: str = ""  # the article it implements, shown in plans and reports ("第5条第2項")


class PreservationConfig(Strict):
    dir: Path  # the preservation store, e.g. removable media mounted here
    policy: str  # the policy a preserved call follows from then on
    medium: str = ""  # the medium's label when `recorderctl calls preserve` names none


class RetentionConfig(Strict):
    default: str | None = None  # policy for recorded calls whose line names none; None: keep forever
    policies: dict[str, PolicyConfig] = {}
    stores: dict[str, Path] = {}  # secondary storage for tiers: name -> directory
    metadata: PeriodConfig | None = None  # the call row (numbers, times), after its audio; None: forever
    fiscal_year_start_month: StrictInt = Field(4, ge=1, le=12)  # Japan: April
    preservation: PreservationConfig | None = None
    interval_s: StrictFloat = Field(600.0, gt=0)  # between reaper passes
    batch_size: StrictInt = Field(200, ge=1, le=10_000)  # files per transaction
    # Refuse to delete when the clock is this far past the newest call or reaper pass (clock jump).
    max_clock_jump_h: StrictFloat = Field(72.0, gt=0)
    # A policy change that makes more calls due at once waits this long (a typo must not wipe months).
    policy_change_grace_h: StrictFloat = Field(24.0, ge=0)
    disk_warn_free_percent: StrictFloat = Field(15.0, ge=0, le=100)  # log a warning below this
    disk_refuse_free_mb: StrictFloat = Field(512.0, ge=0)  # refuse new recordings below this
    disk_check_s: StrictFloat = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _references(self) -> RetentionConfig:
        for name, store in self.stores.items():
            if name == PRIMARY:
                raise ValueError(f"store name {PRIMARY!r} is reserved for data_dir")
            if not store.is_absolute():
                raise ValueError(f"stores.{name}: give an absolute directory")
        for name, pol in self.policies.items():
            for tier in pol.tiers:
                if tier.store not in self.stores:
                    raise ValueError(f"policies.{name}: store {tier.store!r} is not under [retention.stores]")
            try:
                self.policy(name)
            except ValueError as e:
                raise ValueError(f"policies.{name}: {e}") from None
        if self.default is not None:
            self.require(self.default, "default")
        if self.preservation is not None:
            self.require(self.preservation.policy, "preservation.policy")
        for name, pol in self.policies.items():
            if pol.anchor == "preservation" and (
                self.preservation is None or self.preservation.policy != name
            ):
                raise ValueError(f"policies.{name}: anchor 'preservation' only suits preservation.policy")
        return self

    def require(self, name: str, where: str) -> None:
        if name not in self.policies:
            raise ValueError(f"{where}: no policy {name!r} under [retention.policies]")
        if where != "preservation.policy" and self.policies[name].anchor == "preservation":
            raise ValueError(f"{where}: policy {name!r} counts from preservation; a line cannot use it")

    def policy(self, name: str) -> Policy:
        pol = self.policies[name]
        tiers = tuple(
            Tier(t.store, t.keep.period(), "anchor" if t.counted_from == "recording" else "previous")
            for t in pol.tiers
        )
        return Policy(name, pol.keep.period(), tiers)

    def store_dir(self, store: str | None, data_dir: Path) -> Path:
        return data_dir if store in (None, PRIMARY) else self.stores[str(store)]
