"""``recorderctl ledger|export|forms|disclosure``: the regulation records (docs/ledger.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from recorderd.cli.common import EXIT_CHECK_FAILED, App, local_date, local_time, who
from recorderd.config import Config
from recorderd.errors import AccessError
from recorderd.service import UserError
from recorderd.service import records as service
from recorderd.service.checkpoints import mqtt_client
from storage import ledger, signing
from storage.checkpoints import MQTT_TOPIC as LEDGER_CHECKPOINT_TOPIC

__all__ = ["register"]


# -- ledger ----------------------------------------------------------------------------------------
def cmd_ledger_verify(app: App) -> int:
    a = app.args
    checkpoints = []
    for path in a.checkpoint or []:
        try:
            checkpoints.append(ledger.Checkpoint.from_json(Path(path).read_text("utf-8"), a.trust_key))
        except signing.SigningError as exc:
            print(f"FAIL {path}: {exc}")
            return EXIT_CHECK_FAILED
    done = service.verify_ledger(
        app.service(), app.sign_in(), checkpoints, trusted_key=a.trust_key, search=not a.no_search
    )
    report = done.report
    for p in report.problems:
        print(f"FAIL row {p.seq}: {p.message}")
    for note in done.notes:
        print(f"note: {note}")
    if done.newest is not None and done.age_s is not None:
        cp = done.newest.checkpoint
        age, source = _age(done.age_s), done.newest.source
        print(f"newest checkpoint: row {cp.seq}, signed {cp.at} ({age} old), from {source}")
    else:
        where = ", ".join(done.searched) or "no [ledger] checkpoint_dirs and no [mqtt] configured"
        print(f"no checkpoint found (looked in: {where}): a rollback or a rewrite of the tail cannot be seen")
    print(
        f"{report.checked} entries checked, head row {report.head_seq} {report.head_hash[:16]}…, "
        f"{len(report.problems)} problem(s)"
    )
    return 0 if report.ok else EXIT_CHECK_FAILED


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days"


async def _publish(config: Config, payload: str) -> None:
    assert config.mqtt is not None
    async with mqtt_client(config, 10) as client:
        topic = f"{config.mqtt.topic_prefix}/{LEDGER_CHECKPOINT_TOPIC}"
        await client.publish(topic, payload, qos=1, retain=True)


def cmd_ledger_checkpoint(app: App) -> int:
    a = app.args
    svc = app.service()
    if a.publish and svc.config.mqtt is None:
        raise UserError("--publish needs an [mqtt] section in the config")

    def publish(text: str) -> None:
        asyncio.run(_publish(svc.config, text))

    cp = service.checkpoint(svc, app.sign_in(), publish=publish if a.publish else None, out=a.out)
    text = cp.to_json()
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(f"checkpoint of row {cp.seq}, signed by {signing.fingerprint(cp.public_key)}", file=sys.stderr)
    return 0


def cmd_ledger_show(app: App) -> int:
    a = app.args
    svc = app.service()
    found = service.show_ledger(
        svc, app.sign_in(), kinds=a.kind, call=a.call, subject=a.subject, limit=a.limit
    )
    for e in found:
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
        print(
            f"{e.seq:6} {e.time.astimezone(svc.config.zone):%Y-%m-%d %H:%M:%S} {e.kind:20} {e.actor:14} "
            f"{(e.call_id or '-')[:8]:8} {e.subject or '-'} {detail}"
        )
    return 0


# -- export ----------------------------------------------------------------------------------------
def _order(a: argparse.Namespace) -> service.Order:
    if not (a.call and a.purpose and a.basis and a.recipient and a.due):
        raise AccessError("give --call, --purpose, --basis, --recipient and --due (or --instruction)")
    return service.Order(
        a.call, a.purpose, a.basis, a.recipient, a.duties or "", a.due, a.medium or "", a.recipient_key
    )


def cmd_export_instruct(app: App) -> int:
    print(service.instruct_export(app.service(), app.sign_in(), _order(app.args)))
    return 0


def cmd_export_relay(app: App) -> int:
    a, svc = app.args, app.service()
    first, last = (t.replace(tzinfo=svc.config.zone) for t in (a.calls_from, a.calls_to))
    service.relay_export(svc, app.sign_in(), a.instruction, a.handler, first, last)
    span = f"{a.calls_from:%Y-%m-%d %H:%M} - {a.calls_to:%Y-%m-%d %H:%M}"
    print(f"{a.instruction}: passed on to {a.handler} ({span})")
    return 0


def cmd_export_create(app: App) -> int:
    a = app.args
    order = None if a.instruction else _order(a)
    request_id, out = service.create_export(
        app.service(), app.sign_in(), Path(a.out), order=order, instruction=a.instruction
    )
    print(f"{request_id}: package written to {out}")
    return 0


def cmd_export_verify(app: App) -> int:
    """Offline, by whoever received the package: no catalogue, no key, no sign-in."""
    a = app.args
    info = service.verify_package(Path(a.package), trusted_key=a.trust_key)
    for p in info.problems:
        print(f"FAIL {p}")
    print(
        f"{a.package}: {info.files_checked} file(s) checked, signed by {info.fingerprint or '?'}, "
        f"{len(info.problems)} problem(s)"
    )
    return 0 if not info.problems else EXIT_CHECK_FAILED


def cmd_export_list(app: App) -> int:
    svc = app.service()
    found = service.list_exports(svc, app.sign_in())
    today = svc.clock().astimezone(svc.config.zone).date()
    print(f"{'REQUEST':22} {'STATUS':11} {'CALLS':5} {'DUE':10} {'KEEP UNTIL':10} RECIPIENT")
    for r in found:
        exported = r.last("exported")
        keep = exported.detail.get("keep_until", "-") if exported else "-"
        overdue = r.status not in ("disposed", "failed") and (
            r.order.due < today or (keep != "-" and keep < str(today))
        )
        if app.args.due and not overdue:
            continue
        o, flag = r.order, "  OVERDUE" if overdue else ""
        print(f"{r.id:22} {r.status:11} {len(o.calls):5} {o.due} {keep:10} {o.recipient}{flag}")
    return 0


def cmd_export_provide(app: App) -> int:
    a = app.args
    service.provide_export(app.service(), app.sign_in(), a.request, a.to, a.medium)
    return 0


def cmd_export_dispose(app: App) -> int:
    a = app.args
    service.dispose_export(app.service(), app.sign_in(), a.request, a.how, a.note or "")
    return 0


# -- forms -----------------------------------------------------------------------------------------
def cmd_forms_list(app: App) -> int:
    for name, form in service.FORMS.items():
        print(f"{name:12} {form.who:17} {form.title}")
    return 0


def cmd_forms_render(app: App) -> int:
    a = app.args
    count = service.render_form(
        app.service(),
        app.sign_in(),
        a.form,
        Path(a.out),
        first=a.date_from,
        last=a.date_to,
        request=a.request,
    )
    print(f"{a.out}: {service.FORMS[a.form].title}, {count} item(s)")
    return 0


# -- disclosure ------------------------------------------------------------------------------------
def cmd_disclosure_open(app: App) -> int:
    a = app.args
    d = service.open_disclosure(
        app.service(),
        app.sign_in(),
        number=a.number,
        first=a.date_from,
        last=a.date_to,
        requester=a.requester,
        contact=a.contact or "",
        identity=service.IdentityCheck(a.id_document, a.id_number, tuple(a.matched_with or ())),
    )
    print(d.id)
    for call in d.calls:
        print(f"  held: {call}")
    return 0


def cmd_disclosure_close(app: App) -> int:
    a = app.args
    released = service.close_disclosure(app.service(), app.sign_in(), a.request, a.outcome, a.note or "")
    print(f"{a.request}: closed ({a.outcome}); {released} hold(s) released", file=sys.stderr)
    return 0


def cmd_disclosure_list(app: App) -> int:
    for d in service.list_disclosures(app.service(), app.sign_in()):
        state = f"closed: {d.closed.detail.get('outcome')}" if d.closed else "OPEN"
        print(f"{d.id:20} {d.opened.detail.get('number', ''):14} {len(d.calls):3} call(s)  {state}")
    return 0


def _order_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--call", action="append", help="a call ID (repeat for several)")
    p.add_argument("--purpose")
    p.add_argument("--basis", help="legal basis, e.g. 個人情報保護法第69条第2項 / 捜査機関からの照会")
    p.add_argument("--recipient")
    p.add_argument("--duties", help="the recipient's duties beyond the standard three")
    p.add_argument("--due", type=local_date, help="return or deletion due date")
    p.add_argument("--medium", help="e.g. DVD-R")
    p.add_argument("--recipient-key", help="age1… key: re-encrypt the audio to it instead of plain WAV")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    led = sub.add_parser("ledger", help="the tamper-evident ledger").add_subparsers(
        dest="ledger_cmd", required=True
    )
    v = led.add_parser("verify", help="check the whole chain (and saved checkpoints)")
    who(v)
    v.add_argument("--checkpoint", action="append", help="a checkpoint file saved earlier (repeatable)")
    v.add_argument("--trust-key", help="the base64 public key checkpoints must be signed with")
    v.add_argument(
        "--no-search",
        action="store_true",
        help="only the --checkpoint files, not [ledger] checkpoint_dirs and MQTT",
    )
    v.set_defaults(func=cmd_ledger_verify)
    cp = led.add_parser("checkpoint", help="write a signed checkpoint of the newest row")
    who(cp)
    cp.add_argument("--out", help="file to write (default: stdout)")
    cp.add_argument("--publish", action="store_true", help="also publish it, retained, over [mqtt]")
    cp.set_defaults(func=cmd_ledger_checkpoint)
    sh = led.add_parser("show", help="entries, oldest first")
    who(sh)
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
    rel = ex.add_parser(
        "relay",
        help="pass an instruction on to a named handler, with the calls' date and time (Toyonaka 第8条第2項)",
    )
    who(rel)
    rel.add_argument("instruction", help="the request ID of the manager's instruction")
    rel.add_argument("--handler", required=True, help="the person ID of the handler who is to extract")
    rel.add_argument("--calls-from", type=local_time, required=True, help="YYYY-MM-DD HH:MM (local)")
    rel.add_argument("--calls-to", type=local_time, required=True, help="YYYY-MM-DD HH:MM (local)")
    rel.set_defaults(func=cmd_export_relay)
    cr = ex.add_parser("create", help="make an export package (on an instruction, or with its details)")
    who(cr)
    cr.add_argument("--instruction", help="the request ID of the instruction to carry out")
    _order_args(cr)
    cr.add_argument("--out", required=True, help="a new directory for the package")
    cr.set_defaults(func=cmd_export_create)
    ve = ex.add_parser("verify", help="check a package offline (no database, no key, no sign-in)")
    ve.add_argument("package")
    ve.add_argument("--trust-key", help="the base64 public key the package must be signed with")
    ve.set_defaults(func=cmd_export_verify)
    ls = ex.add_parser("list", help="every export and where it stands")
    who(ls)
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
    fr.add_argument("form", choices=sorted(service.FORMS))
    who(fr)
    fr.add_argument("--out", required=True)
    fr.add_argument("--from", dest="date_from", type=local_date, help="first local date")
    fr.add_argument("--to", dest="date_to", type=local_date, help="last local date (inclusive)")
    fr.add_argument("--request", help="only this export or disclosure request")
    fr.set_defaults(func=cmd_forms_render)

    dc = sub.add_parser("disclosure", help="disclosure requests (開示請求)").add_subparsers(
        dest="disclosure_cmd", required=True
    )
    do = dc.add_parser("open", help="find a caller's recordings, hold them, record the identity check")
    who(do)
    do.add_argument("--number", required=True, help="the requester's telephone number, any spelling")
    do.add_argument("--from", dest="date_from", type=local_date, required=True)
    do.add_argument("--to", dest="date_to", type=local_date, required=True)
    do.add_argument("--requester", required=True, help="the requester's name")
    do.add_argument("--contact", help="address or other contact")
    do.add_argument("--id-document", required=True, choices=service.ID_DOCUMENTS, help="本人確認書類")
    do.add_argument("--id-number", required=True, help="the document's number (only its last 4 are kept)")
    do.add_argument(
        "--matched-with", action="append", choices=service.ID_MATCHES, help="also matched with (repeatable)"
    )
    do.set_defaults(func=cmd_disclosure_open)
    dx = dc.add_parser("close", help="record the outcome and release the holds")
    who(dx)
    dx.add_argument("request")
    dx.add_argument("--outcome", required=True, choices=service.OUTCOMES)
    dx.add_argument("--note")
    dx.set_defaults(func=cmd_disclosure_close)
    dl = dc.add_parser("list", help="open and closed requests")
    who(dl)
    dl.set_defaults(func=cmd_disclosure_list)
