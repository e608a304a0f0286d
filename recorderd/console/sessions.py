"""Console sessions: in the console's memory only (a restart signs everyone out), never the password.

A session keeps who signed in and when, its CSRF token, and the short-lived tickets that let the page
fetch one ciphertext it was granted. The person's password is used once, at sign-in, and dropped with
the request: the browser asks for it again to open the key copy, and keeps it in page memory only.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SessionStore", "Ticket", "WebSession"]

TICKET_SECONDS = 120.0  # a granted playback must start fetching within this long
MAX_TICKETS = 8


@dataclass(frozen=True)
class Ticket:
    """One granted playback: the ciphertext the page may fetch once."""

    call_id: str
    path: Path
    issued: float


@dataclass
class WebSession:
    token: str
    person_id: str
    signed_in_at: dt.datetime  # the service clock's time, for Service.resume
    started: float  # monotonic
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    tickets: dict[str, Ticket] = field(default_factory=dict)

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionStore:
    def __init__(
        self, *, idle_s: float, absolute_s: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._now = monotonic
        self._lock = threading.Lock()
        self._sessions: dict[str, WebSession] = {}

    def open(self, person_id: str, signed_in_at: dt.datetime) -> WebSession:
        now = self._now()
        ws = WebSession(secrets.token_urlsafe(32), person_id, signed_in_at, now, now)
        with self._lock:
            self._sessions[ws.token] = ws
        return ws

    def get(self, token: str | None) -> WebSession | None:
        """The live session for a cookie, touched; None (and forgotten) once idle or too old."""
        if not token:
            return None
        now = self._now()
        with self._lock:
            ws = self._sessions.get(token)
            if ws is None:
                return None
            if now - ws.last_seen > self.idle_s or now - ws.started > self.absolute_s:
                del self._sessions[token]
                return None
            ws.last_seen = now
            return ws

    def close(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def __len__(self) -> int:
        return len(self._sessions)

    def issue(self, ws: WebSession, call_id: str, path: Path) -> str:
        now = self._now()
        with self._lock:
            for key, old in list(ws.tickets.items()):
                if now - old.issued > TICKET_SECONDS:
                    del ws.tickets[key]
            while len(ws.tickets) >= MAX_TICKETS:
                ws.tickets.pop(next(iter(ws.tickets)))
            key = secrets.token_urlsafe(24)
            ws.tickets[key] = Ticket(call_id, path, now)
            return key

    def redeem(self, ws: WebSession, key: str) -> Ticket | None:
        """A ticket is good once, within TICKET_SECONDS, in the session it was issued to."""
        with self._lock:
            ticket = ws.tickets.pop(key, None)
        if ticket is None or self._now() - ticket.issued > TICKET_SECONDS:
            return None
        return ticket
