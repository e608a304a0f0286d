"""People: personal IDs, passwords (argon2id), expiry, lockout, permissions, and their key copies (R6).

Every change and every failed sign-in goes into the ledger in the same transaction as the change it
describes, so the two cannot disagree. A person whose password has expired, or was chosen by an
administrator, can do nothing but change it (``recorderctl users passwd``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.config.people import ROLES
from recorderd.people.keys import Keyring
from storage import ledger
from storage.models import Person

__all__ = ["Actor", "AuthError", "Forbidden", "PasswordExpired", "People", "UserError"]


class UserError(Exception):
    """A request about people that cannot be carried out; the message says why."""


class AuthError(UserError):
    """Sign-in refused. Deliberately vague about whether the ID exists."""


class PasswordExpired(AuthError):
    """Correct password, but it must be changed before anything else."""


class Forbidden(UserError):
    """Signed in, but the role lacks the permission."""


@dataclass(frozen=True)
class Actor:
    """A person who has just proved their password, for the length of one command."""

    id: str
    name: str
    role: str
    permissions: frozenset[str]
    password: str = field(repr=False)  # only to open their key copy in the same command; never stored


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class People:
    def __init__(
        self, sessions: sessionmaker[Session], config: Config, *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> None:
        self._sessions = sessions
        self.config = config
        self.policy = config.people.passwords
        self._clock = clock
        self._hasher = PasswordHasher(
            time_cost=self.policy.argon2_time_cost,
            memory_cost=self.policy.argon2_memory_kib,
            parallelism=1,
            type=Type.ID,
        )
        self.keyring = Keyring(config.keyring_dir, work_factor=self.policy.key_work_factor)

    # -- queries ---------------------------------------------------------------------------------
    def all(self) -> list[Person]:
        with self._sessions() as s:
            return list(s.scalars(select(Person).order_by(Person.id)))

    def get(self, person_id: str) -> Person | None:
        with self._sessions() as s:
            return s.get(Person, person_id)

    def permissions(self, role: str) -> frozenset[str]:
        return self.config.people.permissions(role)

    def expired(self, person: Person) -> bool:
        days = self.policy.max_age_days
        return bool(days) and self._clock() >= person.password_changed_at + dt.timedelta(days=days)

    # -- sign-in ---------------------------------------------------------------------------------
    def _verify(self, person: Person | None, password: str) -> bool:
        if person is None:
            # Spend the same time as for a real ID, so timing does not reveal which IDs exist.
            self._hasher.hash(password)
            return False
        try:
            return self._hasher.verify(person.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _locked(self, person: Person, now: dt.datetime) -> bool:
        if person.locked_at is None:
            return False
        minutes = self.policy.lockout_minutes
        if minutes and now >= person.locked_at + dt.timedelta(minutes=minutes):
            person.locked_at, person.failed_logins = None, 0  # the lock has run out
            return False
        return True

    def authenticate(
        self, person_id: str, password: str, *, action: str, allow_expired: bool = False
    ) -> Actor:
        """Check the password; a failure is counted and ledgered before it is reported."""
        now = self._clock()
        with self._sessions.begin() as s:
            person = s.get(Person, person_id)
            reason = None
            if person is not None and person.disabled_at is not None:
                reason = "disabled"
            elif person is not None and self._locked(person, now):
                reason = "locked"
            if not self._verify(person, password) or reason:
                refusal: AuthError = self._failed(s, person_id, person, reason, action, now)
            else:
                assert person is not None
                person.failed_logins = 0
                if self._hasher.check_needs_rehash(person.password_hash):
                    person.password_hash = self._hasher.hash(password)  # cost raised in the config
                actor = Actor(person.id, person.name, person.role, self.permissions(person.role), password)
                if allow_expired or not (person.must_change or self.expired(person)):
                    return actor
                why = "was set by an administrator" if person.must_change else "has expired"
                # Refused like any other sign-in, and ledgered (not counted towards a lockout).
                detail = {"reason": "must_change" if person.must_change else "expired", "action": action}
                ledger.append(
                    s, "login_failed", person_id[:64], subject=person_id[:64], detail=detail, at=now
                )
                refusal = PasswordExpired(
                    f"the password of {person_id} {why}: change it first "
                    f"(recorderctl users passwd {person_id})"
                )
        raise refusal  # after the commit: the failure count and its ledger entry are kept

    def _failed(
        self,
        s: Session,
        person_id: str,
        person: Person | None,
        reason: str | None,
        action: str,
        now: dt.datetime,
    ) -> AuthError:
        reason = reason or ("unknown_id" if person is None else "wrong_password")
        detail: dict[str, object] = {"reason": reason, "action": action}
        counted = person is not None and reason == "wrong_password"
        if person is not None and counted:
            person.failed_logins += 1
            detail["consecutive"] = person.failed_logins
        ledger.append(s, "login_failed", person_id[:64], subject=person_id[:64], detail=detail, at=now)
        if person is not None and counted and person.failed_logins >= self.policy.max_failures:
            person.locked_at = now
            ledger.append(
                s,
                "account_locked",
                "recorderd",
                subject=person_id,
                at=now,
                detail={"after_failures": person.failed_logins},
            )
            reason = "locked"
        if reason == "locked":
            return AuthError("account locked: ask an administrator (recorderctl users unlock)")
        return AuthError("account disabled" if reason == "disabled" else "unknown ID or wrong password")

    # -- changes ---------------------------------------------------------------------------------
    def _check_password(self, password: str) -> None:
        if len(password) < self.policy.min_length:
            raise UserError(f"a password needs at least {self.policy.min_length} characters")

    def add(
        self,
        actor: Actor | None,
        person_id: str,
        name: str,
        role: str,
        password: str,
        *,
        key: list[str] | None = None,
    ) -> bool:
        """Create an account with a first password the person must change (unless they chose it
        themselves: ``actor`` None, only for the very first account, which must manage users).
        ``key``: the recording identities, opened by a holder, for roles that hold a copy.
        Returns whether a key copy was written."""
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        self._check_password(password)
        self.keyring.path(person_id)  # validates the ID's characters
        wants_key = self.config.people.holds_key(role)
        if wants_key and not key:
            raise UserError(f"role {role} holds a key copy: give one, opened by a key holder (--key-from)")
        now = self._clock()
        with self._sessions.begin() as s:
            if actor is None:
                if s.scalar(select(func.count()).select_from(Person)):
                    raise UserError("people exist already: say who you are (--as ID)")
                if "manage_users" not in self.permissions(role):
                    raise UserError(f"the first account must be able to manage users; {role} cannot")
            if s.get(Person, person_id) is not None:
                raise UserError(f"{person_id} exists already")
            digest = self._hasher.hash(password)
            s.add(
                Person(
                    id=person_id,
                    name=name,
                    role=role,
                    password_hash=digest,
                    password_changed_at=now,
                    must_change=actor is not None,
                    failed_logins=0,
                    created_at=now,
                )
            )
            who = actor.id if actor else "bootstrap"
            ledger.append(
                s, "user_added", who, subject=person_id, at=now, detail={"name": name, "role": role}
            )
            if wants_key:
                ledger.append(s, "key_granted", who, subject=person_id, at=now)
            s.flush()
            if wants_key and key:  # inside the transaction: no account without its key, no key without entry
                self.keyring.write(person_id, key, password)
        return wants_key

    def change_password(self, person_id: str, old: str, new: str) -> None:
        """Self-service change; the only thing an expired password still allows."""
        self.authenticate(person_id, old, action="change password", allow_expired=True)
        self._check_password(new)
        if new == old:
            raise UserError("the new password must differ from the old one")
        now = self._clock()
        with self._sessions.begin() as s:
            person = s.get(Person, person_id)
            assert person is not None
            person.password_hash = self._hasher.hash(new)
            person.password_changed_at, person.must_change = now, False
            ledger.append(s, "password_changed", person_id, subject=person_id, at=now)
            s.flush()
            self.keyring.rekey(person_id, old, new)

    def reset_password(self, actor: Actor, person_id: str, new: str, *, key: list[str] | None) -> None:
        """An administrator sets a temporary password (forgotten password, unlock). The old key copy
        cannot be opened without the old password, so a holder's copy is written afresh from ``key``."""
        self._check_password(new)
        now = self._clock()
        with self._sessions.begin() as s:
            person = s.get(Person, person_id)
            if person is None:
                raise UserError(f"no person {person_id}")
            wants_key = self.config.people.holds_key(person.role) and person.disabled_at is None
            if wants_key and not key:
                raise UserError(
                    f"{person_id} holds a key copy: give one, opened by a key holder (--key-from)"
                )
            person.password_hash = self._hasher.hash(new)
            person.password_changed_at, person.must_change = now, True
            person.failed_logins, person.locked_at = 0, None
            ledger.append(
                s, "user_changed", actor.id, subject=person_id, at=now, detail={"change": "password_reset"}
            )
            if wants_key:
                ledger.append(s, "key_granted", actor.id, subject=person_id, at=now)
            s.flush()
            if wants_key and key:
                self.keyring.write(person_id, key, new)

    def unlock(self, actor: Actor, person_id: str) -> None:
        with self._sessions.begin() as s:
            person = s.get(Person, person_id)
            if person is None:
                raise UserError(f"no person {person_id}")
            person.failed_logins, person.locked_at = 0, None
            ledger.append(s, "user_changed", actor.id, subject=person_id, detail={"change": "unlocked"})

    def disable(self, actor: Actor, person_id: str) -> bool:
        """Disable the account and destroy its key copy. Returns whether a copy was removed."""
        now = self._clock()
        with self._sessions.begin() as s:
            person = s.get(Person, person_id)
            if person is None:
                raise UserError(f"no person {person_id}")
            person.disabled_at = now
            ledger.append(
                s, "user_changed", actor.id, subject=person_id, at=now, detail={"change": "disabled"}
            )
            had = self.keyring.has(person_id)
            if had:
                ledger.append(s, "key_revoked", actor.id, subject=person_id, at=now)
            s.flush()
            self.keyring.revoke(person_id)
        return had
