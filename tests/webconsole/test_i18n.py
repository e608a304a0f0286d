"""Every word the console shows exists in Japanese and in English: the keys the templates and the
handlers use are all in recorderd/console/i18n.py, each with both languages."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from recorderd.console.i18n import MESSAGES

CONSOLE = Path(str(files("recorderd.console")))


def used_keys() -> set[str]:
    keys: set[str] = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*\)""", template.read_text("utf-8")))
    for module in CONSOLE.glob("*.py"):
        keys |= set(re.findall(r"""message_key=["']([a-z0-9_]+)["']""", module.read_text("utf-8")))
    return keys | {"inbound", "outbound"}  # t(direction) in the templates


def test_every_key_is_translated() -> None:
    keys = used_keys()
    assert len(keys) > 50
    missing = sorted(k for k in keys if k not in MESSAGES)
    assert missing == []
    for key, (ja, en) in MESSAGES.items():
        assert ja.strip() and en.strip(), key
        assert ja != en or key == "language", key
