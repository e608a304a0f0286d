"""What the ledger records of a configuration when the daemon loads it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from recorderd.config.model import Config
from recorderd.config.people import ROLES

__all__ = ["config_summary"]


def config_summary(config: Config, reason: str) -> dict[str, Any]:
    """What the ledger records when the daemon loads its configuration: a digest of the whole (secrets
    left out: a hash of a short secret can be guessed) and the access policy in full, so a change of
    who may do what is visible in the ledger itself."""
    public = config.model_dump(mode="json", exclude={"ami": {"secret"}, "mqtt": {"password"}})
    text = json.dumps(public, sort_keys=True, ensure_ascii=False)
    roles = {r: sorted(config.people.permissions(r)) for r in ROLES}
    return {
        "reason": reason,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "roles": roles,
        "exports": config.exports.model_dump(mode="json"),
        "passwords": {
            k: v
            for k, v in config.people.passwords.model_dump().items()
            if not k.startswith(("argon2", "key"))
        },
    }
