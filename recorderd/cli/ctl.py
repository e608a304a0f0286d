"""``recorderctl``: administration of a recorderd installation.

Reads the same TOML as the daemon (``--config`` or $RECORDERD_CONFIG) to find the data directory and
the database. Exit status: 0 success, 1 a check failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from announce import PromptError, prepare
from recorderd.cli import people as people_cli
from recorderd.cli import retention as retention_cli
from recorderd.cli.common import read_passphrase
from recorderd.config import Config, ConfigError, load_config
from recorderd.errors import AccessError
from recorderd.numbers import normalise
from recorderd.records.audio import verify_catalogue
from storage.age import AgeDecryptError, encrypt_passphrase_identity, generate_identity
from storage.catalog import AmbiguousId, get_call, list_calls
from storage.db import open_database
from storage.models import STATUSES, Call

DEFAULT_CONFIG = "/etc/recorderd/recorderd.toml"


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config))


def _local_date(text: str, zone: dt.tzinfo) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), zone)
    except ValueError as exc:
        raise SystemExit(f"recorderctl: not a date (YYYY-MM-DD): {text!r}") from exc


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
        lines.append(
            f"{col.key:24} {_fmt(value, zone) if col.key in times else ('-' if value is None else value)}"
        )
    return lines


def cmd_keys_init(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        print(f"recorderctl: {out} exists; refusing to overwrite a key", file=sys.stderr)
        return 2
    passphrase = read_passphrase("New passphrase for the identity: ", file=args.passphrase_file, confirm=True)
    identity, recipient = generate_identity()
    data = encrypt_passphrase_identity(
        f"# recorderd recording key, created {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}\n"
        f"# public key: {recipient}\n{identity}\n",
        passphrase,
        work_factor=args.work_factor,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    print(recipient)
    print(f"identity written to {out} (passphrase-protected); put the line above in the daemon's "
          f"encryption.recipients", file=sys.stderr)  # fmt: skip
    return 0


def cmd_calls_list(args: argparse.Namespace) -> int:
    config = _config(args)
    zone = config.zone
    _engine, sessions = open_database(config.db_url)
    number = normalise(args.number) if args.number else None
    if args.number and number is None:
        print(f"recorderctl: not a telephone number: {args.number!r}", file=sys.stderr)
        return 2
    with sessions() as s:
        rows = list_calls(
            s,
            start=_local_date(args.date_from, zone) if args.date_from else None,
            end=_local_date(args.date_to, zone) + dt.timedelta(days=1) if args.date_to else None,
            number=number,
            line=args.line,
            status=args.status,
            limit=args.limit,
        )
    print("\n".join(format_table(rows, zone)))
    return 0


def _one_call(args: argparse.Namespace, config: Config) -> Call:
    _engine, sessions = open_database(config.db_url)
    with sessions() as s:
        try:
            row = get_call(s, args.id)
        except AmbiguousId as exc:
            raise AccessError(str(exc)) from exc
    if row is None:
        raise AccessError(f"no call {args.id!r}")
    return row


def cmd_calls_show(args: argparse.Namespace) -> int:
    config = _config(args)
    print("\n".join(describe_call(_one_call(args, config), config.zone)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    config = _config(args)
    _engine, sessions = open_database(config.db_url)
    with sessions() as s:
        checked, problems = verify_catalogue(s, config.data_dir)
    for p in problems:
        print(f"FAIL {p.path} (call {p.call_id}): {p.problem}")
    print(f"{checked} file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_status(args: argparse.Namespace) -> int:
    from recorderd.cli.status import report

    summary, lines, code = report(_config(args))
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    else:
        print("\n".join(lines))
    return code


def cmd_announce_prepare(args: argparse.Namespace) -> int:
    info = prepare(Path(args.input), Path(args.output))
    print(f"{args.output}: {info.sample_rate} Hz, {info.channels} channel, {info.duration_s:.2f} s, "
          f"peak {info.peak_dbfs:.1f} dBFS")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recorderctl", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--config", default=os.environ.get("RECORDERD_CONFIG", DEFAULT_CONFIG), help="daemon TOML")
    sub = p.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="recording keys").add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("init", help="create a passphrase-protected age identity; prints its recipient")
    k.add_argument("--out", required=True, help="where to write the encrypted identity")
    k.add_argument("--passphrase-file", type=Path)
    k.add_argument("--work-factor", type=int, default=18, help="scrypt log2(N), as age (default 18)")
    k.set_defaults(func=cmd_keys_init)

    calls = sub.add_parser("calls", help="find and read calls").add_subparsers(
        dest="calls_command", required=True
    )
    ls = calls.add_parser("list", help="list calls, newest first")
    ls.add_argument("--from", dest="date_from", help="first local date, YYYY-MM-DD")
    ls.add_argument("--to", dest="date_to", help="last local date, YYYY-MM-DD (inclusive)")
    ls.add_argument("--number", help="either party's number, any spelling")
    ls.add_argument("--line")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--limit", type=int, default=200)
    ls.set_defaults(func=cmd_calls_list)
    sh = calls.add_parser("show", help="every recorded fact of one call")
    sh.add_argument("id")
    sh.set_defaults(func=cmd_calls_show)
    ex = calls.add_parser("export-audio", help="decrypt one call's audio to a WAV file (as 'play --out')")
    ex.add_argument("id")
    ex.add_argument("--out", required=True)
    people_cli.add_play_arguments(ex)  # --as and --purpose: signed in and ledgered before decrypting
    ex.set_defaults(func=people_cli.cmd_export_audio)

    st = sub.add_parser("status", help="daemon up and healthy? PBX link, calls, disk, alerts (exit 1 if not)")
    st.add_argument("--json", action="store_true", help="the daemon's status file and the measured figures")
    st.set_defaults(func=cmd_status)

    people_cli.register(sub)  # users, keyring, play, ledger, export, forms, disclosure (issue 4)
    retention_cli.register(sub, calls)  # retention, holds, calls preserve|delete (issue 3)
    v = sub.add_parser("verify", help="re-hash every recording file against the catalogue")
    v.set_defaults(func=cmd_verify)

    ann = sub.add_parser("announce", help="announcement prompts").add_subparsers(
        dest="ann_command", required=True
    )
    pr = ann.add_parser("prepare", help="convert any WAV/FLAC to 8 kHz mono 16-bit WAV for Asterisk")
    pr.add_argument("input")
    pr.add_argument("output")
    pr.set_defaults(func=cmd_announce_prepare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, AccessError, PromptError) as exc:
        print(f"recorderctl: {exc}", file=sys.stderr)
        return 2
    except AgeDecryptError as exc:
        print(f"recorderctl: decryption failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
