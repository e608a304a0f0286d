"""Node names: which recorder holds a recording's file, when several share one catalogue.

A node is one recorder daemon (one per PBX) with its own recordings directory. Every call row and
every retention intent names the node that wrote it; a node deletes, moves and recovers only what it
holds. The name defaults to the host's name, cut to what a node name may be.
"""

from __future__ import annotations

import re
import socket

NODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_BAD = re.compile(r"[^A-Za-z0-9._-]")


def default_node() -> str:
    """This host's name as a node name (short form, anything unusual replaced by ``-``)."""
    name = _BAD.sub("-", socket.gethostname().split(".")[0])[:63].lstrip("._-")
    return name or "recorder"
