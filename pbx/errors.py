"""Errors shared by the protocol cores.

The split follows h11: a ``PeerProtocolError`` means the *other side* sent something we cannot
accept (close that one connection, log a warning, keep the daemon running); a ``UsageError``
means *our* code called a core wrongly (a bug: let it surface).
"""

import re


class PeerProtocolError(Exception):
    """The peer violated the protocol or a limit; the connection must be closed."""


class UsageError(Exception):
    """Local misuse of a protocol core (a programming error, not bad input)."""


_DIGITS = re.compile(rb"\d{5,}")


def excerpt(data: bytes | str, limit: int = 80) -> str:
    """A short, log-safe rendering of bad input for an error message.

    Malformed lines often carry caller numbers (``CallerIDNum: 0901234…``); runs of five or more
    digits keep only their first two and last two, so logs never hold a full phone number.
    """
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    masked = _DIGITS.sub(lambda m: m.group()[:2] + b"*" * (len(m.group()) - 4) + m.group()[-2:], raw[:limit])
    return repr(masked)[1:] if isinstance(data, bytes) else repr(masked.decode("utf-8", "replace"))
