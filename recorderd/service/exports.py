"""Export copies made for a download (the web console), through the door like every export.

``recorderctl export create`` writes the package onto a medium on the recorder. A browser download
leaves the recorder at once, so here: the person proves their password again (it opens their key
copy, in memory, for this one package, exactly as recorderctl does; failures count towards lockout
and are ledgered as at sign-in); the order must name the recipient's age key, so the package's audio
is encrypted end to end and no plaintext audio touches the recorder's disk or the person's downloads;
the package is built in a private temporary directory and handed back as one zip file.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from recorderd.people.users import Actor
from recorderd.records import export
from recorderd.records.export import Order
from recorderd.records.play import open_key
from recorderd.service.door import Service
from recorderd.service.records import signing_key

__all__ = ["EXPORT_FORMS", "create_export_archive", "direct_export_allowed", "next_steps"]

# The regulations' forms that are about one export request (recorderd/records/forms).
EXPORT_FORMS = ("saitama-1", "saitama-2", "toyonaka-1", "matsumoto")


def direct_export_allowed(svc: Service) -> bool:
    """Whether a person may export with the details at hand, without another's instruction."""
    return not svc.config.exports.two_person


def next_steps(svc: Service, who: Actor, request: export.Request) -> list[str]:
    """The steps of ``request`` this person may take now, for a front end to offer only those (each
    is still checked, and a refusal ledgered, when taken)."""
    status, chain = request.status, svc.config.exports.chain
    steps = []
    instructed = request.last("export_instructed") is not None
    to_relay = instructed and status == "instructed" and request.last("export_relayed") is None
    if to_relay and len(chain) >= 3 and who.role == chain[1] and svc.may(who, "export.relay"):
        steps.append("relay")
    may_create = instructed and svc.may(who, "export.create")
    if may_create and export.carry_out_refusal(svc.config, who, request) is None:
        steps.append("create")
    if status == "exported" and svc.may(who, "export.provide"):
        steps.append("provide")
    if status in ("exported", "provided") and svc.may(who, "export.dispose"):
        steps.append("dispose")
    return steps


def create_export_archive(
    svc: Service,
    who: Actor,
    password: str,
    archive: Path,
    *,
    order: Order | None = None,
    instruction: str | None = None,
) -> str:
    """Make an export package (on ``instruction``, or with ``order``'s details) and write it to
    ``archive`` as a zip file. Returns the request ID."""
    proved = svc.sign_in(who.id, password)
    with svc.door(proved, "export.create", subject=instruction) as t:
        signing_key(svc, proved.id)  # before the export entry, so a new key's entry precedes it
        with tempfile.TemporaryDirectory(prefix="recorderd-export-") as tmp:
            request_id, out = export.create(
                svc.sessions, svc.config, proved, lambda: open_key(svc.people, proved),
                Path(tmp) / "package", t.grant, order=order, request_id=instruction, now=svc.clock(),
                sealed_only=True,
            )  # fmt: skip
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:  # age is incompressible
                for path in sorted(out.rglob("*")):
                    if path.is_file():
                        z.write(path, f"{request_id}/{path.relative_to(out)}")
        return request_id
