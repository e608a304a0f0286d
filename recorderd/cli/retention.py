"""``recorderctl retention|holds`` and ``recorderctl calls preserve|delete`` (docs/retention.md).

    recorderctl retention plan [--until DATE] [--calls]      what goes when, and why
    recorderctl retention report --from DATE --to DATE       what was deleted (--all: every action)
    recorderctl retention catalogue [--medium LABEL]         preserved copies (Osaka form 4)
    recorderctl retention confirm-clock --by WHO             after a clock-jump alert, once checked
    recorderctl holds add ID... | --number N --from D --to D  --kind K --ref REF --reason TEXT
    recorderctl holds list [--all] [--call ID] [--ref REF]
    recorderctl holds release HOLD_ID... | --ref REF  --reason TEXT
    recorderctl calls preserve ID --reason TEXT [--medium LABEL] [--ref REF]
    recorderctl calls delete ID --request REF --reason TEXT  (refused, showing the hold, when held)

Changes are written to the retention log in the same transaction as the change itself.
Exit status: 0 done, 1 refused (held, preserved, nothing to delete), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

import structlog
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config, ConfigError, load_config
from recorderd.numbers import normalise
from recorderd.retention.engine import Retention
from recorderd.retention.report import catalogue, plan, report
from storage import erase, holds, retention_log
from storage.catalog import AmbiguousId, get_call, list_calls
from storage.db import open_database
from storage.holds import HoldError
from storage.models import HOLD_KINDS, Call, Hold, Preservation
from storage.preserve import PreserveError, Request, live_copies, preserve
from storage.retention import schedule

Command = Callable[[argparse.Namespace], int]


class CliError(Exception):
    pass


def _guard(fn: Command) -> Command:
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (CliError, ConfigError, HoldError, PreserveError, AmbiguousId) as exc:
            print(f"recorderctl: {exc}", file=sys.stderr)
            return 2

    return run


def _audit(event: str, **fields: object) -> None:
    """One structlog line on stderr per change (the authoritative record is the retention log).

    A logger of its own, made per call: recorderctl leaves the process-wide logging alone.
    """
    logger = structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ],
    )
    logger.info(event, logger="recorderctl.retention", **fields)


def _hold_facts(h: Hold) -> dict[str, object]:
    return {"hold_id": h.id, "call_id": h.call_id, "kind": h.kind, "reference": h.reference}


def _open(args: argparse.Namespace) -> tuple[Config, sessionmaker[Session]]:
    config = load_config(Path(args.config))
    _engine, sessions = open_database(config.db_url)
    return config, sessions


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _who(args: argparse.Namespace) -> str:
    return str(args.by or os.environ.get("SUDO_USER") or getpass.getuser())


def _day(text: str, zone: dt.tzinfo) -> dt.datetime:
    """00:00 local of a YYYY-MM-DD date, as an aware datetime."""
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), zone)
    except ValueError as exc:
        raise CliError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _call(s: Session, ident: str) -> Call:
    row = get_call(s, ident)
    if row is None:
        raise CliError(f"no call {ident!r}")
    return row


# -- retention -----------------------------------------------------------------------------------
@_guard
def cmd_plan(args: argparse.Namespace) -> int:
    config, sessions = _open(args)
    now = _now()
    until = (
        _day(args.until, config.zone) + dt.timedelta(days=1) if args.until else now + dt.timedelta(days=31)
    )
    with sessions() as s:
        print("\n".join(plan(config, Retention(config, sessions), s, now, until, calls=args.calls)))
    return 0


@_guard
def cmd_report(args: argparse.Namespace) -> int:
    config, sessions = _open(args)
    start = _day(args.date_from, config.zone)
    end = _day(args.date_to, config.zone) + dt.timedelta(days=1)
    with sessions() as s:
        print("\n".join(report(config, s, start, end, everything=args.all)))
    return 0


@_guard
def cmd_catalogue(args: argparse.Namespace) -> int:
    config, sessions = _open(args)
    with sessions() as s:
        q = s.query(Preservation).order_by(Preservation.id)
        if args.medium:
            q = q.filter(Preservation.medium == args.medium)
        if not args.all:
            q = q.filter(Preservation.destroyed_at.is_(None))
        print("\n".join(catalogue(config, q.all())))
    return 0


@_guard
def cmd_confirm_clock(args: argparse.Namespace) -> int:
    _config, sessions = _open(args)
    now = _now()
    with erase.immediate(sessions) as s:
        retention_log.set_time(s, "clock_confirmed_at", now)
        retention_log.append(
            s,
            at=now,
            action="clock_confirmed",
            actor=_who(args),
            rule="operator",
            detail={"confirmed_at": now},
        )
    _audit("retention_clock_confirmed", by=_who(args), at=now)
    print(f"clock confirmed at {now:%Y-%m-%d %H:%M:%S}Z; the reaper deletes again from its next pass")
    return 0


# -- holds ---------------------------------------------------------------------------------------
@_guard
def cmd_holds_add(args: argparse.Namespace) -> int:
    config, sessions = _open(args)
    zone, now, by = config.zone, _now(), _who(args)
    with erase.immediate(sessions) as s:
        if args.number:
            number = normalise(args.number)
            if number is None or not (args.date_from and args.date_to) or args.ids:
                raise CliError("--number needs a telephone number, --from and --to, and no call IDs")
            start, end = _day(args.date_from, zone), _day(args.date_to, zone) + dt.timedelta(days=1)
            ids = [c.id for c in list_calls(s, start=start, end=end, number=number, limit=100_000)]
        elif args.ids:
            ids = [_call(s, i).id for i in args.ids]  # all found, or nothing is held
        else:
            raise CliError("name the calls: IDs, or --number with --from and --to")
        placed = [
            holds.place(s, i, kind=args.kind, reference=args.ref, reason=args.reason, by=by, at=now)
            for i in ids
        ]
        lines = [f"hold #{h.id} on call {h.call_id} ({h.kind} {h.reference})" for h in placed]
        facts = [
            {"hold_id": h.id, "call_id": h.call_id, "kind": h.kind, "reference": h.reference} for h in placed
        ]
    for f in facts:
        _audit("hold_placed", by=by, **f)
    print("\n".join(lines) if lines else "no call matched: nothing held")
    return 0


@_guard
def cmd_holds_list(args: argparse.Namespace) -> int:
    config, sessions = _open(args)
    zone = config.zone
    with sessions() as s:
        call_id = _call(s, args.call).id if args.call else None
        rows = holds.listing(s, include_released=args.all, call_id=call_id, reference=args.ref)
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


@_guard
def cmd_holds_release(args: argparse.Namespace) -> int:
    _config, sessions = _open(args)
    now, by = _now(), _who(args)
    with erase.immediate(sessions) as s:
        if args.ref:
            ids = [h.id for h in holds.listing(s, reference=args.ref)]
            if not ids:
                raise CliError(f"no active hold with reference {args.ref!r}")
        else:
            ids = args.hold_ids
        if not ids:
            raise CliError("name the holds: HOLD_ID..., or --ref REF")
        released = [holds.release(s, int(i), by=by, reason=args.reason, at=now) for i in ids]
        lines = [f"released hold #{h.id} on call {h.call_id} ({h.kind} {h.reference})" for h in released]
        facts = [
            {"hold_id": h.id, "call_id": h.call_id, "kind": h.kind, "reference": h.reference}
            for h in released
        ]
    for f in facts:
        _audit("hold_released", by=by, **f)
    print("\n".join(lines))
    return 0


# -- calls preserve / delete -----------------------------------------------------------------------
@_guard
def cmd_preserve(args: argparse.Namespace) -> int:
    config, sessions = _open(args)
    pres = config.retention.preservation
    if pres is None:
        raise CliError("no preservation store configured ([retention.preservation] dir and policy)")
    now, zone = _now(), config.zone
    with sessions() as s:
        row = _call(s, args.id)
    pol = config.retention.policies[pres.policy]
    anchor = now if pol.anchor == "preservation" else row.started_at
    until = schedule(
        config.retention.policy(pres.policy),
        anchor,
        zone,
        fiscal_year_start_month=config.retention.fiscal_year_start_month,
    ).expires_at
    # No party numbers: the catalogue line is also written, in clear, on the medium itself.
    end = f"-{row.ended_at.astimezone(zone):%H:%M}" if row.ended_at else ""
    content = (
        f"{row.direction} call, line {row.line or '-'}, {row.started_at.astimezone(zone):%Y-%m-%d %H:%M}{end}"
    )
    medium = args.medium or pres.medium
    if not medium:
        raise CliError("name the medium: --medium LABEL (or [retention.preservation] medium)")
    req = Request(row.id, medium, content, _who(args), args.reason, args.ref, pres.policy, until)
    entry = preserve(sessions, req, data_dir=config.data_dir, store_dir=pres.dir, now=now)
    _audit("call_preserved", call_id=row.id, medium=medium, entry=entry.id, by=req.by, until=until)
    print(
        f"call {row.id} preserved on {medium}: {entry.path} (catalogue entry {entry.id}, "
        f"sha256 {entry.sha256[:16]}…); kept until {until.astimezone(zone):%Y-%m-%d %H:%M} {config.timezone}"
    )
    return 0


@_guard
def cmd_delete(args: argparse.Namespace) -> int:
    """A caller's deletion request (Osaka 6-3): delete now unless a hold or a preservation applies."""
    config, sessions = _open(args)
    now, by = _now(), _who(args)
    with sessions() as s:
        row = _call(s, args.id)
        held = holds.active(s, [row.id])
        copies = live_copies(s, row.id)
    blocker = None
    if held:
        blocker = "held: " + "; ".join(
            f"#{h.id} {h.kind} {h.reference} ({h.reason}, by {h.placed_by} "
            f"{h.placed_at.astimezone(config.zone):%Y-%m-%d})"
            for h in held
        )
    elif copies:
        blocker = "preserved: " + "; ".join(f"entry {c.id} on {c.medium} ({c.reason})" for c in copies)
    elif row.audio_path is None:
        blocker = f"no audio to delete (deleted {row.audio_deleted_at or 'never recorded'})"
    if blocker is None and row.audio_path is not None:
        job = erase.Job(
            "delete",
            row.id,
            config.data_dir / row.audio_path,
            row.audio_path,
            "request_delete",
            by,
            rule=f"deletion request {args.request}",
            reference=args.request,
            detail={
                "reason": args.reason,
                "started_at": row.started_at,
                "line": row.line,
                "sha256": row.audio_sha256,
                "bytes": row.audio_bytes,
                "expires_at": row.expires_at,
            },
        )
        [outcome] = erase.remove(sessions, [job], now)
        if outcome.done:
            _audit("recording_deleted", call_id=row.id, rule=job.rule, by=by, note=outcome.note)
            print(
                f"call {row.id}: audio deleted on request {args.request}"
                + (f" ({outcome.note})" if outcome.note else "")
            )
            return 0
        blocker = outcome.note or "not deleted"
    with erase.immediate(sessions) as s:
        retention_log.append(
            s,
            at=now,
            action="request_refused",
            actor=by,
            call_id=row.id,
            rule=f"deletion request {args.request}",
            reference=args.request,
            detail={"reason": args.reason, "refused": blocker},
        )
    _audit("deletion_refused", call_id=row.id, request=args.request, by=by, refused=blocker)
    print(f"call {row.id}: deletion request {args.request} REFUSED: {blocker}", file=sys.stderr)
    return 1


# -- argparse --------------------------------------------------------------------------------------
def _by(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", help="who does this (default: the login name, or $SUDO_USER)")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    calls: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``retention`` and ``holds`` to recorderctl, and ``preserve``/``delete`` under ``calls``."""
    ret = sub.add_parser("retention", help="what is deleted when, and what was").add_subparsers(
        dest="retention_command", required=True
    )
    p = ret.add_parser("plan", help="what goes when, and why")
    p.add_argument("--until", help="last local date, YYYY-MM-DD (default: 31 days from now)")
    p.add_argument("--calls", action="store_true", help="list every call, not only counts")
    p.set_defaults(func=cmd_plan)
    p = ret.add_parser("report", help="what was deleted (the retention log)")
    p.add_argument("--from", dest="date_from", required=True, help="first local date, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, help="last local date, YYYY-MM-DD (inclusive)")
    p.add_argument("--all", action="store_true", help="every action: holds, moves, preservation, policy")
    p.set_defaults(func=cmd_report)
    p = ret.add_parser("catalogue", help="preserved copies and their media (Osaka form 4)")
    p.add_argument("--medium")
    p.add_argument("--all", action="store_true", help="include destroyed copies")
    p.set_defaults(func=cmd_catalogue)
    p = ret.add_parser("confirm-clock", help="the clock is right: let the reaper delete again")
    _by(p)
    p.set_defaults(func=cmd_confirm_clock)

    hold = sub.add_parser("holds", help="keep calls past their expiry").add_subparsers(
        dest="holds_command", required=True
    )
    p = hold.add_parser("add", help="hold calls (by ID, or a caller's calls by number and dates)")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--number", help="hold every call with this party number in --from..--to")
    p.add_argument("--from", dest="date_from")
    p.add_argument("--to", dest="date_to")
    p.add_argument("--kind", required=True, choices=HOLD_KINDS)
    p.add_argument("--ref", required=True, help="the request's or order's reference")
    p.add_argument("--reason", required=True)
    _by(p)
    p.set_defaults(func=cmd_holds_add)
    p = hold.add_parser("list", help="active holds (--all: released ones too)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--call")
    p.add_argument("--ref")
    p.set_defaults(func=cmd_holds_list)
    p = hold.add_parser("release", help="release holds, by number or by reference")
    p.add_argument("hold_ids", nargs="*", metavar="HOLD_ID")
    p.add_argument("--ref", help="release every active hold with this reference")
    p.add_argument("--reason", required=True)
    _by(p)
    p.set_defaults(func=cmd_holds_release)

    p = calls.add_parser("preserve", help="copy a call, still encrypted, to the preservation store")
    p.add_argument("id")
    p.add_argument("--reason", required=True)
    p.add_argument("--medium", help="the medium's label (default: [retention.preservation] medium)")
    p.add_argument("--ref", help="the application's reference (Osaka form 1)")
    _by(p)
    p.set_defaults(func=cmd_preserve)
    p = calls.add_parser("delete", help="delete a call's audio on request, unless held or preserved")
    p.add_argument("id")
    p.add_argument("--request", required=True, help="the deletion request's reference (Osaka form 2)")
    p.add_argument("--reason", required=True)
    _by(p)
    p.set_defaults(func=cmd_delete)
