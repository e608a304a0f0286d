"""The ledger: append-only, hash-chained, verifiable (R4, R8; docs/ledger.md).

Each entry's hash is SHA-256(previous hash || canonical encoding of the entry), the first entry
chaining to 64 zeros. The canonical encoding is JSON with sorted keys, no spaces, UTF-8, of every
column except the two hashes, so an edit to any field with the ``sqlite3`` shell changes what the
row hashes to and ``verify`` names that row. A deleted, inserted or reordered row breaks the link
to its neighbour (and the seq numbering). Deleting the newest rows leaves a shorter valid chain:
only a checkpoint saved earlier (seq + hash, Ed25519-signed) can show that rows are missing.

Writers: ``append`` inside the caller's transaction (the daemon's metadata writer puts the entry in
the same commit as the call row), or ``append_committed`` for "write the entry before the access":
it commits, retries a lost race with another process, and raises LedgerUnavailable if it cannot.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage import signing
from storage.db import immediate
from storage.models import LedgerRow

__all__ = [
    "GENESIS",
    "KINDS",
    "Checkpoint",
    "Entry",
    "LedgerConflict",
    "LedgerUnavailable",
    "NewEntry",
    "Problem",
    "Report",
    "append",
    "append_committed",
    "append_many",
    "canonical",
    "chain_hash",
    "entries",
    "entry_from_json",
    "head",
    "make_checkpoint",
    "retention_entry",
    "verify",
    "verify_excerpt",
]

GENESIS = "0" * 64
_CHAIN_LOCK = 0x7265636F72646C67  # "recordlg": the advisory lock key of the chain's tail (PostgreSQL)
_ATTEMPTS = 20

# The vocabulary. A kind outside it is a programming error, caught before anything is written.
_DAEMON = ("recording_created", "recording_finalised", "config_loaded")
_ACCESS = ("searched", "viewed", "played", "copied", "access_denied", "export_instructed", "export_relayed",
           "exported", "export_sealed", "export_failed", "provided", "export_disposed", "disclosure_opened",
           "disclosure_closed")  # fmt: skip
_PEOPLE = ("user_added", "user_changed", "password_changed", "login_failed", "account_locked", "key_granted",
           "key_revoked", "keys_destroyed", "signing_key_created", "checkpoint")  # fmt: skip
_INCIDENTS = ("incident_raised", "incident_acknowledged")  # recorderd/incidents (issue 11)
# storage/retention_log.py chains these (retention_event below):
_RETENTION = ("deleted", "deletion_refused", "metadata_purged", "moved", "held", "hold_released", "preserved",
              "policy_changed", "clock_confirmed")  # fmt: skip
KINDS = frozenset(_DAEMON + _ACCESS + _PEOPLE + _RETENTION + _INCIDENTS)


class LedgerConflict(Exception):
    """Another process appended first; roll back and try again."""


class LedgerUnavailable(Exception):
    """The entry could not be written, so the access it was to record must not happen."""


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    kind: str
    actor: str
    call_id: str | None
    subject: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind,
            "actor": self.actor,
            "call_id": self.call_id,
            "subject": self.subject,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical(
    seq: int, at: str, kind: str, actor: str, call_id: str | None, subject: str | None, detail: Any
) -> bytes:
    body = {
        "seq": seq,
        "at": at,
        "kind": kind,
        "actor": actor,
        "call_id": call_id,
        "subject": subject,
        "detail": detail,
    }
    return _dumps(body).encode("utf-8")


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def _timestamp(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the ledger")
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _entry(row: LedgerRow) -> Entry:
    return Entry(
        row.seq,
        row.at,
        row.kind,
        row.actor,
        row.call_id,
        row.subject,
        json.loads(row.detail),
        row.prev_hash,
        row.hash,
    )


@dataclass(frozen=True)
class NewEntry:
    """An entry to append: what ``append`` takes, for ``append_many``."""

    kind: str
    actor: str
    call_id: str | None = None
    subject: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None


def append(
    session: Session,
    kind: str,
    actor: str,
    *,
    call_id: str | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """Append inside ``session``'s transaction (the caller commits). LedgerConflict on a lost race."""
    return append_many(session, [NewEntry(kind, actor, call_id, subject, dict(detail or {}), at)])[0]


def append_many(session: Session, new: Sequence[NewEntry]) -> list[Entry]:
    """Append ``new`` in order, inside ``session``'s transaction: one read of the tail, one INSERT.

    A retention pass logs thousands of deletions per transaction; one tail query and one flush per
    entry made the ledger most of a pass's time (docs/PERFORMANCE.md, retention at scale).
    """
    for n in new:
        if n.kind not in KINDS:
            raise ValueError(f"unknown ledger kind {n.kind!r}")
    if not new:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # One chain for every writer (daemons on several nodes, recorderctl, the console): appends
        # queue on a transaction-scoped advisory lock instead of racing for the same seq and retrying.
        # SQLite needs none: it has one writer at a time.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    last = session.execute(select(LedgerRow.seq, LedgerRow.hash).order_by(LedgerRow.seq.desc()).limit(1))
    tail = last.first()
    seq, prev = (tail[0] + 1, tail[1]) if tail else (1, GENESIS)
    entries, rows = [], []
    for n in new:
        when = _timestamp(n.at or dt.datetime.now(dt.UTC))
        payload = dict(n.detail)
        digest = chain_hash(prev, canonical(seq, when, n.kind, n.actor, n.call_id, n.subject, payload))
        entry = Entry(seq, when, n.kind, n.actor, n.call_id, n.subject, payload, prev, digest)
        entries.append(entry)
        rows.append(entry.to_json() | {"detail": _dumps(payload)})
        seq, prev = seq + 1, digest
    try:
        session.execute(insert(LedgerRow), rows)
    except IntegrityError as exc:
        if "ledger" not in str(exc.orig):
            raise  # another table's constraint: not ours to retry
        raise LedgerConflict(str(exc.orig)) from exc  # a concurrent writer took this seq first
    return entries


# The retention log's actions (storage/retention_log.py) and the ledger kind each becomes.
RETENTION_KINDS = {
    "delete": "deleted", "request_delete": "deleted", "destroy_copy": "deleted",
    "purge_metadata": "metadata_purged", "move": "moved", "hold": "held", "release": "hold_released",
    "preserve": "preserved", "request_refused": "deletion_refused", "policy_change": "policy_changed",
    "clock_confirmed": "clock_confirmed",
}  # fmt: skip


def retention_entry(
    *,
    at: dt.datetime,
    action: str,
    actor: str,
    call_id: str | None,
    rule: str | None,
    reference: str | None,
    detail: dict[str, Any],
) -> NewEntry:
    """The ledger entry of a retention log entry (deletion, move, hold, release, preservation…).
    storage/retention_log appends both in one transaction, so every path that logs one ledgers it."""
    body = {**detail, "retention_action": action, "rule": rule}
    subject = reference[:64] if reference else None
    return NewEntry(RETENTION_KINDS[action], actor[:64], call_id, subject, body, at)


def append_committed(sessions: sessionmaker[Session], kind: str, actor: str, **kw: Any) -> Entry:
    """Append and commit now, or raise LedgerUnavailable: the access it records must then not happen."""
    error = "unknown"
    for _ in range(_ATTEMPTS):
        try:
            # SQLite's write lock from the tail's read on: another process cannot append between
            # our read and our write, where two busy writers could lose every attempt (seen in CI).
            with immediate(sessions) as session:
                return append(session, kind, actor, **kw)
        except LedgerConflict as exc:
            error = str(exc)  # another process won the race: read the new tail and try again
        except OperationalError as exc:
            error = str(exc.orig)  # locked beyond the busy timeout, or the database is gone
            if "locked" not in error and "busy" not in error:
                break
        except SQLAlchemyError as exc:  # anything else (a constraint, a trigger): not worth a retry
            error = str(getattr(exc, "orig", exc))
            break
    raise LedgerUnavailable(f"the ledger entry ({kind}) could not be written: {error}")


def head(session: Session) -> Entry | None:
    row = session.scalars(select(LedgerRow).order_by(LedgerRow.seq.desc()).limit(1)).first()
    return _entry(row) if row is not None else None


def entries(
    session: Session,
    *,
    kinds: Iterable[str] | None = None,
    call_ids: Sequence[str] | None = None,
    subject: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = None,
    after: int | None = None,
    through: int | None = None,
    before: int | None = None,
    newest_first: bool = False,
) -> list[Entry]:
    """Entries in ledger order (``newest_first``: the reverse), filtered. Times compare as UTC ISO text
    (the stored format); ``after``/``through``/``before`` bound the sequence numbers (a range of the
    primary key: cheap to poll, and a page of a long ledger without OFFSET)."""
    q = select(LedgerRow)
    if after is not None:
        q = q.where(LedgerRow.seq > after)
    if before is not None:
        q = q.where(LedgerRow.seq < before)
    if through is not None:
        q = q.where(LedgerRow.seq <= through)
    if kinds is not None:
        q = q.where(LedgerRow.kind.in_(list(kinds)))
    if call_ids is not None:
        q = q.where(LedgerRow.call_id.in_(list(call_ids)))
    if subject is not None:
        q = q.where(LedgerRow.subject == subject)
    if since is not None:
        q = q.where(LedgerRow.at >= _timestamp(since))
    if until is not None:
        q = q.where(LedgerRow.at < _timestamp(until))
    q = q.order_by(LedgerRow.seq.desc() if newest_first else LedgerRow.seq)
    if limit is not None:
        q = q.limit(limit)
    return [_entry(r) for r in session.scalars(q)]


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    seq: int
    message: str


@dataclass
class Report:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(session: Session) -> Iterator[LedgerRow]:
    yield from session.scalars(select(LedgerRow).order_by(LedgerRow.seq).execution_options(yield_per=2000))


def _own_hash(row: LedgerRow) -> str | None:
    """What the row hashes to, or None if a field cannot even be read back."""
    try:
        detail = json.loads(row.detail)
        body = canonical(row.seq, row.at, row.kind, row.actor, row.call_id, row.subject, detail)
        return chain_hash(row.prev_hash, body)
    except (ValueError, TypeError):
        return None


def verify(session: Session, checkpoints: Sequence[Checkpoint] = ()) -> Report:
    """Walk the whole chain; every problem names the row (seq) where it shows."""
    report = Report()
    expected, prev = 1, GENESIS
    hashes: dict[int, str] = {cp.seq: "" for cp in checkpoints}
    for row in _rows(session):
        report.checked += 1
        if row.seq != expected:
            gap = f"row {expected}" if row.seq == expected + 1 else f"rows {expected}–{row.seq - 1}"
            why = f"seq jumps from {expected - 1} to {row.seq}: {gap} deleted or renumbered"
            report.problems.append(Problem(row.seq, why))
        if _own_hash(row) != row.hash:
            report.problems.append(Problem(row.seq, "content does not match its hash: the row was edited"))
        elif row.prev_hash != prev and row.seq == expected:
            why = (
                f"does not chain to row {row.seq - 1}: a row was inserted, deleted or reordered, "
                f"or row {row.seq - 1} was rewritten with a recomputed hash"
            )
            report.problems.append(Problem(row.seq, why))
        if row.seq in hashes:
            hashes[row.seq] = row.hash
        expected, prev = row.seq + 1, row.hash
    report.head_seq, report.head_hash = expected - 1, prev
    for cp in checkpoints:
        report.problems.extend(_check_checkpoint(cp, hashes[cp.seq], report.head_seq))
    return report


def _check_checkpoint(cp: Checkpoint, found: str, head_seq: int) -> list[Problem]:
    if cp.seq == 0:
        return []  # taken of an empty ledger: attests nothing
    if cp.seq > head_seq:
        why = (
            f"the ledger ends at row {head_seq}, but the checkpoint of {cp.at} attests row {cp.seq}: "
            f"rows {head_seq + 1}–{cp.seq} were removed"
        )
        return [Problem(head_seq + 1, why)]
    if found != cp.hash:
        why = f"row {cp.seq} differs from the checkpoint of {cp.at}: rewritten since the checkpoint"
        return [Problem(cp.seq, why)]
    return []


# --- checkpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the ledger had this row with this hash at this time"."""

    seq: int
    hash: str
    at: str
    site: str
    public_key: str
    signature: str

    def signed_bytes(self) -> bytes:
        body = {
            "format": "recorderd-ledger-checkpoint/1",
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "site": self.site,
        }
        return _dumps(body).encode("utf-8")

    def to_json(self) -> str:
        return (
            _dumps(
                {
                    "seq": self.seq,
                    "hash": self.hash,
                    "at": self.at,
                    "site": self.site,
                    "public_key": self.public_key,
                    "signature": self.signature,
                }
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str, trusted_key: str | None = None) -> Checkpoint:
        """Parse and check the signature (against ``trusted_key`` if given). SigningError if bad."""
        try:
            d = json.loads(text)
            cp = cls(
                int(d["seq"]),
                str(d["hash"]),
                str(d["at"]),
                str(d["site"]),
                str(d["public_key"]),
                str(d["signature"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise signing.SigningError(f"not a ledger checkpoint: {exc}") from exc
        if trusted_key is not None and cp.public_key != trusted_key:
            raise signing.SigningError("checkpoint signed by another key than the one trusted")
        signing.verify(cp.public_key, cp.signed_bytes(), cp.signature)
        return cp


def make_checkpoint(session: Session, key: Ed25519PrivateKey, site: str) -> Checkpoint:
    last = head(session)
    seq, digest = (last.seq, last.hash) if last else (0, GENESIS)
    unsigned = Checkpoint(seq, digest, _timestamp(dt.datetime.now(dt.UTC)), site, signing.public_b64(key), "")
    return replace(unsigned, signature=signing.sign(key, unsigned.signed_bytes()))


def entry_from_json(d: dict[str, Any]) -> Entry:
    return Entry(
        int(d["seq"]),
        str(d["at"]),
        str(d["kind"]),
        str(d["actor"]),
        d.get("call_id"),
        d.get("subject"),
        dict(d["detail"]),
        str(d["prev_hash"]),
        str(d["hash"]),
    )


def verify_excerpt(items: Iterable[Entry]) -> list[Problem]:
    """An excerpt is not contiguous; each entry must still hash to what it claims."""
    problems = []
    for e in items:
        body = canonical(e.seq, e.at, e.kind, e.actor, e.call_id, e.subject, e.detail)
        if chain_hash(e.prev_hash, body) != e.hash:
            problems.append(Problem(e.seq, "excerpt entry does not match its hash"))
    return problems
