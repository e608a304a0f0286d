"""``recorderctl calls …``, ``play`` and ``verify``: finding, reading, hearing and copying calls."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from recorderd.cli.common import EXIT_CHECK_FAILED, App, local_date, secret, who
from recorderd.errors import AccessError
from recorderd.service import calls as service
from recorderd.service import retention
from storage.models import STATUSES, Call

__all__ = ["describe_call", "format_table", "register"]


def _fmt(ts: dt.datetime | None, zone: dt.tzinfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def format_table(rows: Sequence[Call], zone: dt.tzinfo) -> list[str]:
    out = [f"{'ID':8}  {'STARTED':19}  {'DIR':8}  {'LINE':12}  {'CITY SIDE':13}  {'COUNTERPART':13}  "
           f"{'DUR(s)':>7}  STATUS"]  # fmt: skip
    for r in rows:
        status = r.status + (f":{r.failure_reason}" if r.failure_reason else "")
        dur = f"{r.duration_s:.1f}" if r.duration_s is not None else "-"
        out.append(
            f"{r.id[:8]}  {_fmt(r.started_at, zone)}  {r.direction:8}  {(r.line or '-')[:12]:12}  "
            f"{r.local_number or '-':13}  {r.remote_number or '-':13}  {dur:>7}  {status}"
        )
    return out


def describe_call(r: Call, zone: dt.tzinfo) -> list[str]:
    times = {"started_at", "answered_at", "ended_at", "announcement_started_at"}
    lines = []
    for col in Call.__table__.columns:
        value = getattr(r, col.key)
        shown = _fmt(value, zone) if col.key in times else ("-" if value is None else value)
        lines.append(f"{col.key:24} {shown}")
    return lines


def cmd_list(app: App) -> int:
    a = app.args
    svc = app.service()
    held = {"yes": True, "no": False}.get(a.held) if a.held else None
    query = service.Query(
        a.date_from, a.date_to, a.number, a.line, a.direction, a.status, held, a.limit, a.offset
    )
    rows = service.search(svc, app.sign_in(), query)
    print("\n".join(format_table(rows, svc.config.zone)))
    return 0


def cmd_show(app: App) -> int:
    svc = app.service()
    view = service.show(svc, app.sign_in(), app.args.id)
    zone = svc.config.zone
    lines = describe_call(view.call, zone)
    for h in view.holds:
        state = f"released {_fmt(h.released_at, zone)} by {h.released_by}" if h.released_at else "ACTIVE"
        lines.append(f"{'hold':24} #{h.id} {h.kind} {h.reference} ({h.reason}; by {h.placed_by}) {state}")
    for e in view.entries:
        lines.append(f"{'ledger':24} {e.seq} {_fmt(e.time, zone)} {e.kind} by {e.actor}")
    print("\n".join(lines))
    return 0


def default_player() -> list[str] | None:
    """A local command that plays WAV from its standard input: sox's ``play``, else ``aplay``."""
    if shutil.which("play"):
        return ["play", "-q", "-t", "wav", "-"]
    if shutil.which("aplay"):
        return ["aplay", "-q", "-"]
    return None


def _recovery_identities(app: App) -> Callable[[], list[str]] | None:
    """Recovery: a passphrase-protected identity file instead of the person's key copy."""
    a = app.args
    if not a.identity:
        return None

    def open_identity() -> list[str]:
        phrase = secret(a.identity_passphrase_file, "RECORDERD_IDENTITY_PASSPHRASE", "Identity passphrase: ")
        return service.load_identities(Path(a.identity), phrase)

    return open_identity


def _hear(app: App, out: Path | None) -> int:
    a = app.args
    svc = app.service()
    person = app.sign_in()
    ids = _recovery_identities(app)
    if out is not None:
        done = service.copy(svc, person, a.id, a.purpose, out, identities=ids)
        where = str(out)
    else:
        player = shlex.split(a.player) if a.player else default_player()
        if player is None:
            raise AccessError("no audio player found (sox or alsa-utils)")
        done = service.play(svc, person, a.id, a.purpose, player, identities=ids)
        where = "player"
    note = "" if done.complete else f" (INCOMPLETE: {done.note})"
    print(f"{where}: call {done.call_id} (ledger entry {done.entry.seq}){note}")
    return 0


def cmd_play(app: App) -> int:
    return _hear(app, Path(app.args.out) if app.args.out else None)


def cmd_export_audio(app: App) -> int:
    """A WAV of one call: a copy, with the same rules and ledger entry as ``play --out``."""
    return _hear(app, Path(app.args.out))


def cmd_verify(app: App) -> int:
    checked, problems, elsewhere = service.verify_files(app.service(), app.sign_in())
    for p in problems:
        print(f"FAIL {p.path} (call {p.call_id}): {p.problem}")
    print(f"{checked} file(s) checked, {len(problems)} problem(s)")
    if elsewhere:  # several recorders: each verifies its own files (recorderctl verify there)
        print(f"not checked from here: the recordings held by node(s) {', '.join(elsewhere)}")
    return EXIT_CHECK_FAILED if problems else 0


def cmd_preserve(app: App) -> int:
    a = app.args
    svc = app.service()
    done = retention.preserve_call(
        svc, app.sign_in(), a.id, reason=a.reason, medium=a.medium, reference=a.ref
    )
    e = done.entry
    print(
        f"call {e.call_id} preserved on {done.medium}: {e.path} (catalogue entry {e.id}, "
        f"sha256 {e.sha256[:16]}…); kept until {done.until.astimezone(svc.config.zone):%Y-%m-%d %H:%M} "
        f"{svc.config.timezone}"
    )
    return 0


def cmd_delete(app: App) -> int:
    """A caller's deletion request (Osaka 6-3): exit 1 with what stood in the way when refused."""
    a = app.args
    asked_by = retention.Requester(a.requester, a.contact, a.relation)
    done = retention.delete(
        app.service(), app.sign_in(), a.id, request=a.request, reason=a.reason, requester=asked_by
    )
    if done.done:
        print(
            f"call {done.call_id}: audio deleted on request {a.request}"
            + (f" ({done.note})" if done.note else "")
        )
        return 0
    print(f"call {done.call_id}: deletion request {a.request} REFUSED: {done.note}", file=sys.stderr)
    return EXIT_CHECK_FAILED


def _hear_arguments(p: argparse.ArgumentParser) -> None:
    who(p)
    p.add_argument("--purpose", required=True, help="why you need it (goes into the ledger)")
    p.add_argument(
        "--identity", help="recovery: a passphrase-protected identity file instead of your key copy"
    )
    p.add_argument("--identity-passphrase-file", type=Path)


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    calls = sub.add_parser("calls", help="find, read, copy, preserve and delete calls").add_subparsers(
        dest="calls_command", required=True
    )
    ls = calls.add_parser("list", help="search calls, newest first (ledgered)")
    who(ls)
    ls.add_argument("--from", dest="date_from", type=local_date, help="first local date, YYYY-MM-DD")
    ls.add_argument("--to", dest="date_to", type=local_date, help="last local date, YYYY-MM-DD (inclusive)")
    ls.add_argument("--number", help="either party's number, any spelling (full-width, hyphens, +81)")
    ls.add_argument("--line")
    ls.add_argument("--direction", choices=("inbound", "outbound"))
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument(
        "--held", choices=("yes", "no"), help="only calls with (yes) or without (no) an active hold"
    )
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--offset", type=int, default=0, help="skip this many (the next page)")
    ls.set_defaults(func=cmd_list)
    sh = calls.add_parser("show", help="every recorded fact of one call, its holds and ledger entries")
    sh.add_argument("id")
    who(sh)
    sh.set_defaults(func=cmd_show)
    ex = calls.add_parser(
        "export-audio", help="decrypt one call's audio to a WAV file (a copy: as 'play --out')"
    )
    ex.add_argument("id")
    ex.add_argument("--out", required=True)
    _hear_arguments(ex)
    ex.set_defaults(func=cmd_export_audio)
    p = calls.add_parser("preserve", help="copy a call, still encrypted, to the preservation store")
    p.add_argument("id")
    who(p)
    p.add_argument("--reason", required=True)
    p.add_argument("--medium", help="the medium's label (default: [retention.preservation] medium)")
    p.add_argument("--ref", help="the application's reference (Osaka form 1)")
    p.set_defaults(func=cmd_preserve)
    d = calls.add_parser("delete", help="delete a call's audio on request, unless held or preserved")
    d.add_argument("id")
    who(d)
    d.add_argument("--request", required=True, help="the deletion request's reference (Osaka form 2)")
    d.add_argument("--reason", required=True)
    d.add_argument("--requester", required=True, help="who asked for the deletion: their name (form 2)")
    d.add_argument("--contact", required=True, help="the requester's telephone number or address")
    d.add_argument(
        "--relation",
        choices=retention.RELATIONS,
        default="本人",
        help="the requester is the caller (本人, the default) or acts for them (代理人)",
    )
    d.set_defaults(func=cmd_delete)

    pl = sub.add_parser("play", help="hear a recording (your password and a purpose; ledgered first)")
    pl.add_argument("id")
    _hear_arguments(pl)
    pl.add_argument("--out", help="write a WAV file instead of playing (a copy: needs the 'copy' permission)")
    pl.add_argument("--player", help="command reading WAV on stdin (default: sox 'play', else 'aplay')")
    pl.set_defaults(func=cmd_play)

    v = sub.add_parser("verify", help="re-hash every recording file against the catalogue")
    who(v)
    v.set_defaults(func=cmd_verify)
