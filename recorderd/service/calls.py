"""Finding, reading, hearing and copying calls, through the door (recorderd/service/door.py).

Every search and every look at a call is ledgered (Osaka 3-3: the device keeps a log of what staff
do), with the criteria: an auditor can see who looked for which number or which days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from recorderd.dates import local_days
from recorderd.errors import AccessError
from recorderd.incidents.checks import file_incident
from recorderd.numbers import normalise
from recorderd.people.keys import load_identities
from recorderd.people.users import Actor, Forbidden
from recorderd.records.audio import VerifyProblem, call_path, verify_catalogue
from recorderd.records.play import deliver, find_call, no_one_may_play, open_key
from recorderd.service.door import NotPermitted, Service
from storage import holds, ledger
from storage.catalog import list_calls, nodes_with_audio
from storage.models import STATUSES, Call, Hold

__all__ = [
    "CallView",
    "Heard",
    "Query",
    "Sealed",
    "Verified",
    "copy",
    "load_identities",
    "no_one_may_play_raw",
    "play",
    "play_sealed",
    "search",
    "show",
    "verify_files",
]

MAX_PAGE = 1000


@dataclass(frozen=True)
class Query:
    """A search: local (Tokyo) dates, inclusive; a number in any spelling; the rest exact."""

    first: dt.date | None = None
    last: dt.date | None = None
    number: str | None = None
    line: str | None = None
    direction: str | None = None
    status: str | None = None
    held: bool | None = None
    limit: int = 200
    offset: int = 0
    after: tuple[dt.datetime, str] | None = None  # keyset paging: the page after this call (start, id)
    before: tuple[dt.datetime, str] | None = None  # … or the page before it

    def detail(self) -> dict[str, Any]:
        """What the ledger keeps of the search: every criterion given, the number normalised."""
        given = {
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
            "number": normalise(self.number) if self.number else None,
            "line": self.line,
            "direction": self.direction,
            "status": self.status,
            "held": self.held,
        }
        paging: dict[str, Any] = {"limit": self.limit, "offset": self.offset}
        for name, anchor in (("after", self.after), ("before", self.before)):
            if anchor is not None:
                paging[name] = {"started_at": anchor[0].isoformat(), "call": anchor[1]}
        return {k: v for k, v in given.items() if v is not None} | paging


def search(svc: Service, who: Actor, query: Query) -> list[Call]:
    with svc.door(who, "calls.search") as t:
        number = normalise(query.number) if query.number else None
        if query.number and number is None:
            raise AccessError(f"not a telephone number: {query.number!r}")
        if query.status is not None and query.status not in STATUSES:
            raise AccessError(f"status must be one of {', '.join(STATUSES)}")
        if query.direction not in (None, "inbound", "outbound"):
            raise AccessError("direction must be inbound or outbound")
        if not 1 <= query.limit <= MAX_PAGE or query.offset < 0:
            raise AccessError(f"a page holds 1 to {MAX_PAGE} calls")
        if query.after is not None and query.before is not None:
            raise AccessError("a page comes after one call or before one, not both")
        zone = svc.config.zone
        start, end = local_days(query.first, query.last, zone)
        t.grant("searched", detail=query.detail())
        with svc.sessions() as s:
            return list_calls(
                s,
                start=start,
                end=end,
                number=number,
                line=query.line,
                status=query.status,
                direction=query.direction,
                held=query.held,
                limit=query.limit,
                offset=query.offset,
                after=query.after,
                before=query.before,
            )


@dataclass(frozen=True)
class CallView:
    """Everything a person may read about one call: the row, its holds, what the ledger says of it."""

    call: Call
    holds: list[Hold]
    entries: list[ledger.Entry]


def show(svc: Service, who: Actor, call: str) -> CallView:
    with svc.door(who, "calls.show") as t:
        row = find_call(svc.sessions, call)
        t.grant("viewed", call_id=row.id, detail={"what": "call"})
        with svc.sessions() as s:
            found = holds.listing(s, include_released=True, call_id=row.id)
            entries = ledger.entries(s, call_ids=[row.id])
        return CallView(row, found, entries)


@dataclass(frozen=True)
class Heard:
    call_id: str
    entry: ledger.Entry
    complete: bool
    note: str | None


def _purpose(purpose: str) -> str:
    if not purpose.strip():
        raise AccessError("state the purpose (--purpose)")
    return purpose.strip()


def play(
    svc: Service,
    who: Actor,
    call: str,
    purpose: str,
    player: list[str],
    *,
    identities: Callable[[], list[str]] | None = None,
) -> Heard:
    """Hear a raw recording through ``player`` (WAV on its standard input: no plaintext on disk).

    Sign in → permission → the person's key copy opened → ``played`` committed → decrypt.
    ``identities``: recovery with an identity file instead of the key copy; still ledgered.
    """
    try:
        with svc.door(who, "calls.play") as t:
            why = _purpose(purpose)
            row = find_call(svc.sessions, call)
            path = call_path(row, svc.config)
            keys = identities() if identities is not None else open_key(svc.people, who)
            detail = {"purpose": why, "to": "player", "player": player[0]}
            entry = t.grant("played", call_id=row.id, detail=detail)
            dec = deliver(path, keys, out=None, player=player)
            return Heard(row.id, entry, dec.complete, dec.note)
    except NotPermitted as exc:
        if not no_one_may_play(svc.config):
            raise
        hint = "this profile lets no one hear raw recordings; only export copies made on an instruction"
        raise NotPermitted(f"{exc} ({hint}: recorderctl export instruct)") from None


@dataclass(frozen=True)
class Sealed:
    """A recording handed out still encrypted, for a browser that decrypts it itself (the web console):
    the person's own key copy (an age scrypt file only their password opens), the recording's age
    file, and the catalogue's SHA-256 of that file for the browser to compare."""

    call_id: str
    entry: ledger.Entry
    key_copy: bytes
    recording: Path
    sha256: str | None
    size: int | None


def play_sealed(svc: Service, who: Actor, call: str, purpose: str) -> Sealed:
    """Sign in → permission → the person holds a key copy → ``played`` (to the browser) committed →
    the key copy and the ciphertext. Nothing is decrypted here: the server never sees audio or a key."""
    try:
        with svc.door(who, "calls.play_sealed") as t:
            why = _purpose(purpose)
            row = find_call(svc.sessions, call)
            path = call_path(row, svc.config)
            if not path.is_file():
                raise AccessError(f"call {row.id}: the recording file is missing")
            try:
                key = svc.people.keyring.path(who.id).read_bytes()
            except FileNotFoundError:
                raise Forbidden(
                    f"{who.id} holds no copy of the recording key: ask an administrator to grant one"
                ) from None
            entry = t.grant("played", call_id=row.id, detail={"purpose": why, "to": "browser"})
            return Sealed(row.id, entry, key, path, row.audio_sha256, row.audio_bytes)
    except NotPermitted as exc:
        if not no_one_may_play(svc.config):
            raise
        raise NotPermitted(
            f"{exc} (this profile lets no one hear raw recordings: use the export flow)"
        ) from None


def no_one_may_play_raw(svc: Service) -> bool:
    """Whether the loaded profile lets no role hear raw recordings (Saitama: the export flow only)."""
    return no_one_may_play(svc.config)


def copy(
    svc: Service,
    who: Actor,
    call: str,
    purpose: str,
    out: Path,
    *,
    identities: Callable[[], list[str]] | None = None,
) -> Heard:
    """Write a raw recording to a WAV file: a copy, ledgered as one (``copied``) and listed on the
    profile's management ledger. Profiles that allow copies only on an instruction or a legal basis
    give no role ``copy``: there the export flow is the way."""
    try:
        with svc.door(who, "calls.copy") as t:
            why = _purpose(purpose)
            row = find_call(svc.sessions, call)
            path = call_path(row, svc.config)
            keys = identities() if identities is not None else open_key(svc.people, who)
            detail = {"purpose": why, "to": "file", "file": str(out)}
            entry = t.grant("copied", call_id=row.id, detail=detail)
            dec = deliver(path, keys, out=out, player=None)
            return Heard(row.id, entry, dec.complete, dec.note)
    except NotPermitted as exc:
        hint = (
            "this profile lets no one hear raw recordings; only export copies made on an instruction"
            if no_one_may_play(svc.config)
            else "copies are made through the export flow here"
        )
        raise NotPermitted(f"{exc} ({hint}: recorderctl export instruct / export create)") from None


class Verified(NamedTuple):
    checked: int
    problems: list[VerifyProblem]
    elsewhere: list[str]  # nodes holding recordings whose files this recorder cannot reach: not checked


def verify_files(svc: Service, who: Actor) -> Verified:
    """Re-hash every recording file against the catalogue (no key needed): this node's, and those of
    other nodes whose data directory is mounted here ([cluster] data_dirs)."""
    with svc.door(who, "files.verify") as t:
        t.grant("viewed", detail={"what": "verify recording files"})
        checked, problems, elsewhere = 0, list[VerifyProblem](), list[str]()
        with svc.sessions() as s:
            for node in nodes_with_audio(s):
                root = svc.config.node_data_dir(node)
                if root is None:
                    elsewhere.append(node)
                    continue
                n, found = verify_catalogue(s, root, node=node)
                checked, problems = checked + n, problems + found
        if problems:
            file_incident(svc.sessions, problems, at=svc.clock())
        return Verified(checked, problems, elsewhere)
