"""``recorderctl`` commands about people: users, keyring, play (and, via records_cli, ledger, export,
forms, disclosure). ``register(subparsers)`` is the one hook ctl.py calls.

Passwords come from a file option, else an environment variable (automation and tests), else the
terminal: the acting person's from --password-file / $RECORDERD_PASSWORD, a new one from
--new-password-file / $RECORDERD_NEW_PASSWORD, a key holder's from --key-from-password-file /
$RECORDERD_KEY_PASSWORD.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config, ConfigError, load_config
from recorderd.config.people import ROLE_LABELS, ROLES
from recorderd.errors import AccessError
from recorderd.people.keys import KeyringError, load_identities
from recorderd.people.users import Actor, People, UserError
from recorderd.records.play import default_player, play
from storage import ledger
from storage.age import AgeDecryptError, AgeKeyError, generate_identity, recipient_of
from storage.db import open_database
from storage.holds import HoldError
from storage.signing import SigningError

Command = Callable[[argparse.Namespace], int]


@dataclass
class Ctx:
    config: Config
    sessions: sessionmaker[Session]
    people: People


def ctx(args: argparse.Namespace) -> Ctx:
    config = load_config(Path(args.config))
    _engine, sessions = open_database(config.db_url)
    return Ctx(config, sessions, People(sessions, config))


def secret(path: Path | None, env: str, prompt: str, *, confirm: bool = False) -> str:
    if path is not None:
        return path.read_text(encoding="utf-8").rstrip("\n")
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise UserError(f"{prompt.rstrip(': ')}: no terminal; give a file option or ${env}")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def sign_in(c: Ctx, args: argparse.Namespace, action: str) -> Actor:
    if not args.as_:
        raise UserError("say who you are: --as YOUR-ID")
    password = secret(args.password_file, "RECORDERD_PASSWORD", f"Password for {args.as_}: ")
    return c.people.authenticate(args.as_, password, action=action)


def guarded(fn: Command) -> Command:
    """Refusals are exit 2 with one line naming why; a failed decryption or check is exit 1."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (
            UserError,
            AccessError,
            ConfigError,
            KeyringError,
            SigningError,
            HoldError,
            AgeKeyError,
            ledger.LedgerUnavailable,
        ) as exc:
            print(f"recorderctl: {exc}", file=sys.stderr)
            return 2
        except AgeDecryptError as exc:
            print(f"recorderctl: decryption failed: {exc}", file=sys.stderr)
            return 1

    return run


def who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_", metavar="ID", help="your personal ID")
    p.add_argument("--password-file", type=Path, help="your password (else $RECORDERD_PASSWORD or a prompt)")


# -- users ---------------------------------------------------------------------------------------
def _key_source(c: Ctx, args: argparse.Namespace, actor: Actor | None, *, may_create: bool) -> list[str]:
    """The recording identities for a new key copy: a fresh key, an imported one, or a holder's copy."""
    if may_create and (args.new_key or args.import_identity):
        if c.people.keyring.holders():
            raise UserError("a recording key exists already: copy it from a holder with --key-from")
        if args.import_identity:
            phrase = secret(
                args.identity_passphrase_file, "RECORDERD_IDENTITY_PASSPHRASE", "Identity passphrase: "
            )
            ids = load_identities(Path(args.import_identity), phrase)
        else:
            ids = [generate_identity()[0]]
        for r in (recipient_of(i) for i in ids):
            print(r)  # the public key for encryption.recipients
            if r not in c.config.encryption.recipients:
                print(
                    f"note: put {r} in [encryption] recipients so recordings are encrypted to it",
                    file=sys.stderr,
                )
        return ids
    holder = args.key_from or (actor.id if actor is not None and c.people.keyring.has(actor.id) else None)
    if holder is None:
        hint = " or --new-key for the first key" if may_create else ""
        raise UserError(f"this role holds a key copy: --key-from HOLDER (someone who holds one){hint}")
    if actor is not None and holder == actor.id:
        return c.people.keyring.unlock(holder, actor.password)
    pw = secret(args.key_from_password_file, "RECORDERD_KEY_PASSWORD", f"Password of key holder {holder}: ")
    source = c.people.authenticate(holder, pw, action="copy the recording key")
    return c.people.keyring.unlock(source.id, source.password)


@guarded
def cmd_users_add(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "add a person") if args.as_ else None
    if actor is not None:
        c.people.require(actor, "manage_users", action="add a person")
    key = _key_source(c, args, actor, may_create=True) if c.config.people.holds_key(args.role) else None
    first = secret(
        args.new_password_file, "RECORDERD_NEW_PASSWORD", f"First password for {args.id}: ", confirm=True
    )
    with_key = c.people.add(actor, args.id, args.name, args.role, first, key=key)
    print(
        f"{args.id} added as {ROLE_LABELS[args.role]} ({args.role}); "
        f"{'holds a key copy' if with_key else 'holds no key copy'}; must change the password at first use",
        file=sys.stderr,
    )
    return 0


@guarded
def cmd_users_passwd(args: argparse.Namespace) -> int:
    c = ctx(args)
    if args.reset:
        actor = sign_in(c, args, "reset a password")
        c.people.require(actor, "manage_users", action="reset a password")  # before asking a holder
        target = c.people.get(args.id)
        needs_key = target is not None and c.config.people.holds_key(target.role)
        key = _key_source(c, args, actor, may_create=False) if needs_key else None
        new = secret(
            args.new_password_file, "RECORDERD_NEW_PASSWORD", f"New password for {args.id}: ", confirm=True
        )
        c.people.reset_password(actor, args.id, new, key=key)
        print(f"{args.id}: temporary password set; it must be changed at first use", file=sys.stderr)
        return 0
    old = secret(args.password_file, "RECORDERD_PASSWORD", f"Current password for {args.id}: ")
    new = secret(args.new_password_file, "RECORDERD_NEW_PASSWORD", "New password: ", confirm=True)
    c.people.change_password(args.id, old, new)
    print(f"{args.id}: password changed", file=sys.stderr)
    return 0


@guarded
def cmd_users_disable(args: argparse.Namespace) -> int:
    c = ctx(args)
    had = c.people.disable(sign_in(c, args, "disable an account"), args.id)
    print(f"{args.id}: disabled{'; key copy destroyed' if had else ''}", file=sys.stderr)
    return 0


@guarded
def cmd_users_unlock(args: argparse.Namespace) -> int:
    c = ctx(args)
    c.people.unlock(sign_in(c, args, "unlock an account"), args.id)
    return 0


@guarded
def cmd_users_list(args: argparse.Namespace) -> int:
    c = ctx(args)
    zone = c.config.zone
    print(f"{'ID':16} {'ROLE':20} {'KEY':4} {'PASSWORD SET':16} {'STATE':24} NAME")
    for p in c.people.all():
        state = (
            "disabled"
            if p.disabled_at
            else "locked"
            if p.locked_at
            else ("must change password" if p.must_change or c.people.expired(p) else "active")
        )
        key = "yes" if c.people.keyring.has(p.id) else "-"
        print(
            f"{p.id:16} {p.role:20} {key:4} {p.password_changed_at.astimezone(zone):%Y-%m-%d %H:%M} "
            f"{state:24} {p.name}"
        )
    return 0


# -- keyring ---------------------------------------------------------------------------------------
@guarded
def cmd_keyring_list(args: argparse.Namespace) -> int:
    c = ctx(args)
    for holder in c.people.keyring.holders():
        print(holder)
    return 0


@guarded
def cmd_keyring_destroy(args: argparse.Namespace) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "destroy every key copy")
    c.people.require(actor, "manage_users", action="destroy every key copy")
    if args.confirm != "destroy every key":
        raise UserError("this makes every recording unreadable for ever: add --confirm 'destroy every key'")
    holders = c.people.keyring.holders()
    ledger.append_committed(c.sessions, "keys_destroyed", actor.id, detail={"holders": holders})
    gone = c.people.keyring.destroy_all()
    print(
        f"destroyed {len(gone)} key copies ({', '.join(gone) or 'none'}); destroy any offline backup "
        "of the recording key too (docs/keys.md)",
        file=sys.stderr,
    )
    return 0


# -- play ------------------------------------------------------------------------------------------
def _play(args: argparse.Namespace, *, out: Path | None) -> int:
    c = ctx(args)
    actor = sign_in(c, args, "play a recording")
    identities = None
    if args.identity:  # recovery: an identity file instead of the person's key copy, still ledgered
        phrase = secret(
            args.identity_passphrase_file, "RECORDERD_IDENTITY_PASSPHRASE", "Identity passphrase: "
        )
        identities = load_identities(Path(args.identity), phrase)
    player = shlex.split(args.player) if getattr(args, "player", None) else None
    if out is None and player is None:
        player = default_player()
    done = play(
        c.people,
        c.sessions,
        c.config,
        actor,
        args.id,
        args.purpose,
        out=out,
        player=player,
        identities=identities,
    )
    where = str(out) if out else "player"
    print(
        f"{where}: call {done.call_id} (ledger entry {done.entry.seq})"
        f"{'' if done.complete else ' (INCOMPLETE: ' + str(done.note) + ')'}"
    )
    return 0


@guarded
def cmd_play(args: argparse.Namespace) -> int:
    return _play(args, out=Path(args.out) if args.out else None)


@guarded
def cmd_export_audio(args: argparse.Namespace) -> int:
    """``calls export-audio``: a WAV of one call; the same rules and ledger entry as ``play --out``."""
    return _play(args, out=Path(args.out))


def add_play_arguments(p: argparse.ArgumentParser) -> None:
    who(p)
    p.add_argument("--purpose", required=True, help="why you need to hear it (goes into the ledger)")
    p.add_argument(
        "--identity", help="recovery: a passphrase-protected identity file instead of your key copy"
    )
    p.add_argument("--identity-passphrase-file", type=Path)


def _key_args(p: argparse.ArgumentParser, *, create: bool) -> None:
    p.add_argument(
        "--key-from", metavar="HOLDER", help="a key holder whose copy is copied (asks their password)"
    )
    p.add_argument("--key-from-password-file", type=Path)
    p.add_argument("--new-password-file", type=Path, help="the new password (else $RECORDERD_NEW_PASSWORD)")
    if create:
        p.add_argument("--new-key", action="store_true", help="first key holder: create the recording key")
        p.add_argument("--import-identity", help="first key holder: adopt an identity from 'keys init'")
        p.add_argument("--identity-passphrase-file", type=Path)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from recorderd.cli import records as records_cli

    users = sub.add_parser("users", help="people, roles, passwords").add_subparsers(
        dest="users_cmd", required=True
    )
    a = users.add_parser("add", help="add a person (the first one needs no --as)")
    a.add_argument("id")
    a.add_argument("--name", required=True)
    a.add_argument("--role", required=True, choices=ROLES)
    who(a)
    _key_args(a, create=True)
    a.set_defaults(func=cmd_users_add)
    pw = users.add_parser("passwd", help="change your password, or --reset someone's (administrators)")
    pw.add_argument("id")
    pw.add_argument("--reset", action="store_true")
    who(pw)
    _key_args(pw, create=False)
    pw.set_defaults(func=cmd_users_passwd)
    simple = (
        ("disable", cmd_users_disable, "disable an account and destroy its key copy"),
        ("unlock", cmd_users_unlock, "unlock an account locked by failed sign-ins"),
    )
    for name, fn, text in simple:
        d = users.add_parser(name, help=text)
        d.add_argument("id")
        who(d)
        d.set_defaults(func=fn)
    users.add_parser("list", help="everyone, with role, key copy and state").set_defaults(func=cmd_users_list)

    kr = sub.add_parser("keyring", help="the key copies").add_subparsers(dest="keyring_cmd", required=True)
    kr.add_parser("list", help="who holds a key copy").set_defaults(func=cmd_keyring_list)
    kd = kr.add_parser("destroy", help="contract end: destroy every key copy (Kawasaki 6-4)")
    who(kd)
    kd.add_argument("--confirm", default="")
    kd.set_defaults(func=cmd_keyring_destroy)

    p = sub.add_parser("play", help="hear a recording (needs your password and a purpose; ledgered first)")
    p.add_argument("id")
    add_play_arguments(p)
    p.add_argument("--out", help="write a WAV file instead of playing")
    p.add_argument("--player", help="command reading WAV on stdin (default: sox 'play', else 'aplay')")
    p.set_defaults(func=cmd_play)
    records_cli.register(sub)
