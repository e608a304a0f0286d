"""What the forms print, read from the ledger (what happened) and the call rows (when, which numbers).

The ledger holds no telephone numbers for calls; the call row does, for as long as its metadata is
kept. A form printed after the row was purged says so instead of inventing a number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.config.people import ROLE_LABELS
from recorderd.numbers import display
from recorderd.records.forms.sheet import wareki
from storage import ledger
from storage.models import Call, Person

__all__ = ["GONE", "CallFacts", "FormData", "load", "when"]

GONE = "（記録消去済み）"
_WEEKDAYS = "月火水木金土日"


@dataclass(frozen=True)
class CallFacts:
    id: str
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    city_side: str | None = None
    counterpart: str | None = None
    line: str | None = None


def when(ts: dt.datetime | None, zone: dt.tzinfo, *, approx: bool = False) -> str:
    """``令和8年11月22日（日）10時00分``: the shape of Saitama's form (頃 when the form says 頃)."""
    if ts is None:
        return GONE
    t = ts.astimezone(zone)
    return f"{wareki(t.date())}（{_WEEKDAYS[t.weekday()]}）{t.hour}時{t.minute:02d}分{'頃' if approx else ''}"


@dataclass
class FormData:
    zone: dt.tzinfo
    site: str
    entries: list[ledger.Entry]
    calls: dict[str, CallFacts] = field(default_factory=dict)
    people: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, role label)

    def call(self, call_id: str) -> CallFacts:
        return self.calls.get(call_id, CallFacts(call_id))

    def person(self, person_id: str | None) -> str:
        if not person_id:
            return ""
        name, role = self.people.get(person_id, (person_id, ""))
        return f"{name}（{role}）" if role else name

    def name(self, person_id: str | None) -> str:
        """The person's name alone, for a column or line whose heading already names the role."""
        return self.people.get(person_id, (person_id, ""))[0] if person_id else ""

    def entry(self, subject: str | None, seq: object) -> ledger.Entry | None:
        return next((x for x in self.by_subject(subject) if x.seq == seq), None) if seq else None

    def of(self, *kinds: str) -> list[ledger.Entry]:
        return [e for e in self.entries if e.kind in kinds]

    def by_subject(self, subject: str | None) -> list[ledger.Entry]:
        return [e for e in self.entries if e.subject == subject]

    def day(self, e: ledger.Entry) -> dt.date:
        return e.time.astimezone(self.zone).date()


def _call_ids(entries: Iterable[ledger.Entry]) -> set[str]:
    ids = set()
    for e in entries:
        if e.call_id:
            ids.add(e.call_id)
        ids.update(str(c) for c in e.detail.get("calls", []) or [])
    return ids


def load(
    sessions: sessionmaker[Session],
    config: Config,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    subject: str | None = None,
) -> FormData:
    with sessions() as s:
        # A request's whole story whatever the period; otherwise everything in the period.
        found = ledger.entries(s, subject=subject) if subject else ledger.entries(s, since=since, until=until)
        ids = _call_ids(found)
        rows = s.scalars(select(Call).where(Call.id.in_(ids))).all() if ids else []
        people = s.scalars(select(Person)).all()
    data = FormData(config.zone, config.municipality, found)
    data.calls = {  # numbers hyphenated as written in Japan (03-1111-2222)
        r.id: CallFacts(
            r.id, r.started_at, r.ended_at, display(r.local_number), display(r.remote_number), r.line
        )
        for r in rows
    }
    data.people = {p.id: (p.name, ROLE_LABELS.get(p.role, p.role)) for p in people}
    return data
