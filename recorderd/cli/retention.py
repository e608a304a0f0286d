"""``recorderctl retention …`` and ``recorderctl holds …`` (docs/retention.md).

    recorderctl retention plan [--until DATE] [--calls]      what goes when, and why
    recorderctl retention report --from DATE --to DATE       what was deleted (--all: every action)
    recorderctl retention catalogue [--medium LABEL]         preserved copies (Osaka form 4)
    recorderctl retention confirm-clock                      after a clock-jump alert, once checked
    recorderctl holds add ID... | --number N --from D --to D  --kind K --ref REF --reason TEXT
    recorderctl holds list [--all] [--call ID] [--ref REF]
    recorderctl holds release HOLD_ID... | --ref REF  --reason TEXT

Every command signs in (``--as ID``); who did it is the signed-in person, never a name typed here.
"""

from __future__ import annotations

import argparse

from recorderd.cli.common import App, local_date, who
from recorderd.service import retention as service
from storage.models import HOLD_KINDS

__all__ = ["register"]


def cmd_plan(app: App) -> int:
    a = app.args
    print("\n".join(service.plan(app.service(), app.sign_in(), until=a.until, calls=a.calls)))
    return 0


def cmd_report(app: App) -> int:
    a = app.args
    print("\n".join(service.report(app.service(), app.sign_in(), a.date_from, a.date_to, everything=a.all)))
    return 0


def cmd_catalogue(app: App) -> int:
    a = app.args
    print("\n".join(service.catalogue(app.service(), app.sign_in(), medium=a.medium, destroyed_too=a.all)))
    return 0


def cmd_confirm_clock(app: App) -> int:
    now = service.confirm_clock(app.service(), app.sign_in())
    print(f"clock confirmed at {now:%Y-%m-%d %H:%M:%S}Z; the reaper deletes again from its next pass")
    return 0


def cmd_holds_add(app: App) -> int:
    a = app.args
    placed = service.add_holds(
        app.service(),
        app.sign_in(),
        calls=a.ids,
        number=a.number,
        first=a.date_from,
        last=a.date_to,
        kind=a.kind,
        reference=a.ref,
        reason=a.reason,
    )
    lines = [f"hold #{h.id} on call {h.call_id} ({h.kind} {h.reference})" for h in placed]
    print("\n".join(lines) if lines else "no call matched: nothing held")
    return 0


def cmd_holds_list(app: App) -> int:
    a = app.args
    svc = app.service()
    rows = service.list_holds(svc, app.sign_in(), include_released=a.all, call=a.call, reference=a.ref)
    zone = svc.config.zone
    print(f"{'HOLD':5}  {'CALL':8}  {'KIND':13}  {'REFERENCE':16}  {'PLACED':16}  {'BY':10}  REASON")
    for h in rows:
        released = (
            f"  [released {h.released_at.astimezone(zone):%Y-%m-%d} by {h.released_by}]"
            if h.released_at
            else ""
        )
        print(
            f"{h.id:5}  {h.call_id[:8]}  {h.kind:13}  {h.reference[:16]:16}  "
            f"{h.placed_at.astimezone(zone):%Y-%m-%d %H:%M}  {h.placed_by[:10]:10}  {h.reason}{released}"
        )
    return 0


def cmd_holds_release(app: App) -> int:
    a = app.args
    released = service.release_holds(
        app.service(), app.sign_in(), hold_ids=a.hold_ids, reference=a.ref, reason=a.reason
    )
    print("\n".join(f"released hold #{h.id} on call {h.call_id} ({h.kind} {h.reference})" for h in released))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ret = sub.add_parser("retention", help="what is deleted when, and what was").add_subparsers(
        dest="retention_command", required=True
    )
    p = ret.add_parser("plan", help="what goes when, and why")
    who(p)
    p.add_argument("--until", type=local_date, help="last local date, YYYY-MM-DD (default: 31 days from now)")
    p.add_argument("--calls", action="store_true", help="list every call, not only counts")
    p.set_defaults(func=cmd_plan)
    p = ret.add_parser("report", help="what was deleted (the retention log)")
    who(p)
    p.add_argument("--from", dest="date_from", type=local_date, required=True, help="first local date")
    p.add_argument("--to", dest="date_to", type=local_date, required=True, help="last local date (inclusive)")
    p.add_argument("--all", action="store_true", help="every action: holds, moves, preservation, policy")
    p.set_defaults(func=cmd_report)
    p = ret.add_parser("catalogue", help="preserved copies and their media (Osaka form 4)")
    who(p)
    p.add_argument("--medium")
    p.add_argument("--all", action="store_true", help="include destroyed copies")
    p.set_defaults(func=cmd_catalogue)
    p = ret.add_parser("confirm-clock", help="the clock is right: let the reaper delete again")
    who(p)
    p.set_defaults(func=cmd_confirm_clock)

    hold = sub.add_parser("holds", help="keep calls past their expiry").add_subparsers(
        dest="holds_command", required=True
    )
    p = hold.add_parser("add", help="hold calls (by ID, or a caller's calls by number and dates)")
    p.add_argument("ids", nargs="*", metavar="ID")
    who(p)
    p.add_argument("--number", help="hold every call with this party number in --from..--to")
    p.add_argument("--from", dest="date_from", type=local_date)
    p.add_argument("--to", dest="date_to", type=local_date)
    p.add_argument("--kind", required=True, choices=HOLD_KINDS)
    p.add_argument("--ref", required=True, help="the request's or order's reference")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_holds_add)
    p = hold.add_parser("list", help="active holds (--all: released ones too)")
    who(p)
    p.add_argument("--all", action="store_true")
    p.add_argument("--call")
    p.add_argument("--ref")
    p.set_defaults(func=cmd_holds_list)
    p = hold.add_parser("release", help="release holds, by number or by reference")
    p.add_argument("hold_ids", nargs="*", metavar="HOLD_ID", type=int)
    who(p)
    p.add_argument("--ref", help="release every active hold with this reference")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_holds_release)
