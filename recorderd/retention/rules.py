"""Which policy each line follows, and the fingerprint of everything that decides an expiry."""

from __future__ import annotations

import hashlib
import json

from recorderd.config import Config

__all__ = ["ARITHMETIC", "fingerprint", "line_policies"]

# 2: 民法第140条 (the first day not counted) by default, tiers counted from the recording, and a
# preserved call's own audio no longer following the preservation policy (issue 11).
ARITHMETIC = 2


def line_policies(config: Config) -> dict[str | None, str | None]:
    """Line name -> policy name (None: keep forever); the key None is for calls no line named."""
    default = config.retention.default
    out: dict[str | None, str | None] = {None: default}
    for rule in config.lines:
        out[rule.name] = rule.retention or default
    return out


def fingerprint(config: Config) -> tuple[str, str]:
    """(short hash, canonical JSON) of everything that decides an expiry: changes are logged."""
    r = config.retention
    doc = {
        # The arithmetic's own version: changing how periods are counted recomputes every row too.
        "arithmetic": ARITHMETIC,
        "timezone": config.timezone,
        "fiscal_year_start_month": r.fiscal_year_start_month,
        "policies": {k: v.model_dump(mode="json", exclude={"basis"}) for k, v in sorted(r.policies.items())},
        "lines": {str(k): v for k, v in line_policies(config).items()},
        "metadata": r.metadata.model_dump(mode="json") if r.metadata else None,
        "preservation": r.preservation.policy if r.preservation else None,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16], text
