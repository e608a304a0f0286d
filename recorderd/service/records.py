"""Export copies, disclosure requests, forms and the ledger, through the door.

The features themselves live in recorderd/records/; here each is one operation that takes a
signed-in person, and whose granted entry is committed through the door before any audio is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorderd.dates import local_days
from recorderd.errors import AccessError
from recorderd.incidents.checks import ledger_incident
from recorderd.people.users import Actor
from recorderd.records import disclosure, export, forms
from recorderd.records.disclosure import DOCUMENTS as ID_DOCUMENTS
from recorderd.records.disclosure import MATCHES as ID_MATCHES
from recorderd.records.disclosure import OUTCOMES, IdentityCheck
from recorderd.records.export import Order
from recorderd.records.forms import FORMS
from recorderd.records.package import verify as verify_package
from recorderd.records.play import open_key
from recorderd.service import checkpoints as found_checkpoints
from recorderd.service.door import Service
from storage import checkpoints, ledger

__all__ = [
    "FORMS",
    "ID_DOCUMENTS",
    "ID_MATCHES",
    "OUTCOMES",
    "IdentityCheck",
    "Order",
    "checkpoint",
    "close_disclosure",
    "create_export",
    "dispose_export",
    "instruct_export",
    "list_disclosures",
    "list_exports",
    "open_disclosure",
    "provide_export",
    "relay_export",
    "render_form",
    "show_ledger",
    "signing_key",
    "verify_ledger",
    "verify_package",
]


# -- export copies ---------------------------------------------------------------------------------
def instruct_export(svc: Service, who: Actor, order: Order) -> str:
    """An order to export, carried out by someone else (two-person profiles). Returns the request ID."""
    with svc.door(who, "export.instruct") as t:
        return export.instruct(svc.sessions, svc.config, who, order, t.grant)


def relay_export(
    svc: Service, who: Actor, request_id: str, handler: str, calls_from: dt.datetime, calls_to: dt.datetime
) -> None:
    """Pass an instruction on to a named handler with the calls' date and time (Toyonaka 第8条第2項)."""
    with svc.door(who, "export.relay", subject=request_id[:64]) as t:
        export.relay(svc.sessions, svc.config, who, request_id, handler, calls_from, calls_to, t.grant)


def signing_key(svc: Service, actor: str) -> Ed25519PrivateKey:
    """The installation's signing key; created on first use, its public half put in the ledger."""
    return checkpoints.signing_key(svc.sessions, svc.config.signing_key_path, actor)


def create_export(
    svc: Service,
    who: Actor,
    out: Path,
    *,
    order: Order | None = None,
    instruction: str | None = None,
) -> tuple[str, Path]:
    """Make an export package, on an instruction (``instruction``) or with its details (``order``)."""
    with svc.door(who, "export.create", subject=instruction) as t:
        signing_key(svc, who.id)  # before the export entry, so a new key's entry precedes it
        return export.create(
            svc.sessions,
            svc.config,
            who,
            lambda: open_key(svc.people, who),
            out,
            t.grant,
            order=order,
            request_id=instruction,
            now=svc.clock(),
        )


def provide_export(svc: Service, who: Actor, request_id: str, to: str, medium: str) -> None:
    """The copy was handed over (Matsumoto's 提供)."""
    with svc.door(who, "export.provide", subject=request_id[:64]) as t:
        export.follow_up(svc.sessions, request_id, "provided", {"to": to, "medium": medium}, t.grant)


def dispose_export(svc: Service, who: Actor, request_id: str, how: str, note: str) -> None:
    """The copy was returned, deleted or destroyed (Matsumoto's 廃棄; Saitama's retention end)."""
    with svc.door(who, "export.dispose", subject=request_id[:64]) as t:
        if how not in ("returned", "deleted", "destroyed"):
            raise AccessError("how: returned, deleted or destroyed")
        export.follow_up(svc.sessions, request_id, "export_disposed", {"how": how, "note": note}, t.grant)


def list_exports(svc: Service, who: Actor) -> list[export.Request]:
    with svc.door(who, "export.list") as t:
        t.grant("viewed", detail={"what": "export copies"})
        return export.requests(svc.sessions)


# -- disclosure requests ---------------------------------------------------------------------------
def open_disclosure(
    svc: Service,
    who: Actor,
    *,
    number: str,
    first: dt.date,
    last: dt.date,
    requester: str,
    contact: str,
    identity: disclosure.IdentityCheck,
) -> disclosure.Disclosure:
    with svc.door(who, "disclosure.open"):
        return disclosure.open_request(
            svc.sessions,
            svc.config,
            who,
            number=number,
            first=first,
            last=last,
            requester=requester,
            contact=contact,
            identity=identity,
        )


def close_disclosure(svc: Service, who: Actor, request_id: str, outcome: str, note: str) -> int:
    """Record the outcome and release the request's holds; returns how many were released."""
    with svc.door(who, "disclosure.close", subject=request_id[:64]):
        return disclosure.close(svc.sessions, who, request_id, outcome, note)


def list_disclosures(svc: Service, who: Actor) -> list[disclosure.Disclosure]:
    with svc.door(who, "disclosure.list") as t:
        t.grant("viewed", detail={"what": "disclosure requests"})
        return disclosure.listing(svc.sessions)


# -- forms -----------------------------------------------------------------------------------------
def render_form(
    svc: Service,
    who: Actor,
    name: str,
    out: Path,
    *,
    first: dt.date | None = None,
    last: dt.date | None = None,
    request: str | None = None,
) -> int:
    """Write one of the regulations' forms as PDF; returns how many items it holds."""
    with svc.door(who, "forms.render") as t:
        if name not in forms.FORMS:
            raise AccessError(f"unknown form {name!r}; one of {', '.join(forms.FORMS)}")
        zone = svc.config.zone
        since, until = local_days(first, last, zone)
        detail = {"what": f"form {name}", "from": str(first or ""), "to": str(last or ""), "request": request}
        t.grant("viewed", detail=detail)
        return forms.render(name, svc.sessions, svc.config, out, since=since, until=until, subject=request)


# -- the ledger ------------------------------------------------------------------------------------
def show_ledger(
    svc: Service,
    who: Actor,
    *,
    kinds: Sequence[str] | None = None,
    call: str | None = None,
    subject: str | None = None,
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
) -> list[ledger.Entry]:
    """The newest ``limit`` entries that match (below entry ``before`` if given), oldest first; with
    ``after``, the ``limit`` oldest that match above that entry (the next page towards the newest).
    Each page reads only its own rows (keyset on the sequence number), however long the ledger."""
    with svc.door(who, "ledger.show") as t:
        detail = {"what": "ledger", "kinds": list(kinds or []), "call": call, "subject": subject}
        paging = {k: v for k, v in (("before", before), ("after", after)) if v is not None}
        t.grant("viewed", detail=detail | paging)
        calls = [call] if call else None
        with svc.sessions() as s:
            if limit <= 0 or after is not None:
                return ledger.entries(s, kinds=kinds, call_ids=calls, subject=subject, after=after,
                                      before=before, limit=limit if limit > 0 else None)  # fmt: skip
            newest = ledger.entries(
                s, kinds=kinds, call_ids=calls, subject=subject, before=before, limit=limit, newest_first=True
            )
        return newest[::-1]


def verify_ledger(
    svc: Service,
    who: Actor,
    given: Sequence[ledger.Checkpoint] = (),
    *,
    trusted_key: str | None = None,
    search: bool = True,
) -> found_checkpoints.Verification:
    """Walk the whole chain and hold it to the newest checkpoint: ``given`` ones and, with ``search``,
    those the daemon sent to [ledger] checkpoint_dirs and retained on MQTT. Its entry (written
    before the walk) names the checkpoint used."""
    with svc.door(who, "ledger.verify") as t:
        key = trusted_key or svc.config.ledger.trusted_key or None
        looked = found_checkpoints.search(svc.config, key, given) if search else None
        if looked is None:
            looked = found_checkpoints.Search([checkpoints.Found(cp, "given") for cp in given])
        newest = checkpoints.newest(looked.found)
        detail = {
            "what": "ledger verification",
            "checkpoints": len(looked.found),
            "newest": None if newest is None else {"seq": newest.checkpoint.seq, "at": newest.checkpoint.at,
                                                   "source": newest.source},
        }  # fmt: skip
        t.grant("viewed", detail=detail)
        with svc.sessions() as s:
            held_to = list(given) + ([newest.checkpoint] if newest and newest.source != "given" else [])
            report = ledger.verify(s, held_to)
        if not report.ok:
            ledger_incident(svc.sessions, report, at=svc.clock())
        age = newest.age_s(svc.clock()) if newest else None
        return found_checkpoints.Verification(report, newest, age, looked.searched, looked.notes)


def checkpoint(
    svc: Service, who: Actor, *, publish: Callable[[str], None] | None = None, out: str | None = None
) -> ledger.Checkpoint:
    """A signed checkpoint of the newest row (and of that row's own entry, which follows it)."""
    with svc.door(who, "ledger.checkpoint"):
        key = signing_key(svc, who.id)
        with svc.sessions() as s:
            cp = ledger.make_checkpoint(s, key, svc.config.municipality)
        if publish is not None:
            publish(cp.to_json())
        detail = {"seq": cp.seq, "hash": cp.hash, "file": out, "published": publish is not None}
        ledger.append_committed(svc.sessions, "checkpoint", who.id, detail=detail)
        return cp
