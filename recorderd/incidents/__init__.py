"""Incidents (事故): what must be reported to the director (Kawasaki 第7条; every profile).

An incident is raised automatically (an account locked, repeated refusals, a failed file or ledger
verification, a recording file missing or changed, a clock jump) or opened by hand (a leak, a loss,
a theft). Each is an ``incident_raised`` ledger entry and stays open until a person whose role has
the ``incidents`` permission acknowledges it (``incident_acknowledged``, through the service layer).
The daemon publishes new incidents over MQTT; ``recorderctl status`` lists the open ones; the report
form (事故報告書) is ``recorderctl incidents report``.
"""

from recorderd.incidents.book import (
    AUTOMATIC,
    BY_HAND,
    KINDS,
    Incident,
    find,
    incidents,
    open_lines,
    raise_incident,
)

__all__ = ["AUTOMATIC", "BY_HAND", "KINDS", "Incident", "find", "incidents", "open_lines", "raise_incident"]
