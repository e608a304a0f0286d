"""Errors every feature shares. Each says what is wrong in words a person can act on."""

from __future__ import annotations

__all__ = ["AccessError"]


class AccessError(Exception):
    """A request about a recording or a record that cannot be carried out (no such call, no audio,
    a missing field); the message says why."""
