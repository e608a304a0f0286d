"""Export copies (Saitama's output data, Toyonaka's extraction, Matsumoto's provision; R7).

The lifecycle lives in the ledger, one subject per request (``EX-YYYYMMDD-xxxxxx``):
``export_instructed`` (two-person profiles) → ``exported`` (written before any audio is decrypted)
→ ``export_sealed`` (the package's manifest hash) → ``provided`` → ``export_disposed``. Forms and
``export list`` fold these entries; there is no second copy of the truth to drift from it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.config.people import ROLE_LABELS, ExportPolicy
from recorderd.errors import AccessError
from recorderd.people.users import Actor, Forbidden
from recorderd.records import package
from recorderd.records.audio import call_path, decrypt_recording
from recorderd.records.forms.sheet import wareki
from recorderd.records.play import find_call, wav_bytes
from storage import ledger, signing
from storage.age import AgeKeyError, encrypt_bytes, parse_recipient
from storage.models import Call, Person
from storage.retention import Period, first_day, last_day
from storage.vault import sha256_file

__all__ = ["Grant", "Order", "Request", "create", "follow_up", "instruct", "keep_until", "requests"]

_STATUS = (  # the latest stage reached names the status
    ("export_disposed", "disposed"),
    ("provided", "provided"),
    ("export_sealed", "exported"),
    ("export_failed", "failed"),
    ("exported", "exporting"),
)
# Commits a granted access's ledger entry (the service layer's door) and returns it.
Grant = Callable[..., ledger.Entry]
LIFECYCLE = (
    "export_instructed",
    "export_relayed",
    "exported",
    "export_sealed",
    "export_failed",
    "provided",
    "export_disposed",
)


@dataclass(frozen=True)
class Order:
    """What is to be exported, why, and for whom (the fields of the regulations' forms)."""

    calls: list[str]
    purpose: str
    legal_basis: (
        str  # e.g. "個人情報保護法第69条第2項", "法令に基づく場合", "捜査機関からの照会", "市長が認めた場合"
    )
    recipient: str
    duties: str  # the recipient's duties: no copying, no other use, return or delete when done
    due: dt.date  # return or deletion due date
    medium: str = ""  # e.g. "DVD-R"
    recipient_key: str | None = None  # age1…: the audio is re-encrypted to it instead of plain WAV

    def detail(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "recipient": self.recipient,
            "duties": self.duties,
            "due": self.due.isoformat(),
            "medium": self.medium,
            "format": "age" if self.recipient_key else "wav",
            "recipient_key": self.recipient_key,
        }

    @classmethod
    def from_detail(cls, d: dict[str, Any]) -> Order:
        return cls(
            list(d["calls"]),
            d["purpose"],
            d["legal_basis"],
            d["recipient"],
            d["duties"],
            dt.date.fromisoformat(d["due"]),
            d.get("medium", ""),
            d.get("recipient_key"),
        )


@dataclass
class Request:
    id: str
    entries: list[ledger.Entry] = field(default_factory=list)

    def last(self, kind: str) -> ledger.Entry | None:
        found = [e for e in self.entries if e.kind == kind]
        return found[-1] if found else None

    @property
    def order(self) -> Order:
        first = self.last("export_instructed") or self.last("exported")
        assert first is not None
        return Order.from_detail(first.detail)

    @property
    def status(self) -> str:
        for kind, name in _STATUS:
            if self.last(kind):
                return name
        return "instructed"


def keep_until(policy: ExportPolicy, made: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The last day the export copy is kept, counted from the instant it is made (its own clock, never
    the recording's: Saitama's 出力データ "記録した日" is the day the output data is recorded), by the
    same calendar rules as recordings (storage/retention.py: 民法第140条, the first day not counted)."""
    period = Period(policy.keep_unit, policy.keep_count)
    return last_day(period, first_day(period, made, zone), policy.fiscal_year_start_month)


def requests(sessions: sessionmaker[Session], request_id: str | None = None) -> list[Request]:
    with sessions() as s:
        found = ledger.entries(s, kinds=LIFECYCLE, subject=request_id)
    by_id: dict[str, Request] = {}
    for e in found:
        if e.subject:
            by_id.setdefault(e.subject, Request(e.subject)).entries.append(e)
    return list(by_id.values())


def _new_id(zone: dt.tzinfo) -> str:
    return f"EX-{dt.datetime.now(zone):%Y%m%d}-{uuid.uuid4().hex[:6]}"


def _resolve(sessions: sessionmaker[Session], order: Order) -> tuple[Order, list[Call]]:
    """Full call IDs for the prefixes given; every call must still have its audio."""
    if not order.calls:
        raise AccessError("name at least one call")
    if not order.purpose.strip() or not order.legal_basis.strip() or not order.recipient.strip():
        raise AccessError("purpose, legal basis and recipient are required")
    if order.recipient_key:
        try:
            parse_recipient(order.recipient_key)
        except AgeKeyError as exc:
            raise AccessError(f"recipient key: {exc}") from exc
    rows = [find_call(sessions, c) for c in order.calls]
    for row in rows:
        if row.audio_path is None:
            raise AccessError(f"call {row.id} has no audio (status {row.status})")
    return replace(order, calls=[r.id for r in rows]), rows


def _check_policy(config: Config, order: Order) -> Order:
    """The order as the profile allows it, its legal basis written out in full; else refused."""
    policy = config.exports
    if ("age" if order.recipient_key else "wav") not in policy.formats:
        raise AccessError(f"this profile allows export formats {policy.formats} only")
    if policy.legal_bases:
        basis = order.legal_basis.strip()
        # The full entry, or its article alone ("個人情報保護法第69条第2項第3号"): a clerk cites the article.
        found = [b for b in policy.legal_bases if basis in (b, b.split(" ", 1)[0])]
        if not basis or not found:
            raise AccessError(
                "legal basis not allowed by this profile; it must be one of: "
                + " / ".join(policy.legal_bases)
            )
        order = replace(order, legal_basis=found[0])
    return order


def _label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


def instruct(
    sessions: sessionmaker[Session], config: Config, actor: Actor, order: Order, grant: Grant
) -> str:
    """An order to export (様式第1号 in Saitama; Toyonaka 第8条第1項). Returns the request ID.
    ``grant`` commits the ledger entry (the service layer's door): the instruction exists once it is
    in the ledger. Where the profile has a chain, only its first role instructs."""
    chain = config.exports.chain
    if chain and actor.role != chain[0]:
        raise Forbidden(
            f"the first instruction is the {_label(chain[0])}'s "
            f"({' → '.join(_label(r) for r in chain)}); a {_label(actor.role)} cannot instruct alone"
        )
    order, _rows = _resolve(sessions, order)
    order = _check_policy(config, order)
    request_id = _new_id(config.zone)
    detail = order.detail() | ({"to_role": chain[1]} if chain else {})
    grant("export_instructed", subject=request_id, detail=detail)
    return request_id


def relay(
    sessions: sessionmaker[Session],
    config: Config,
    actor: Actor,
    request_id: str,
    handler: str,
    calls_from: dt.datetime,
    calls_to: dt.datetime,
    grant: Grant,
) -> None:
    """The second step of a three-role chain (Toyonaka 第8条第2項): the operations manager names the
    handler and the date and time of the calls to take out; only that handler may then extract."""
    chain = config.exports.chain
    if len(chain) < 3:
        raise AccessError("this profile's instruction has one step: nothing to pass on")
    found = requests(sessions, request_id)
    first = found[0].last("export_instructed") if found else None
    if first is None:
        raise AccessError(f"no instruction {request_id}")
    req = found[0]
    if req.last("export_relayed") is not None:
        raise AccessError(f"{request_id} has been passed on already")
    if actor.role != chain[1]:
        raise Forbidden(f"the {_label(chain[1])} passes the instruction on, not a {_label(actor.role)}")
    with sessions() as s:
        person = s.get(Person, handler)
        rows = s.scalars(select(Call).where(Call.id.in_(req.order.calls))).all()
    if person is None or person.role != chain[2] or person.disabled_at is not None:
        raise AccessError(f"{handler!r} is not an active {_label(chain[2])}")
    if calls_from.tzinfo is None or calls_to.tzinfo is None or calls_to < calls_from:
        raise AccessError("give the calls' date and time range (from ≤ to)")
    outside = [r.id[:8] for r in rows if not calls_from <= r.started_at <= calls_to]
    if outside:
        raise AccessError(
            f"call(s) {', '.join(outside)} are outside the range given to the {_label(chain[2])}"
        )
    detail = {
        "to": handler,
        "calls_from": calls_from.isoformat(),
        "calls_to": calls_to.isoformat(),
        "instruction_seq": first.seq,
    }
    grant("export_relayed", subject=request_id, detail=detail)


def carry_out_refusal(config: Config, actor: Actor, req: Request) -> Exception | None:
    """Why ``actor`` may not carry out instruction ``req`` now (the refusal to raise), or None.
    Front ends ask through the service layer which steps to offer; ``create`` raises it."""
    entry = req.last("export_instructed")
    if entry is None:
        return AccessError(f"no instruction {req.id}")
    if req.last("exported") and req.status != "failed":
        return AccessError(f"{req.id} has been exported already")
    if entry.actor == actor.id:
        return Forbidden(f"{actor.id} gave instruction {req.id}; someone else must carry it out")
    chain = config.exports.chain
    relayed = req.last("export_relayed")
    if len(chain) >= 3:
        if relayed is None:
            return Forbidden(
                f"{req.id}: only on the two-step instruction ({' → '.join(_label(r) for r in chain)}); "
                f"the {_label(chain[1])} has not yet named the {_label(chain[2])}"
            )
        if relayed.detail.get("to") != actor.id:
            return Forbidden(f"{req.id} was given to {relayed.detail.get('to')}, not {actor.id}")
    elif chain and actor.role != chain[-1]:
        return Forbidden(f"{req.id} is carried out by the {_label(chain[-1])}")
    return None


def _instruction(
    sessions: sessionmaker[Session], config: Config, actor: Actor, request_id: str
) -> tuple[Order, ledger.Entry, ledger.Entry | None]:
    found = requests(sessions, request_id)
    if not found:
        raise AccessError(f"no instruction {request_id}")
    req = found[0]
    refusal = carry_out_refusal(config, actor, req)
    if refusal is not None:
        raise refusal
    entry = req.last("export_instructed")
    assert entry is not None
    return req.order, entry, req.last("export_relayed")


def create(
    sessions: sessionmaker[Session],
    config: Config,
    actor: Actor,
    identities: Callable[[], list[str]],
    out: Path,
    grant: Grant,
    *,
    order: Order | None = None,
    request_id: str | None = None,
    now: dt.datetime | None = None,
    sealed_only: bool = False,
) -> tuple[str, Path]:
    """Make the package. Returns (request ID, package directory). ``identities`` opens the person's
    key copy (after every check, before the ledger entry); ``grant`` commits the ``exported`` entry
    before any audio is decrypted. ``sealed_only``: refuse an order without a recipient key (the
    package then holds no plaintext audio: a download through the web console)."""
    instruction = relayed = None
    if request_id is not None:
        order, instruction, relayed = _instruction(sessions, config, actor, request_id)
    elif config.exports.two_person:
        raise Forbidden(
            "this profile exports only on an instruction (recorderctl export instruct), by another person"
        )
    if order is None:
        raise AccessError("give an instruction (--instruction) or the export's details")
    order, rows = _resolve(sessions, order)
    order = _check_policy(config, order)
    if sealed_only and not order.recipient_key:
        raise AccessError(
            "this export names no recipient age key, so its audio would be plain WAV: the console makes"
            " only encrypted copies; make this one on the recorder (recorderctl export create --out <medium>)"
        )
    for row in rows:
        call_path(row, config)  # held by a node out of reach: refused before anything is granted
    request_id = request_id or _new_id(config.zone)
    made = now or dt.datetime.now(dt.UTC)
    detail = {
        **order.detail(),
        "made_at": made.isoformat(),
        "keep_until": keep_until(config.exports, made, config.zone).isoformat(),
        "instructed_by": instruction.actor if instruction else None,
        "instruction_seq": instruction.seq if instruction else None,
        "relayed_by": relayed.actor if relayed else None,
        "relay_seq": relayed.seq if relayed else None,
        "package": out.name,
        "recordings": [{"call": r.id, "sha256": r.audio_sha256} for r in rows],
    }
    keys = identities()
    entry = grant("exported", subject=request_id, detail=detail)
    try:
        digest = _build(sessions, config, actor, keys, out, request_id, order, rows, entry)
    except BaseException as exc:
        shutil.rmtree(out, ignore_errors=True)
        ledger.append_committed(
            sessions, "export_failed", actor.id, subject=request_id, detail={"error": str(exc)[:500]}
        )
        raise
    ledger.append_committed(
        sessions,
        "export_sealed",
        actor.id,
        subject=request_id,
        detail={"manifest_sha256": digest, "package": out.name},
    )
    return request_id, out


def _call_facts(row: Call, zone: dt.tzinfo) -> dict[str, Any]:
    def t(x: dt.datetime | None) -> str | None:
        return x.astimezone(zone).isoformat() if x else None

    return {
        "id": row.id,
        "started_at": t(row.started_at),
        "answered_at": t(row.answered_at),
        "ended_at": t(row.ended_at),
        "duration_s": row.duration_s,
        "direction": row.direction,
        "line": row.line,
        "city_side_number": row.local_number,
        "counterpart_number": row.remote_number,
        "original_sha256": row.audio_sha256,
    }


# The recipient's duties (松本市 要綱 第8条第2項 in its words; the other profiles ask the same).
DUTIES = (
    "1. 通話記録を無断で複製しないこと。\n"
    "2. 目的以外の利用及び第三者への無断提供を行わないこと。\n"
    "3. 目的を達成したとき又は目的が達成されないことが判明したときは、速やかにデータの返却、消去等必要な"
    "処理を行うこと。"
)


def notice_text(order: Order, request_id: str) -> str:
    return (
        f"出力データ／提供記録 {request_id}\n\n"
        f"提供先: {order.recipient}\n目的: {order.purpose}\n根拠: {order.legal_basis}\n"
        f"返却・消去期限: {wareki(order.due)}\n\n遵守事項:\n{order.duties}\n"
        f"{DUTIES}\n\n"
        f"Export {request_id} for {order.recipient}. Purpose: {order.purpose}. Basis: {order.legal_basis}.\n"
        f"Return or delete by {order.due.isoformat()}. Do not copy, do not use for any other purpose, do not "
        "pass on.\nCheck integrity with: recorderctl export verify <this directory>\n"
    )


def _build(
    sessions: sessionmaker[Session],
    config: Config,
    actor: Actor,
    identities: list[str],
    out: Path,
    request_id: str,
    order: Order,
    rows: list[Call],
    entry: ledger.Entry,
) -> str:
    audio: dict[str, bytes] = {}
    incomplete = []
    for row in rows:
        path = call_path(row, config)
        # Authenticated decryption catches a changed byte; the catalogue hash also catches a file
        # swapped for another valid recording.
        if row.audio_sha256 and sha256_file(path) != row.audio_sha256:
            raise AccessError(f"call {row.id}: the file differs from the catalogue (recorderctl verify)")
        dec = decrypt_recording(path, identities)
        wav = wav_bytes(dec.au)
        if order.recipient_key:
            audio[f"{row.id}.wav.age"] = encrypt_bytes(wav, [order.recipient_key])
        else:
            audio[f"{row.id}.wav"] = wav
        if not dec.complete:
            incomplete.append({"call": row.id, "note": dec.note})
    with sessions() as s:
        excerpt = ledger.entries(s, call_ids=[r.id for r in rows]) + ledger.entries(s, subject=request_id)
    excerpt = sorted({e.seq: e for e in excerpt}.values(), key=lambda e: e.seq)
    key, _created = signing.load_or_create(config.signing_key_path)
    manifest = {
        "package": request_id,
        "created_at": dt.datetime.now(config.zone).isoformat(),
        "site": config.municipality,
        "exported_by": {"id": actor.id, "name": actor.name, "role": actor.role},
        "request": {
            **order.detail(),
            "keep_until": entry.detail["keep_until"],
            "instructed_by": entry.detail["instructed_by"],
        },
        "calls": [_call_facts(r, config.zone) for r in rows],
        "incomplete": incomplete,
        "ledger": {"excerpt": "ledger.jsonl", "export_entry": {"seq": entry.seq, "hash": entry.hash}},
    }
    return package.write(
        out, manifest=manifest, audio=audio, notice=notice_text(order, request_id), excerpt=excerpt, key=key
    )


def follow_up(sessions: sessionmaker[Session], request_id: str, kind: str, detail: dict[str, str],
              grant: Grant) -> None:  # fmt: skip
    """Ledger what happened to an existing export copy: ``provided`` (Matsumoto's 提供) or
    ``export_disposed`` (returned, deleted or destroyed: Matsumoto's 廃棄; Saitama's retention end)."""
    if not requests(sessions, request_id):
        raise AccessError(f"no export {request_id}")
    grant(kind, subject=request_id, detail=detail)
