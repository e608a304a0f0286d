"""``recorderctl users …``, ``keyring …`` and ``keys init``: people, their key copies, the recording key."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from recorderd.cli.common import App, read_passphrase, secret, who
from recorderd.config.people import ROLE_LABELS, ROLES
from recorderd.service import UserError
from recorderd.service import people as service
from storage.age import encrypt_passphrase_identity, generate_identity, recipient_of

__all__ = ["register"]


def _key_source(app: App, *, may_create: bool) -> service.KeySource | None:
    """Where a new key copy comes from: a fresh or imported key (first holder), or a holder's copy."""
    a = app.args
    if may_create and (a.new_key or a.import_identity):
        if a.import_identity:
            phrase = secret(
                a.identity_passphrase_file, "RECORDERD_IDENTITY_PASSPHRASE", "Identity passphrase: "
            )
            ids = service.load_identities(Path(a.import_identity), phrase)
        else:
            ids = [generate_identity()[0]]
        for r in (recipient_of(i) for i in ids):
            print(r)  # the public key for encryption.recipients
            if r not in app.config.encryption.recipients:
                print(
                    f"note: put {r} in [encryption] recipients so recordings are encrypted to it",
                    file=sys.stderr,
                )
        return service.FreshKey(ids)
    if a.key_from and a.key_from != a.as_:
        pw = secret(
            a.key_from_password_file, "RECORDERD_KEY_PASSWORD", f"Password of key holder {a.key_from}: "
        )
        return service.Holder(a.key_from, pw)
    return None  # the acting person's own copy


def cmd_users_add(app: App) -> int:
    a = app.args
    svc = app.service(migrate=True)  # the first person may come before the daemon's first start
    if a.as_ is None:
        first = secret(a.new_password_file, "RECORDERD_NEW_PASSWORD", f"Password for {a.id}: ", confirm=True)
        with_key = service.add_first_person(svc, a.id, a.name, a.role, first, key=_key_source_first(app))
        after = "the password is the one just chosen"
    else:
        person = app.sign_in()
        key = _key_source(app, may_create=True) if app.config.people.holds_key(a.role) else None
        first = secret(
            a.new_password_file, "RECORDERD_NEW_PASSWORD", f"First password for {a.id}: ", confirm=True
        )
        with_key = service.add_person(svc, person, a.id, a.name, a.role, first, key=key)
        after = "must change the password at first use"
    print(
        f"{a.id} added as {ROLE_LABELS[a.role]} ({a.role}); "
        f"{'holds a key copy' if with_key else 'holds no key copy'}; {after}",
        file=sys.stderr,
    )
    return 0


def _key_source_first(app: App) -> service.FreshKey | None:
    source = _key_source(app, may_create=True) if app.config.people.holds_key(app.args.role) else None
    if source is not None and not isinstance(source, service.FreshKey):
        raise UserError("the first person holds the first key: --new-key, or --import-identity FILE")
    return source


def cmd_users_passwd(app: App) -> int:
    a = app.args
    svc = app.service()
    if a.reset:
        if a.as_ is None:
            raise UserError("a reset is done by an administrator: --as YOUR-ID")
        person = app.sign_in()
        holder = _key_source(app, may_create=False)
        new = secret(
            a.new_password_file, "RECORDERD_NEW_PASSWORD", f"New password for {a.id}: ", confirm=True
        )
        service.reset_password(
            svc, person, a.id, new, holder=holder if isinstance(holder, service.Holder) else None
        )
        print(f"{a.id}: temporary password set; it must be changed at first use", file=sys.stderr)
        return 0
    old = secret(a.password_file, "RECORDERD_PASSWORD", f"Current password for {a.id}: ")
    new = secret(a.new_password_file, "RECORDERD_NEW_PASSWORD", "New password: ", confirm=True)
    service.change_password(svc, a.id, old, new)
    print(f"{a.id}: password changed", file=sys.stderr)
    return 0


def cmd_users_disable(app: App) -> int:
    had = service.disable(app.service(), app.sign_in(), app.args.id)
    print(f"{app.args.id}: disabled{'; key copy destroyed' if had else ''}", file=sys.stderr)
    return 0


def cmd_users_unlock(app: App) -> int:
    service.unlock(app.service(), app.sign_in(), app.args.id)
    return 0


def cmd_users_list(app: App) -> int:
    svc = app.service()
    zone = svc.config.zone
    print(f"{'ID':16} {'ROLE':20} {'KEY':4} {'PASSWORD SET':16} {'STATE':24} NAME")
    for p, key, state in service.list_people(svc, app.sign_in()):
        changed = p.password_changed_at.astimezone(zone)
        print(f"{p.id:16} {p.role:20} {'yes' if key else '-':4} {changed:%Y-%m-%d %H:%M} {state:24} {p.name}")
    return 0


def cmd_keyring_list(app: App) -> int:
    for holder in service.key_holders(app.service(), app.sign_in()):
        print(holder)
    return 0


def cmd_keyring_destroy(app: App) -> int:
    gone = service.destroy_keyring(app.service(), app.sign_in(), confirm=app.args.confirm)
    print(
        f"destroyed {len(gone)} key copies ({', '.join(gone) or 'none'}); destroy any offline backup "
        "of the recording key too (docs/keys.md)",
        file=sys.stderr,
    )
    return 0


def cmd_keys_init(app: App) -> int:
    """A new recording key, passphrase-protected, made on the machine that will keep it (not the
    recorder): prints the public recipient for ``encryption.recipients``."""
    a = app.args
    out = Path(a.out)
    if out.exists():
        raise UserError(f"{out} exists; refusing to overwrite a key")
    passphrase = read_passphrase("New passphrase for the identity: ", file=a.passphrase_file, confirm=True)
    identity, recipient = generate_identity()
    data = encrypt_passphrase_identity(
        f"# recorderd recording key, created {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}\n"
        f"# public key: {recipient}\n{identity}\n",
        passphrase,
        work_factor=a.work_factor,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    print(recipient)
    print(
        f"identity written to {out} (passphrase-protected); put the line above in the daemon's "
        "encryption.recipients",
        file=sys.stderr,
    )
    return 0


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


def _optional_who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_", metavar="ID", help="your personal ID")
    p.add_argument("--password-file", type=Path, help="your password (else $RECORDERD_PASSWORD or a prompt)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="recording keys").add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("init", help="create a passphrase-protected age identity; prints its recipient")
    k.add_argument("--out", required=True, help="where to write the encrypted identity")
    k.add_argument("--passphrase-file", type=Path)
    k.add_argument("--work-factor", type=int, default=18, help="scrypt log2(N), as age (default 18)")
    k.set_defaults(func=cmd_keys_init)

    users = sub.add_parser("users", help="people, roles, passwords").add_subparsers(
        dest="users_cmd", required=True
    )
    a = users.add_parser("add", help="add a person (the first one needs no --as)")
    a.add_argument("id")
    a.add_argument("--name", required=True)
    a.add_argument("--role", required=True, choices=ROLES)
    _optional_who(a)
    _key_args(a, create=True)
    a.set_defaults(func=cmd_users_add)
    pw = users.add_parser("passwd", help="change your password, or --reset someone's (administrators)")
    pw.add_argument("id")
    pw.add_argument("--reset", action="store_true")
    _optional_who(pw)
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
    ul = users.add_parser("list", help="everyone, with role, key copy and state")
    who(ul)
    ul.set_defaults(func=cmd_users_list)

    kr = sub.add_parser("keyring", help="the key copies").add_subparsers(dest="keyring_cmd", required=True)
    kl = kr.add_parser("list", help="who holds a key copy")
    who(kl)
    kl.set_defaults(func=cmd_keyring_list)
    kd = kr.add_parser("destroy", help="contract end: destroy every key copy (Kawasaki 6-4)")
    who(kd)
    kd.add_argument("--confirm", default="")
    kd.set_defaults(func=cmd_keyring_destroy)
