"""``recorderctl ledger|export|forms|disclosure``: the records side of people_cli (registered from there)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorderd.cli.people import Ctx, ctx, guarded, sign_in, who
from recorderd.config import Config
from recorderd.errors import AccessError
from recorderd.people.users import UserError
from recorderd.records import disclosure, export, forms, package
from recorderd.records.play import open_key
from storage import ledger, signing


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


# -- ledger ----------------------------------------------------------------------------------------
def signing_key(c: Ctx, actor: str) -> Ed25519PrivateKey:
    """The installation's signing key; created on first use, its public half put in the ledger."""
    key, created = signing.load_or_create(c.config.signing_key_path)
    if created:
        public = signing.public_b64(key)
        detail = {"public_key": public, "fingerprint": signing.fingerprint(public)}
        ledger.append_committed(c.sessions, "signing_key_created", actor, detail=detail)
    return key


@guarded
def cmd_ledger_verify(args: argparse.Namespace) -> int:
    c = ctx(args)
    checkpoints = []
    for path in args.checkpoint or []:
        try:
            checkpoints.append(ledger.Checkpoint.from_json(Path(path).read_text("utf-8"), args.trust_key))
        except signing.SigningError as exc:
            print(f"FAIL {path}: {exc}")
            return 1
    with c.sessions() as s:
        report = ledger.verify(s, checkpoints)
    for p in report.problems:
        print(f"FAIL row {p.seq}: {p.message}")
    print(
        f"{report.checked} entries checked, head row {report.head_seq} {report.head_hash[:16]}…, "
        f"{len(checkpoints)} checkpoint(s), {len(report.problems)} problem(s)"
    )
    return 0 if report.ok else 1


async def _publish(config: Config, payload: str) -> None:
    mqtt = config.mqtt
    assert mqtt is not None
    tls = aiomqtt.TLSParameters(ca_certs=str(mqtt.tls_ca_file) if mqtt.tls_ca_file else None)
    async with aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=mqtt.username,
        password=mqtt.resolved_password(),
        tls_params=tls if mqtt.tls else None,
        timeout=10,
    ) as client:
        await client.publish(f"{mqtt.topic_prefix}/ledger/checkpoint", payload, qos=1, retain=True)


@guarded
def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    c = ctx(args)
    key = signing_key(c, "recorderctl")
    with c.sessions() as s:
        cp = ledger.make_checkpoint(s, key, c.config.municipality)
    text = cp.to_json()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.publish:
        if c.config.mqtt is None:
            raise UserError("--publish needs an [mqtt] section in the config")
        asyncio.run(_publish(c.config, text))
    detail = {"seq": cp.seq, "hash": cp.hash, "file": args.out, "published": bool(args.publish)}
    ledger.append_committed(c.sessions, "checkpoint", "recorderctl", detail=detail)
    print(f"checkpoint of row {cp.seq}, signed by {signing.fingerprint(cp.public_key)}", file=sys.stderr)
    return 0


@guarded
def cmd_ledger_show(args: argparse.Namespace) -> int:
    c = ctx(args)
    with c.sessions() as s:
        found = ledger.entries(
            s, kinds=args.kind, call_ids=[args.call] if args.call else None, subject=args.subject
        )
    for e in found[-args.limit :]:
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
        print(
            f"{e.seq:6} {e.time.astimezone(c.config.zone):%Y-%m-%d %H:%M:%S} {e.kind:20} {e.actor:14} "
            f"{(e.call_id or '-')[:8]:8} {e.subject or '-'} {detail}"
        )
    return 0


# -- export ----------------------------------------------------------------------------------------
def _order(args: argparse.Namespace) -> export.Order:
    if not (args.call and args.purpose and args.basis and args.recipient and args.due):
        raise AccessError("give --call, --purpose, --basis, --recipient and --due (or --instruction)")
    return export.Order(
        args.call,
        args.purpose,
        args.basis,
        args.recipient,
        args.duties or "",
        args.due,
        args.medium or "",
        args.recipient_key,
    )


@guarded
def cmd_export_instruct(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "instruct an export")
    print(export.instruct(c.people, c.sessions, c.config, actor, _order(args)))
    return 0


@guarded
def cmd_export_create(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "make an export copy")
    c.people.require(actor, "export", action="make an export copy")
    order = None if args.instruction else _order(args)
    signing_key(c, actor.id)  # before the export entry, so a new key's entry precedes it
    request_id, out = export.create(
        c.people,
        c.sessions,
        c.config,
        actor,
        open_key(c.people, actor),
        Path(args.out),
        order=order,
        request_id=args.instruction,
    )
    print(f"{request_id}: package written to {out}")
    return 0


@guarded
def cmd_export_verify(args: argparse.Namespace) -> int:
    info = package.verify(Path(args.package), trusted_key=args.trust_key)
    for p in info.problems:
        print(f"FAIL {p}")
    print(
        f"{args.package}: {info.files_checked} file(s) checked, signed by {info.fingerprint or '?'}, "
        f"{len(info.problems)} problem(s)"
    )
    return 0 if not info.problems else 1


@guarded
def cmd_export_list(args: argparse.Namespace) -> int:
    c = ctx(args)
    today = dt.datetime.now(c.config.zone).date()
    print(f"{'REQUEST':22} {'STATUS':11} {'CALLS':5} {'DUE':10} {'KEEP UNTIL':10} RECIPIENT")
    for r in export.requests(c.sessions):
        exported = r.last("exported")
        keep = exported.detail.get("keep_until", "-") if exported else "-"
        overdue = r.status not in ("disposed", "failed") and (
            r.order.due < today or (keep != "-" and keep < str(today))
        )
        if args.due and not overdue:
            continue
        flag = "  OVERDUE" if overdue else ""
        o = r.order
        print(f"{r.id:22} {r.status:11} {len(o.calls):5} {o.due} {keep:10} {o.recipient}{flag}")
    return 0


@guarded
def cmd_export_provide(args: argparse.Namespace) -> int:
    c = ctx(args)
    export.provide(
        c.sessions, c.people, sign_in(c, args, "record a provision"), args.request, args.to, args.medium
    )
    return 0


@guarded
def cmd_export_dispose(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "record a disposal")
    export.dispose(c.sessions, c.people, actor, args.request, args.how, args.note or "")
    return 0


# -- forms -----------------------------------------------------------------------------------------
@guarded
def cmd_forms_list(args: argparse.Namespace) -> int:
    for name, form in forms.FORMS.items():
        print(f"{name:12} {form.who:17} {form.title}")
    return 0


@guarded
def cmd_forms_render(args: argparse.Namespace) -> int:
    c = ctx(args)
    zone = c.config.zone
    since = dt.datetime.combine(args.date_from, dt.time(), zone) if args.date_from else None
    until = (
        dt.datetime.combine(args.date_to + dt.timedelta(days=1), dt.time(), zone) if args.date_to else None
    )
    try:
        count = forms.render(
            args.form, c.sessions, c.config, Path(args.out), since=since, until=until, subject=args.request
        )
    except forms.FormError as exc:
        raise UserError(str(exc)) from exc
    print(f"{args.out}: {forms.FORMS[args.form].title}, {count} item(s)")
    return 0


# -- disclosure ------------------------------------------------------------------------------------
@guarded
def cmd_disclosure_open(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "open a disclosure request")
    d = disclosure.open_request(
        c.people,
        c.sessions,
        c.config,
        actor,
        number=args.number,
        first=args.date_from,
        last=args.date_to,
        requester=args.requester,
        contact=args.contact or "",
        identity_check=args.identity_check,
    )
    print(d.id)
    for call in d.calls:
        print(f"  held: {call}")
    return 0


@guarded
def cmd_disclosure_close(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "close a disclosure request")
    released = disclosure.close(c.people, c.sessions, actor, args.request, args.outcome, args.note or "")
    print(f"{args.request}: closed ({args.outcome}); {released} hold(s) released", file=sys.stderr)
    return 0


@guarded
def cmd_disclosure_list(args: argparse.Namespace) -> int:
    c = ctx(args)
    for d in disclosure.listing(c.sessions):
        state = f"closed: {d.closed.detail.get('outcome')}" if d.closed else "OPEN"
        print(f"{d.id:20} {d.opened.detail.get('number', ''):14} {len(d.calls):3} call(s)  {state}")
    return 0


def _order_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--call", action="append", help="a call ID (repeat for several)")
    p.add_argument("--purpose")
    p.add_argument("--basis", help="legal basis, e.g. 個人情報保護法第69条第2項 / 捜査機関からの照会")
    p.add_argument("--recipient")
    p.add_argument("--duties", help="the recipient's duties beyond the standard three")
    p.add_argument("--due", type=_date, help="return or deletion due date")
    p.add_argument("--medium", help="e.g. DVD-R")
    p.add_argument("--recipient-key", help="age1… key: re-encrypt the audio to it instead of plain WAV")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    led = sub.add_parser("ledger", help="the tamper-evident ledger").add_subparsers(
        dest="ledger_cmd", required=True
    )
    v = led.add_parser("verify", help="check the whole chain (and saved checkpoints)")
    v.add_argument("--checkpoint", action="append", help="a checkpoint file saved earlier (repeatable)")
    v.add_argument("--trust-key", help="the base64 public key checkpoints must be signed with")
    v.set_defaults(func=cmd_ledger_verify)
    cp = led.add_parser("checkpoint", help="write a signed checkpoint of the newest row")
    cp.add_argument("--out", help="file to write (default: stdout)")
    cp.add_argument("--publish", action="store_true", help="also publish it, retained, over [mqtt]")
    cp.set_defaults(func=cmd_ledger_checkpoint)
    sh = led.add_parser("show", help="entries, oldest first")
    sh.add_argument("--call")
    sh.add_argument("--subject")
    sh.add_argument("--kind", action="append")
    sh.add_argument("--limit", type=int, default=100)
    sh.set_defaults(func=cmd_ledger_show)

    ex = sub.add_parser("export", help="export copies").add_subparsers(dest="export_cmd", required=True)
    ins = ex.add_parser("instruct", help="order an export (two-person profiles; Saitama 様式第1号)")
    who(ins)
    _order_args(ins)
    ins.set_defaults(func=cmd_export_instruct)
    cr = ex.add_parser("create", help="make an export package (on an instruction, or with its details)")
    who(cr)
    cr.add_argument("--instruction", help="the request ID of the instruction to carry out")
    _order_args(cr)
    cr.add_argument("--out", required=True, help="a new directory for the package")
    cr.set_defaults(func=cmd_export_create)
    ve = ex.add_parser("verify", help="check a package offline (no database, no key)")
    ve.add_argument("package")
    ve.add_argument("--trust-key", help="the base64 public key the package must be signed with")
    ve.set_defaults(func=cmd_export_verify)
    ls = ex.add_parser("list", help="every export and where it stands")
    ls.add_argument("--due", action="store_true", help="only those past their due or keep-until date")
    ls.set_defaults(func=cmd_export_list)
    pr = ex.add_parser("provide", help="record that an export copy was handed over")
    pr.add_argument("request")
    pr.add_argument("--to", required=True)
    pr.add_argument("--medium", default="")
    who(pr)
    pr.set_defaults(func=cmd_export_provide)
    di = ex.add_parser("dispose", help="record that an export copy was returned, deleted or destroyed")
    di.add_argument("request")
    di.add_argument("--how", required=True, choices=("returned", "deleted", "destroyed"))
    di.add_argument("--note")
    who(di)
    di.set_defaults(func=cmd_export_dispose)

    fo = sub.add_parser("forms", help="the regulations' forms as PDF").add_subparsers(
        dest="forms_cmd", required=True
    )
    fo.add_parser("list", help="the forms available").set_defaults(func=cmd_forms_list)
    fr = fo.add_parser("render", help="write one form as PDF, from the ledger")
    fr.add_argument("form", choices=sorted(forms.FORMS))
    fr.add_argument("--out", required=True)
    fr.add_argument("--from", dest="date_from", type=_date, help="first local date")
    fr.add_argument("--to", dest="date_to", type=_date, help="last local date (inclusive)")
    fr.add_argument("--request", help="only this export or disclosure request")
    fr.set_defaults(func=cmd_forms_render)

    dc = sub.add_parser("disclosure", help="disclosure requests (開示請求)").add_subparsers(
        dest="disclosure_cmd", required=True
    )
    do = dc.add_parser("open", help="find a caller's recordings, hold them, record the identity check")
    who(do)
    do.add_argument("--number", required=True, help="the requester's telephone number, any spelling")
    do.add_argument("--from", dest="date_from", type=_date, required=True)
    do.add_argument("--to", dest="date_to", type=_date, required=True)
    do.add_argument("--requester", required=True, help="the requester's name")
    do.add_argument("--contact", help="address or other contact")
    do.add_argument("--identity-check", required=True, help="how identity was checked, e.g. 運転免許証")
    do.set_defaults(func=cmd_disclosure_open)
    dx = dc.add_parser("close", help="record the outcome and release the holds")
    who(dx)
    dx.add_argument("request")
    dx.add_argument("--outcome", required=True, choices=disclosure.OUTCOMES)
    dx.add_argument("--note")
    dx.set_defaults(func=cmd_disclosure_close)
    dc.add_parser("list", help="open and closed requests").set_defaults(func=cmd_disclosure_list)
