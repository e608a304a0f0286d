"""What ``recorderctl retention plan|report|catalogue`` print: read-only views of retention.

``plan``: what goes when, and by which rule, grouped by local day (calls not yet scheduled by the
reaper are computed here the same way). ``report``: what was deleted, from the retention log.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from recorderd.config import Config
from recorderd.retention.engine import CALL_COLUMNS, Retention
from recorderd.retention.rules import fingerprint
from storage import ledger, retention_log
from storage.holds import is_held
from storage.models import RECORDING, Call, Hold, Preservation
from storage.retention import PRIMARY, Period, describe_period


def _local(ts: dt.datetime | None, zone: dt.tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return ts.astimezone(zone).strftime(fmt) if ts is not None else "-"


def plan(
    config: Config, ret: Retention, s: Session, now: dt.datetime, until: dt.datetime, *, calls: bool = False
) -> list[str]:
    zone = config.zone
    out = [f"Retention plan ({config.timezone}) from {_local(now, zone)} to {_local(until, zone)}"]
    applied = retention_log.get_state(s, "policy_fingerprint")
    if applied is not None and applied != fingerprint(config)[0]:
        out.append(
            "NOTE: this configuration's retention differs from what the daemon last applied; "
            "reload the daemon (systemctl reload recorderd). Dates below are as applied."
        )
    held = {h.call_id: h for h in s.scalars(select(Hold).where(Hold.released_at.is_(None)))}
    counts: Counter[tuple[str, str, str]] = Counter()
    items: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    kept: list[str] = []

    def day_of(expires: dt.datetime | None) -> str:
        assert expires is not None  # every caller checked it is before ``until``
        return "due now" if expires <= now else _local(expires, zone, "%Y-%m-%d")

    live = and_(Call.audio_path.is_not(None), Call.status != RECORDING)
    # Row by row: what the reaper has not scheduled yet, moves (the next store depends on the row),
    # held calls, and every call when they are to be listed. The rest, plain deletions already
    # scheduled (nearly all of a large catalogue), is counted by SQL per expiry and policy.
    one_by_one = or_(Call.retention_policy.is_(None), Call.move_at < until, is_held())
    q = select(*CALL_COLUMNS).where(
        live, or_(Call.expires_at < until, Call.move_at < until, Call.retention_policy.is_(None))
    )
    for r in s.execute(q if calls else q.where(one_by_one)):
        values = ret.compute(r) if r.retention_policy is None else {}
        expires = values.get("expires_at", r.expires_at)
        move_at = values.get("move_at", r.move_at)
        name = values.get("retention_policy", r.retention_policy)
        what = f"{r.id[:8]}  {_local(r.started_at, zone)}  {r.line or '-'}"
        if r.id in held:
            if expires is not None and expires < until:
                h = held[r.id]
                kept.append(f"{what}  due {_local(expires, zone)}  HELD: {h.kind} {h.reference}")
            continue
        if move_at is not None and move_at < until and (expires is None or expires > max(move_at, now)):
            sched = ret.schedule_for(r.line, r.started_at)
            nxt = sched.move_after(r.audio_store or PRIMARY) if sched else None
            key = (_local(max(move_at, now), zone, "%Y-%m-%d"), f"move to {nxt.store if nxt else '?'}",
                   ret.rule_text(name))  # fmt: skip
            counts[key] += 1
            items[key].append(what)
        if expires is not None and expires < until:
            key = (day_of(expires), "delete", ret.rule_text(name))
            counts[key] += 1
            items[key].append(what)
    if not calls:
        # The complement of one_by_one, spelt out: NOT of an OR with a NULL (no move_at) is NULL.
        rest = and_(Call.retention_policy.is_not(None), or_(Call.move_at.is_(None), Call.move_at >= until))
        scheduled = select(Call.expires_at, Call.retention_policy, func.count()).where(
            live, Call.expires_at < until, rest, ~is_held()
        )
        for expires, name, n in s.execute(scheduled.group_by(Call.expires_at, Call.retention_policy)):
            counts[(day_of(expires), "delete", ret.rule_text(name))] += n
    if not counts:
        out.append("nothing is due in this period")
    for (day, action, rule), n in sorted(counts.items(), key=lambda g: (g[0][0] != "due now", g[0])):
        out.append(f"{day:10}  {action:18}  {n:6} call(s)  {rule}")
        if calls:
            out += [f"            {item}" for item in items[(day, action, rule)]]
    if kept:
        out.append(f"kept by holds although due: {len(kept)} call(s)")
        out += [f"            {k}" for k in kept]
    copies = s.scalars(
        select(Preservation).where(Preservation.destroyed_at.is_(None), Preservation.expires_at < until)
    )
    pres = config.retention.preservation
    rule = ret.rule_text(pres.policy) if pres is not None else "preservation (no longer configured)"
    for c in copies:
        out.append(
            f"{_local(c.expires_at, zone, '%Y-%m-%d'):10}  destroy copy        "
            f"medium {c.medium}: call {c.call_id[:8]} (preserved {_local(c.preserved_at, zone)}; "
            f"the copy's own period: {rule})"
        )
    out += _export_copies(config, s, now, until)
    return out


def _export_copies(config: Config, s: Session, now: dt.datetime, until: dt.datetime) -> list[str]:
    """Export copies whose own keep_until falls in the period and that are not yet disposed of
    (recorderctl export dispose): their clock starts when they are made, never at the recording."""
    zone = config.zone
    found = ledger.entries(s, kinds=("exported", "export_failed", "export_disposed"))
    closed = {e.subject for e in found if e.kind in ("export_failed", "export_disposed")}
    pol = config.exports
    rule = describe_period(Period(pol.keep_unit, pol.keep_count), "the day the copy is made")
    out = []
    for e in found:
        if e.kind != "exported" or e.subject in closed or not e.detail.get("keep_until"):
            continue
        last = dt.date.fromisoformat(str(e.detail["keep_until"]))
        due = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        if due < until:
            day = "due now" if due <= now else f"{due:%Y-%m-%d}"
            out.append(
                f"{day:10}  dispose export copy  request {e.subject} (made {_local(e.time, zone)}; "
                f"the copy's own period: {rule}; the recordings keep their own)"
            )
    return out


def report(
    config: Config, s: Session, start: dt.datetime, end: dt.datetime, *, everything: bool
) -> list[str]:
    zone = config.zone
    actions = None if everything else retention_log.DELETIONS
    rows = retention_log.entries(s, start=start, end=end, actions=actions)
    out = [f"{'WHEN':16}  {'ACTION':15}  {'CALL':8}  {'BY':10}  RULE / REFERENCE"]
    for e in rows:
        detail = json.loads(e.detail)
        extra = f"  ref {e.reference}" if e.reference else ""
        note = f"  [{detail['note']}]" if "note" in detail else ""
        out.append(
            f"{_local(e.at, zone):16}  {e.action:15}  {(e.call_id or '-')[:8]:8}  {e.actor[:10]:10}  "
            f"{e.rule or '-'}{extra}{note}"
        )
    counts = Counter((e.action, e.rule or "-") for e in rows)
    out.append(
        f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}"
        f" from {_local(start, zone)} to {_local(end, zone)} ({config.timezone})"
    )
    out += [f"  {n:6}  {action}: {rule}" for (action, rule), n in sorted(counts.items())]
    return out


def catalogue(config: Config, copies: Sequence[Preservation]) -> list[str]:
    """Osaka form 4 (外部記憶媒体目録): medium, content, dates."""
    zone = config.zone
    out = [f"{'ENTRY':5}  {'MEDIUM':12}  {'CALL':8}  {'PRESERVED':16}  {'DESTROY AFTER':16}  CONTENT"]
    for c in copies:
        state = f"  (destroyed {_local(c.destroyed_at, zone)})" if c.destroyed_at else ""
        out.append(
            f"{c.id:5}  {c.medium[:12]:12}  {c.call_id[:8]}  {_local(c.preserved_at, zone):16}  "
            f"{_local(c.expires_at, zone):16}  {c.content}{state}"
        )
    return out
