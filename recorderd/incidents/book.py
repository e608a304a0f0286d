"""The incident book: incidents as ledger entries, so they share its tamper evidence and need no table.

``incident_raised`` (subject: the incident's ID, detail: kind, key, summary, facts) opens one;
``incident_acknowledged`` (same subject: who, note) closes it. ``key`` says what the incident is
about ("locked:p-handler"): while one with the same key is open, the same cause raises no second one,
so a locked account that keeps being tried does not flood the book.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage import ledger

# kind -> how the report names it (事故の種別)
KINDS: dict[str, str] = {
    "account_locked": "アカウントのロック（パスワードの連続誤り）",
    "repeated_refusals": "権限のない操作の繰返し",
    "verify_failed": "録音ファイルの欠落又は改変",
    "ledger_verify_failed": "操作記録（台帳）の改ざんの疑い",
    "clock_jump": "時計の異常",
    "leak": "漏えい",
    "loss": "紛失",
    "theft": "盗難",
    "other": "その他の事故",
}
AUTOMATIC = ("account_locked", "repeated_refusals", "verify_failed", "ledger_verify_failed", "clock_jump")
BY_HAND = ("leak", "loss", "theft", "other")
SYSTEM = "recorderd"  # the actor of an incident raised by the system itself


@dataclass(frozen=True)
class Incident:
    raised: ledger.Entry
    acknowledged: ledger.Entry | None

    @property
    def id(self) -> str:
        return str(self.raised.subject)

    @property
    def kind(self) -> str:
        return str(self.raised.detail.get("kind", "other"))

    @property
    def summary(self) -> str:
        return str(self.raised.detail.get("summary", ""))

    @property
    def open(self) -> bool:
        return self.acknowledged is None


def incidents(sessions: sessionmaker[Session], *, open_only: bool = False) -> list[Incident]:
    with sessions() as s:
        found = ledger.entries(s, kinds=("incident_raised", "incident_acknowledged"))
    acks = {e.subject: e for e in found if e.kind == "incident_acknowledged"}
    book = [Incident(e, acks.get(e.subject)) for e in found if e.kind == "incident_raised"]
    return [i for i in book if i.open] if open_only else book


def find(sessions: sessionmaker[Session], incident_id: str) -> Incident | None:
    return next((i for i in incidents(sessions) if i.id == incident_id), None)


def raise_incident(
    sessions: sessionmaker[Session],
    kind: str,
    summary: str,
    *,
    key: str,
    actor: str = SYSTEM,
    at: dt.datetime | None = None,
    facts: dict[str, Any] | None = None,
) -> Incident | None:
    """Open an incident, or None when one with the same ``key`` is still open (not raised twice)."""
    if kind not in KINDS:
        raise ValueError(f"unknown incident kind {kind!r}; one of {', '.join(KINDS)}")
    if any(i.raised.detail.get("key") == key for i in incidents(sessions, open_only=True)):
        return None
    when = at or dt.datetime.now(dt.UTC)
    ident = f"IN-{when:%Y%m%d}-{uuid.uuid4().hex[:6]}"
    detail = {
        "kind": kind,
        "label": KINDS[kind],  # the report prints it as it was named when raised
        "automatic": kind in AUTOMATIC,
        "key": key,
        "summary": summary[:500],
        "facts": facts or {},
    }
    entry = ledger.append_committed(sessions, "incident_raised", actor, subject=ident, detail=detail, at=at)
    return Incident(entry, None)


def open_lines(sessions: sessionmaker[Session], zone: dt.tzinfo) -> list[str]:
    """One line per open incident, for ``recorderctl status`` (no call, no number)."""
    out = []
    for i in incidents(sessions, open_only=True):
        when = i.raised.time.astimezone(zone)
        out.append(f"{i.id}  {when:%Y-%m-%d %H:%M}  {i.kind}: {i.summary}")
    return out
