"""A shipped configuration (the example, a profile) as it would be on an installed host.

``check-config`` checks what ``run`` checks: the announcement files must be valid prompts and the AMI
secret file readable. So the shipped files' host paths are pointed at a temporary tree holding them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from announce import builtin_prompt


def as_installed(config: Path, root: Path) -> Path:
    """A copy of ``config`` whose /etc/recorderd, /var/lib/recorderd and Asterisk sounds paths live
    under ``root``, with the files they name in place."""
    etc, data, sounds = root / "etc", root / "data", root / "sounds"
    (sounds / "recorderd").mkdir(parents=True, exist_ok=True)
    etc.mkdir(parents=True, exist_ok=True)
    for lang in ("ja", "en"):
        shutil.copyfile(builtin_prompt(lang), sounds / "recorderd" / f"announce-{lang}.wav")
    (etc / "ami-secret").write_text("secret\n", encoding="utf-8")
    text = (
        config.read_text(encoding="utf-8")
        .replace("/var/lib/asterisk/sounds/", f"{sounds}/")
        .replace("/var/lib/recorderd", str(data))
        .replace("/etc/recorderd/", f"{etc}/")
    )
    out = root / config.name
    out.write_text(text, encoding="utf-8")
    return out
