"""The service layer: the one door every front end (``recorderctl``, the web console) goes through.

``Service`` holds the configuration, the catalogue and the clock; each operation is a function in one
of the modules beside it (``calls``, ``retention``, ``records``, ``people``) that takes the service
and a signed-in person, checks the person's permission, commits the ledger entry, then acts
(``door.py`` says how). Front ends parse, prompt and print; they never decide who may do what.
"""

from recorderd.people.users import Actor, AuthError, Forbidden, PasswordExpired, UserError
from recorderd.service.door import OPERATIONS, REFUSALS, NotPermitted, Operation, Service

# The people the service acts for, and the refusals front ends show: front ends import these from
# here, never from the feature packages (tests/architecture.py holds them to it).
__all__ = [
    "OPERATIONS",
    "REFUSALS",
    "Actor",
    "AuthError",
    "Forbidden",
    "NotPermitted",
    "Operation",
    "PasswordExpired",
    "Service",
    "UserError",
]
