"""Where Asterisk spends its CPU during a host_cost run: Linux ``perf`` (Debian ``linux-perf``)
sampling the Asterisk process while SIPp's calls run, reported as the hottest symbols.

Sampling at 499 Hz costs the profiled process a little CPU of its own, so a run with ``--perf`` is
for the profile, not for the table's figures.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

PERF = shutil.which("perf")


class Profile:
    """``perf record`` of one process for as long as the ``with`` block runs."""

    def __init__(self, pid: int, out: Path) -> None:
        if PERF is None:
            raise SystemExit("--perf needs Linux perf (Debian: apt-get install linux-perf)")
        self.pid, self.out = pid, out
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        cmd = [PERF or "perf", "record", "-F", "499", "-g", "-p", str(self.pid), "-o", str(self.out)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)  # perf writes its file on SIGINT
        self._proc.wait(timeout=60)


def hottest(data: Path, limit: int = 12) -> list[tuple[float, str, str]]:
    """The symbols with the most samples (self time): (percent, shared object, symbol)."""
    out = subprocess.run(
        [PERF or "perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
         "--sort", "dso,symbol", "--percent-limit", "0.5"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    rows: list[tuple[float, str, str]] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith("%") and parts[2].startswith("["):
            rows.append((float(parts[0][:-1]), parts[1], " ".join(parts[3:])))
    return sorted(rows, reverse=True)[:limit]
