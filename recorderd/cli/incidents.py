"""``recorderctl incidents list|open|ack|report``: the incident book (Kawasaki 第7条; every profile)."""

from __future__ import annotations

import argparse
from pathlib import Path

from recorderd.cli.common import App, who
from recorderd.service import incidents as service


def cmd_list(app: App) -> int:
    svc = app.service()
    found = service.list_incidents(svc, app.sign_in(), everything=app.args.all)
    print(f"{'INCIDENT':20} {'RAISED':16} {'KIND':22} {'STATE':26} SUMMARY")
    for i in found:
        raised = i.raised.time.astimezone(svc.config.zone)
        state = "OPEN" if i.open else f"acknowledged by {i.acknowledged.actor}"  # type: ignore[union-attr]
        print(f"{i.id:20} {raised:%Y-%m-%d %H:%M} {i.kind:22} {state:26} {i.summary}")
    if not found:
        print("no open incidents" if not app.args.all else "no incidents")
    return 0


def cmd_open(app: App) -> int:
    a = app.args
    found = service.open_incident(app.service(), app.sign_in(), a.kind, a.what)
    print(f"{found.id}: opened ({found.kind}); print the report: recorderctl incidents report {found.id}")
    return 0


def cmd_ack(app: App) -> int:
    a = app.args
    found = service.acknowledge(app.service(), app.sign_in(), a.incident, a.note)
    print(f"{found.id}: acknowledged")
    return 0


def cmd_report(app: App) -> int:
    a = app.args
    service.report(app.service(), app.sign_in(), a.incident, Path(a.out))
    print(f"{a.incident}: 事故報告書 written to {a.out}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inc = sub.add_parser("incidents", help="incidents: list, report by hand, acknowledge, print (事故報告)")
    cmds = inc.add_subparsers(dest="incidents_cmd", required=True)
    ls = cmds.add_parser("list", help="open incidents (--all: every one)")
    who(ls)
    ls.add_argument("--all", action="store_true")
    ls.set_defaults(func=cmd_list)
    op = cmds.add_parser("open", help="report a leak, loss, theft or other incident")
    who(op)
    op.add_argument("--kind", required=True, choices=service.BY_HAND)
    op.add_argument("--what", required=True, help="what happened, where, when it was noticed")
    op.set_defaults(func=cmd_open)
    ack = cmds.add_parser("ack", help="acknowledge an incident, saying what was done")
    who(ack)
    ack.add_argument("incident")
    ack.add_argument("--note", required=True, help="what was done (printed on the report)")
    ack.set_defaults(func=cmd_ack)
    rep = cmds.add_parser("report", help="print the incident report (事故報告書) as PDF")
    who(rep)
    rep.add_argument("incident")
    rep.add_argument("--out", required=True, help="the PDF to write")
    rep.set_defaults(func=cmd_report)
