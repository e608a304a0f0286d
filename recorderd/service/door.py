"""The one door: every act on recordings and records passes here, whoever asks and from wherever.

``Service.door(person, operation)`` is a context manager that, in this order,

1. checks that the signed-in person's role may do the operation under the loaded profile
   (``OPERATIONS`` names each operation's one permission), and if not, commits an ``access_denied``
   entry and raises ``Forbidden``;
2. lets the operation commit its granted entry *before* it acts (``Pass.grant``: played, copied,
   searched, exported…), or write it in the same transaction as the change it describes (holds,
   accounts, disclosure requests: the change and its entry commit together or not at all);
3. turns any refusal raised before the grant, whatever its cause (a missing instruction, a legal basis
   the profile does not list, no key copy, a key copy that does not open, a call that does not exist),
   into one ``access_denied`` entry with the reason, then re-raises it for the front end to show.

If an entry cannot be written (``LedgerUnavailable``), nothing happens. Front ends (``recorderctl``,
the web console) never check a permission or write the ledger themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.config.people import ROLE_LABELS, Permission
from recorderd.errors import AccessError
from recorderd.incidents import raise_incident
from recorderd.people.keys import KeyringError
from recorderd.people.users import Actor, AuthError, Forbidden, People, UserError
from recorderd.records.forms import FormError
from storage import ledger
from storage.age import AgeDecryptError, AgeKeyError
from storage.catalog import AmbiguousId
from storage.holds import HoldError
from storage.preserve import PreserveError
from storage.signing import SigningError

__all__ = ["OPERATIONS", "REFUSALS", "NotPermitted", "Operation", "Pass", "Service"]


class NotPermitted(Forbidden):
    """The person's role lacks the operation's permission under the loaded profile."""


@dataclass(frozen=True)
class Operation:
    permission: Permission
    action: str  # in words, for the ledger and the refusal message


OPERATIONS: dict[str, Operation] = {
    # calls
    "calls.search": Operation("search", "search calls"),
    "calls.show": Operation("search", "look at a call"),
    "calls.play": Operation("play", "play a recording"),
    "calls.copy": Operation("copy", "copy a recording to a file"),
    "calls.play_sealed": Operation("play", "play a recording in the browser"),
    "calls.delete": Operation("delete", "delete a recording on request"),
    "calls.preserve": Operation("preserve", "preserve a recording"),
    "files.verify": Operation("audit", "re-hash the recording files"),
    # retention and holds
    "holds.list": Operation("search", "list holds"),
    "holds.add": Operation("hold", "place a hold"),
    "holds.release": Operation("hold", "release a hold"),
    "retention.plan": Operation("search", "see the retention plan"),
    "retention.report": Operation("audit", "read the retention report"),
    "retention.catalogue": Operation("audit", "read the preservation catalogue"),
    "retention.confirm_clock": Operation("delete", "confirm the clock after a clock jump"),
    # export copies and disclosure requests
    "export.instruct": Operation("instruct", "instruct an export"),
    "export.relay": Operation("instruct", "pass an export instruction on to a named handler"),
    "export.create": Operation("export", "make an export copy"),
    "export.provide": Operation("export", "record a provision"),
    "export.dispose": Operation("export", "record a disposal"),
    "export.list": Operation("search", "list export copies"),
    "disclosure.open": Operation("hold", "open a disclosure request"),
    "disclosure.close": Operation("hold", "close a disclosure request"),
    "disclosure.list": Operation("search", "list disclosure requests"),
    # ledger and forms
    "forms.render": Operation("audit", "print a form"),
    "ledger.show": Operation("audit", "read the ledger"),
    "ledger.verify": Operation("audit", "verify the ledger"),
    "ledger.checkpoint": Operation("audit", "sign a ledger checkpoint"),
    # people and keys
    "users.list": Operation("manage_users", "list accounts"),
    "users.add": Operation("manage_users", "add a person"),
    "users.reset": Operation("manage_users", "reset a password"),
    "users.disable": Operation("manage_users", "disable an account"),
    "users.unlock": Operation("manage_users", "unlock an account"),
    "keyring.list": Operation("manage_users", "list the key copies"),
    "keyring.destroy": Operation("manage_users", "destroy every key copy"),
    # incidents (Kawasaki 第7条)
    "incidents.list": Operation("incidents", "list incidents"),
    "incidents.open": Operation("incidents", "report an incident"),
    "incidents.ack": Operation("incidents", "acknowledge an incident"),
    "incidents.report": Operation("incidents", "print an incident report"),
}

# Repeated refusals: this many access_denied entries for one person within the window raise an incident.
REFUSALS_FOR_INCIDENT = 5
REFUSALS_WINDOW = dt.timedelta(minutes=10)

# What a refusal is: every error an operation raises to say "not done, and why". Anything else is
# a bug and propagates as one.
REFUSALS: tuple[type[Exception], ...] = (
    AccessError,
    UserError,
    KeyringError,
    HoldError,
    PreserveError,
    AmbiguousId,
    AgeDecryptError,
    AgeKeyError,
    FormError,
    SigningError,
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Pass:
    """One operation let through the door; ``grant`` commits its entry before the act."""

    service: Service
    person: Actor
    operation: str
    granted: list[ledger.Entry] = field(default_factory=list)

    def grant(self, kind: str, **kw: Any) -> ledger.Entry:
        entry = ledger.append_committed(self.service.sessions, kind, self.person.id, **kw)
        self.granted.append(entry)
        return entry


class Service:
    """The service layer: one configuration, one catalogue, one clock; every operation is a function of
    the feature modules beside this one, taking this object and a signed-in person."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.clock = clock
        self.people = People(sessions, config, clock=clock)

    def sign_in(self, person_id: str, password: str, *, allow_expired: bool = False) -> Actor:
        """The person, once their password is proved; a failure is counted and ledgered first. A
        lockout raises an incident (Kawasaki 第7条)."""
        try:
            return self.people.authenticate(
                person_id, password, action="sign in", allow_expired=allow_expired
            )
        except AuthError as exc:
            if "locked" in str(exc):
                with contextlib.suppress(ledger.LedgerUnavailable):
                    raise_incident(
                        self.sessions,
                        "account_locked",
                        f"{person_id}：パスワードの連続誤りによりアカウントをロック",
                        key=f"locked:{person_id}",
                        at=self.clock(),
                        facts={"person": person_id},
                    )
            raise

    def resume(self, person_id: str, signed_in_at: dt.datetime) -> Actor:
        """The person of a session that signed in at ``signed_in_at`` (the web console), without their
        password: refused (``AuthError``) once the account is disabled, locked, must change its
        password, or had its password changed since. Operations that open the person's key copy on the
        server cannot run for a resumed person; the console has the browser open it instead."""
        person = self.people.get(person_id)
        if person is None or person.disabled_at is not None or person.locked_at is not None:
            raise AuthError("the session has ended: sign in again")
        if person.must_change or self.people.expired(person) or person.password_changed_at > signed_in_at:
            raise AuthError("the password has changed or must be changed: sign in again")
        return Actor(person.id, person.name, person.role, self.people.permissions(person.role), "")

    def may(self, person: Actor, operation: str) -> bool:
        """Whether the role may do ``operation`` (for front ends that show only allowed actions)."""
        return OPERATIONS[operation].permission in person.permissions

    def refuse(
        self,
        person: Actor,
        operation: str,
        reason: str,
        *,
        call_id: str | None = None,
        subject: str | None = None,
    ) -> None:
        """Ledger a refusal. Best effort: an unwritable ledger refuses everything anyway."""
        op = OPERATIONS[operation]
        detail = {"action": op.action, "operation": operation, "role": person.role, "reason": reason[:500]}
        with contextlib.suppress(ledger.LedgerUnavailable):
            ledger.append_committed(
                self.sessions, "access_denied", person.id, call_id=call_id, subject=subject, detail=detail
            )
            self._watch_refusals(person)

    def _watch_refusals(self, person: Actor) -> None:
        """Raise an incident when one person is refused again and again (a probe, or a role set wrong)."""
        now = self.clock()
        with self.sessions() as s:
            recent = ledger.entries(s, kinds=["access_denied"], since=now - REFUSALS_WINDOW)
        count = sum(1 for e in recent if e.actor == person.id)
        if count >= REFUSALS_FOR_INCIDENT:
            minutes = int(REFUSALS_WINDOW.total_seconds() // 60)
            raise_incident(
                self.sessions,
                "repeated_refusals",
                f"{person.id}：{minutes}分間に{count}回、操作を拒否",
                key=f"refusals:{person.id}",
                at=now,
                facts={"person": person.id, "role": person.role, "refusals": count},
            )

    @contextlib.contextmanager
    def door(
        self, person: Actor, operation: str, *, call_id: str | None = None, subject: str | None = None
    ) -> Iterator[Pass]:
        op = OPERATIONS[operation]
        if op.permission not in person.permissions:
            reason = f"the role lacks '{op.permission}'"
            self.refuse(person, operation, reason, call_id=call_id, subject=subject)
            raise NotPermitted(f"{person.id} ({ROLE_LABELS[person.role]}) may not {op.action}: {reason}")
        ticket = Pass(self, person, operation)
        try:
            yield ticket
        except REFUSALS as exc:
            if not ticket.granted:
                self.refuse(
                    person, operation, str(exc) or type(exc).__name__, call_id=call_id, subject=subject
                )
            raise
