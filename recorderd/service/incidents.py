"""Incidents through the door: list, open by hand, acknowledge, print the report (Kawasaki 第7条).

Automatic incidents are raised where their cause is seen: a lockout at sign-in and repeated refusals
(``door.py``), a failed verification (``calls.verify_files``, ``records.verify_ledger``, and the
daemon's scheduled check), a clock jump (the daemon). Each stays open until a person whose role has
the ``incidents`` permission acknowledges it; the acknowledgement is ledgered.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recorderd.errors import AccessError
from recorderd.incidents import BY_HAND, KINDS, Incident, find, incidents, open_lines, raise_incident
from recorderd.people.users import Actor
from recorderd.records import forms
from recorderd.service.door import Service

__all__ = [
    "BY_HAND",
    "KINDS",
    "Incident",
    "acknowledge",
    "list_incidents",
    "open_incident",
    "open_incident_lines",
    "report",
]


def open_incident_lines(sessions: sessionmaker[Session], zone: dt.tzinfo) -> list[str]:
    """The open incidents for ``recorderctl status``, which needs no sign-in: an ID, a time, a kind
    and a summary, never a call's number (the summaries name people and counts only)."""
    return open_lines(sessions, zone)


def list_incidents(svc: Service, who: Actor, *, everything: bool = False) -> list[Incident]:
    with svc.door(who, "incidents.list") as t:
        t.grant("viewed", detail={"what": "incidents"})
        return incidents(svc.sessions, open_only=not everything)


def open_incident(svc: Service, who: Actor, kind: str, what: str) -> Incident:
    """A leak, a loss, a theft or another incident, reported by a person."""
    with svc.door(who, "incidents.open"):
        if kind not in BY_HAND:
            raise AccessError(
                f"open by hand: one of {', '.join(BY_HAND)} (the others are raised automatically)"
            )
        if not what.strip():
            raise AccessError("say what happened (--what)")
        found = raise_incident(
            svc.sessions,
            kind,
            what.strip(),
            key=f"hand:{svc.clock().isoformat()}",
            actor=who.id,
            at=svc.clock(),
        )
        assert found is not None  # a fresh key is never open already
        return found


def acknowledge(svc: Service, who: Actor, incident_id: str, note: str) -> Incident:
    with svc.door(who, "incidents.ack", subject=incident_id[:64]) as t:
        found = find(svc.sessions, incident_id)
        if found is None:
            raise AccessError(f"no incident {incident_id}")
        if not found.open:
            raise AccessError(f"{incident_id} was acknowledged already ({found.acknowledged.actor})")  # type: ignore[union-attr]
        if not note.strip():
            raise AccessError("say what was done (--note): it goes on the report")
        entry = t.grant("incident_acknowledged", subject=incident_id, detail={"note": note.strip()[:500]})
        return Incident(found.raised, entry)


def report(svc: Service, who: Actor, incident_id: str, out: Path) -> int:
    """The incident report (事故報告書) for the director, as PDF."""
    with svc.door(who, "incidents.report", subject=incident_id[:64]) as t:
        if find(svc.sessions, incident_id) is None:
            raise AccessError(f"no incident {incident_id}")
        t.grant("viewed", subject=incident_id, detail={"what": "incident report"})
        return forms.render("incident", svc.sessions, svc.config, out, subject=incident_id)
