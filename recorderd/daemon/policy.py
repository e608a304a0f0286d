"""Which calls are recorded: a pure function of the configuration, the call and the time.

No I/O and no clock inside, so every municipality's rules can be tested as a table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from recorderd.config import Action, Announcement, Channels, Config, Direction, LineRule, TimeWindow
from recorderd.numbers import normalise

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the PBX told us about a call, before any decision."""

    direction: Direction
    local_number: str | None  # city side: the number called (inbound) or the extension/trunk (outbound)
    remote_number: str | None  # the counterpart: the caller (inbound) or the number dialled (outbound)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    line: str | None  # the rule that decided, None for the defaults
    announcement: Announcement | None  # what the caller hears first (inbound recorded calls only)
    reason: str  # one short phrase for logs and `check-config`
    keep_numbers: bool  # whether the metadata row may hold party numbers
    channels: Channels = "mono"  # stereo: the counterpart left, the city side right (recorded calls)

    @property
    def record(self) -> bool:
        return self.action == "record"


def _in_window(window: TimeWindow, local: dt.datetime) -> bool:
    day = _DAYS[local.weekday()]
    t = local.time().replace(tzinfo=None)
    if window.start < window.end:
        return day in window.days and window.start <= t < window.end
    # Overnight window (e.g. 22:00-06:00): the part after midnight belongs to the previous day's window.
    if t >= window.start:
        return day in window.days
    prev_day = _DAYS[(local.weekday() - 1) % 7]
    return t < window.end and prev_day in window.days


def find_rule(config: Config, direction: Direction, local_number: str | None) -> LineRule | None:
    number = normalise(local_number)
    if number is None:
        return None
    for rule in config.lines:
        if rule.direction == direction and number in rule.numbers:
            return rule
    return None


def decide(config: Config, facts: CallFacts, at: dt.datetime) -> Decision:
    """Decide for one call starting at ``at`` (an aware datetime; evaluated in the configured zone)."""
    if at.tzinfo is None:
        raise ValueError("decide() needs an aware datetime")
    rule = find_rule(config, facts.direction, facts.local_number)
    if rule is None:
        action = config.defaults.inbound if facts.direction == "inbound" else config.defaults.outbound
        key = config.defaults.announcement if facts.direction == "inbound" else None
        return Decision(
            action=action,
            line=None,
            announcement=config.announcements[key] if key and action == "record" else None,
            reason=f"no line rule for this number: default {facts.direction} {action}",
            keep_numbers=action == "record",
            channels=config.channels,
        )
    action, reason = rule.action, f"line {rule.name}: {rule.action}"
    if rule.action == "record" and rule.hours:
        local = at.astimezone(config.zone)
        if not any(_in_window(w, local) for w in rule.hours):
            action, reason = rule.outside_hours, f"line {rule.name}: outside hours, {rule.outside_hours}"
    announcement = None
    if action == "record" and facts.direction == "inbound" and rule.announcement:
        announcement = config.announcements[rule.announcement]
    return Decision(
        action=action,
        line=rule.name,
        announcement=announcement,
        reason=reason,
        keep_numbers=action == "record" or rule.keep_numbers_when_excluded,
        channels=rule.channels or config.channels,
    )


def describe(config: Config) -> list[str]:
    """One line per configured number and the defaults, for ``recorderd check-config``."""
    out = []
    for rule in config.lines:
        ann = f", announcement {config.announcements[rule.announcement].sound}" if rule.announcement else ""
        hours = ""
        if rule.hours:
            spans = "; ".join(f"{','.join(w.days)} {w.start:%H:%M}-{w.end:%H:%M}" for w in rule.hours)
            hours = f", only {spans} ({config.timezone}), otherwise {rule.outside_hours}"
        per_direction = (rule.channels or config.channels) == "stereo" and rule.action == "record"
        what = f"{rule.action.upper()}{', STEREO' if per_direction else ''}{ann}{hours}"
        for number in rule.numbers:
            out.append(f"{rule.direction:8} {number:<14} line {rule.name!r}: {what}")
    d = config.defaults
    default_ann = f", announcement {config.announcements[d.announcement].sound}" if d.announcement else ""
    stereo = ", STEREO" if config.channels == "stereo" else ""
    inbound_extra = f"{stereo}{default_ann}" if d.inbound == "record" else ""
    out.append(f"inbound  (any other)    default: {d.inbound.upper()}{inbound_extra}")
    out.append(
        f"outbound (any other)    default: {d.outbound.upper()}{stereo if d.outbound == 'record' else ''}"
    )
    return out
