"""Disclosure requests (開示請求; R9, Kawasaki 10, Osaka 8, Matsumoto 9).

Opening a request finds the caller's recordings by number and dates, records how the requester's
identity was checked (Kawasaki 10 asks for care, e.g. matching other records), and places a
"disclosure" hold on each call (storage/holds.py) so retention cannot delete them while the request
is open — all in one transaction with its ledger entry. Playing a recording to the requester is an
ordinary ``recorderctl play`` with the request as the purpose. Closing records the outcome and
releases the holds.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.dates import local_days
from recorderd.errors import AccessError
from recorderd.numbers import normalise
from recorderd.people.users import Actor
from storage import holds, ledger
from storage.catalog import list_calls

__all__ = [
    "DOCUMENTS",
    "MATCHES",
    "OUTCOMES",
    "Disclosure",
    "IdentityCheck",
    "close",
    "listing",
    "open_request",
]

OUTCOMES = ("disclosed", "partly", "refused", "withdrawn", "none_found")
# Documents an identity is checked against (本人確認書類), and what else it was matched with (Kawasaki
# 第10条: "通話録音記録だけでなく他の情報と照合するなど").
DOCUMENTS = (
    "運転免許証",
    "マイナンバーカード",
    "旅券",
    "在留カード",
    "健康保険証",
    "身体障害者手帳",
    "その他官公署発行の写真付き証明書",
)
MATCHES = ("通話日時の申告", "通話内容の申告", "住所・氏名の照合")


@dataclass(frozen=True)
class IdentityCheck:
    """How the requester's identity was checked: which document, its number (only the last four
    characters are kept: enough to find the document again, not enough to misuse it), and what else
    was matched. Who checked is the signed-in person who opens the request."""

    document: str
    number: str
    matched_with: tuple[str, ...] = ()

    def validated(self) -> IdentityCheck:
        if self.document not in DOCUMENTS:
            raise AccessError(f"identity document: one of {', '.join(DOCUMENTS)}")
        # The document's own characters only (full-width digits as ASCII; not 第…号 around them).
        digits = "".join(
            ch for ch in unicodedata.normalize("NFKC", self.number) if ch.isascii() and ch.isalnum()
        )
        if len(digits) < 4:
            raise AccessError("the number on the identity document (at least its last 4 characters)")
        unknown = [m for m in self.matched_with if m not in MATCHES]
        if unknown:
            raise AccessError(f"matched with: one of {', '.join(MATCHES)}")
        return IdentityCheck(self.document, digits[-4:], tuple(self.matched_with))

    def detail(self, checked_by: str) -> dict[str, object]:
        return {
            "document": self.document,
            "number_last4": self.number,
            "matched_with": list(self.matched_with),
            "checked_by": checked_by,
        }

    @staticmethod
    def text(d: dict[str, object]) -> str:
        """The check as a form prints it: 運転免許証（番号末尾1234）、通話日時の申告と照合."""
        if not isinstance(d, dict):
            return str(d or "")
        out = f"{d.get('document', '')}（番号末尾{d.get('number_last4', '')}）"
        matched = [str(m) for m in d.get("matched_with", []) or []]  # type: ignore[attr-defined]
        return out + (f"、{'・'.join(matched)}と照合" if matched else "")


@dataclass(frozen=True)
class Disclosure:
    id: str
    opened: ledger.Entry
    closed: ledger.Entry | None

    @property
    def calls(self) -> list[str]:
        return [str(c) for c in self.opened.detail.get("calls", [])]


def open_request(
    sessions: sessionmaker[Session],
    config: Config,
    actor: Actor,
    *,
    number: str,
    first: dt.date,
    last: dt.date,
    requester: str,
    contact: str,
    identity: IdentityCheck,
) -> Disclosure:
    identity = identity.validated()
    if not requester.strip():
        raise AccessError("the requester's name (--requester)")
    wanted = normalise(number)
    if wanted is None:
        raise AccessError(f"not a telephone number: {number!r}")
    zone = config.zone
    start, end = local_days(first, last, zone)
    request_id = f"DR-{dt.datetime.now(zone):%Y%m%d}-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as s:
        rows = [r for r in list_calls(s, start=start, end=end, number=wanted, limit=100_000) if r.audio_path]
        detail = {
            "number": wanted,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "requester": requester,
            "contact": contact,
            "identity_check": identity.detail(actor.id),
            "calls": [r.id for r in rows],
        }
        entry = ledger.append(s, "disclosure_opened", actor.id, subject=request_id, detail=detail, at=now)
        for r in rows:
            holds.place(
                s,
                r.id,
                kind="disclosure",
                reference=request_id,
                reason=f"開示請求 {request_id}",
                by=actor.id,
                at=now,
            )
    return Disclosure(request_id, entry, None)


def listing(sessions: sessionmaker[Session], request_id: str | None = None) -> list[Disclosure]:
    with sessions() as s:
        found = ledger.entries(s, kinds=("disclosure_opened", "disclosure_closed"), subject=request_id)
    opened = {e.subject: e for e in found if e.kind == "disclosure_opened" and e.subject}
    closed = {e.subject: e for e in found if e.kind == "disclosure_closed" and e.subject}
    return [Disclosure(rid, e, closed.get(rid)) for rid, e in opened.items()]


def close(sessions: sessionmaker[Session], actor: Actor, request_id: str, outcome: str, note: str) -> int:
    """Record the outcome and release the request's holds. Returns how many holds were released."""
    if outcome not in OUTCOMES:
        raise AccessError(f"outcome must be one of {', '.join(OUTCOMES)}")
    found = listing(sessions, request_id)
    if not found:
        raise AccessError(f"no disclosure request {request_id}")
    if found[0].closed is not None:
        raise AccessError(f"{request_id} was closed already")
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as s:
        ledger.append(
            s,
            "disclosure_closed",
            actor.id,
            subject=request_id,
            at=now,
            detail={"outcome": outcome, "note": note},
        )
        active = holds.listing(s, reference=request_id)
        for h in active:
            holds.release(s, h.id, by=actor.id, reason=f"開示請求 {request_id} 終了（{outcome}）", at=now)
    return len(active)
