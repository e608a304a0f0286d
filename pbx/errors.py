"""Errors shared by the protocol cores.

The split follows h11: a ``PeerProtocolError`` means the *other side* sent something we cannot
accept (close that one connection, log a warning, keep the daemon running); a ``UsageError``
means *our* code called a core wrongly (a bug: let it surface).
"""


class PeerProtocolError(Exception):
    """The peer violated the protocol or a limit; the connection must be closed."""


class UsageError(Exception):
    """Local misuse of a protocol core (a programming error, not bad input)."""
