"""Accounts and key copies, through the door (the rules themselves: recorderd/people/users.py).

A new key copy is always made from the recording identities opened by someone who holds them: the
acting person's own copy, another holder who types their password, or (for the very first person
only) a fresh key or one imported from ``recorderctl keys init``.
"""

from __future__ import annotations

from dataclasses import dataclass

from recorderd.people.keys import load_identities
from recorderd.people.users import Actor, UserError
from recorderd.service.door import Service
from storage.models import Person

__all__ = [
    "FreshKey",
    "Holder",
    "KeySource",
    "add_first_person",
    "add_person",
    "change_password",
    "destroy_keyring",
    "disable",
    "key_holders",
    "list_people",
    "load_identities",
    "reset_password",
    "unlock",
]


@dataclass(frozen=True)
class Holder:
    """A key holder whose copy is opened to make another: their ID and password."""

    id: str
    password: str


@dataclass(frozen=True)
class FreshKey:
    """The installation's first recording key: new, or imported from ``recorderctl keys init``.
    Refused once anyone holds a copy (there is one recording key, copied to each holder)."""

    identities: list[str]


KeySource = Holder | FreshKey


def _identities(svc: Service, who: Actor | None, source: KeySource | None) -> list[str]:
    if isinstance(source, FreshKey):
        if svc.people.keyring.holders():
            raise UserError("a recording key exists already: copy it from a holder with --key-from")
        return source.identities
    if who is None:
        raise UserError("the first key holder needs a key: --new-key, or --import-identity FILE")
    holder = source
    if holder is None or holder.id == who.id:
        if not svc.people.keyring.has(who.id):
            raise UserError("this role holds a key copy: give --key-from HOLDER (someone who holds one)")
        return svc.people.keyring.unlock(who.id, who.password)
    opener = svc.people.authenticate(holder.id, holder.password, action="copy the recording key")
    return svc.people.keyring.unlock(opener.id, opener.password)


def add_first_person(
    svc: Service, person_id: str, name: str, role: str, password: str, *, key: FreshKey | None
) -> bool:
    """The installation's first account, which must be able to manage users; it chose its own password.
    Ledgered as ``user_added`` by "bootstrap". Refused once anyone exists."""
    ids = _identities(svc, None, key) if svc.config.people.holds_key(role) else None
    return svc.people.add(None, person_id, name, role, password, key=ids)


def add_person(
    svc: Service,
    who: Actor,
    person_id: str,
    name: str,
    role: str,
    first_password: str,
    *,
    key: KeySource | None,
) -> bool:
    """Add someone with a first password they must change; a copy of the key if their role holds one.
    Returns whether a key copy was written."""
    with svc.door(who, "users.add", subject=person_id[:64]):
        ids = _identities(svc, who, key) if svc.config.people.holds_key(role) else None
        return svc.people.add(who, person_id, name, role, first_password, key=ids)


def reset_password(svc: Service, who: Actor, person_id: str, new: str, *, holder: Holder | None) -> None:
    """A temporary password (forgotten, locked out); a key holder's copy is written afresh."""
    with svc.door(who, "users.reset", subject=person_id[:64]):
        target = svc.people.get(person_id)
        if target is None:
            raise UserError(f"no person {person_id}")
        needs = svc.config.people.holds_key(target.role) and target.disabled_at is None
        key = _identities(svc, who, holder) if needs else None
        svc.people.reset_password(who, person_id, new, key=key)


def change_password(svc: Service, person_id: str, old: str, new: str) -> None:
    """Self-service: the only thing a must-change or expired password still allows."""
    svc.people.change_password(person_id, old, new)


def disable(svc: Service, who: Actor, person_id: str) -> bool:
    """Disable an account and destroy its key copy. Returns whether a copy was removed."""
    with svc.door(who, "users.disable", subject=person_id[:64]):
        return svc.people.disable(who, person_id)


def unlock(svc: Service, who: Actor, person_id: str) -> None:
    with svc.door(who, "users.unlock", subject=person_id[:64]):
        svc.people.unlock(who, person_id)


def list_people(svc: Service, who: Actor) -> list[tuple[Person, bool, str]]:
    """Everyone: (account, holds a key copy, state in words)."""
    with svc.door(who, "users.list") as t:
        t.grant("viewed", detail={"what": "accounts"})
        out = []
        for p in svc.people.all():
            if p.disabled_at:
                state = "disabled"
            elif p.locked_at:
                state = "locked"
            elif p.must_change or svc.people.expired(p):
                state = "must change password"
            else:
                state = "active"
            out.append((p, svc.people.keyring.has(p.id), state))
        return out


def key_holders(svc: Service, who: Actor) -> list[str]:
    with svc.door(who, "keyring.list") as t:
        t.grant("viewed", detail={"what": "key holders"})
        return svc.people.keyring.holders()


def destroy_keyring(svc: Service, who: Actor, *, confirm: str) -> list[str]:
    """Contract end (Kawasaki 6-4): every key copy destroyed; every recording unreadable here."""
    with svc.door(who, "keyring.destroy") as t:
        if confirm != "destroy every key":
            raise UserError(
                "this makes every recording unreadable for ever: add --confirm 'destroy every key'"
            )
        t.grant("keys_destroyed", detail={"holders": svc.people.keyring.holders()})
        return svc.people.keyring.destroy_all()
