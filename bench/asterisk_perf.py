"""Where the host's CPU goes during a host_cost run: Linux ``perf`` (Debian ``linux-perf``) sampling
the Asterisk process while SIPp's calls run, reported as the hottest symbols; and py-spy (the bench
extra) sampling the daemon at the same time, summarised by bench/profile_summary.py.

Sampling at 499 Hz costs the profiled process a little CPU of its own, so a run with ``--perf`` is
for the profile, not for the table's figures.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

PERF = shutil.which("perf")


PY_SPY = Path(sys.executable).with_name("py-spy")


class Profile:
    """``perf record`` of Asterisk, and py-spy of the daemon if given, while the ``with`` block runs."""

    def __init__(self, pid: int, out: Path, daemon: tuple[int, Path] | None = None) -> None:
        if PERF is None:
            raise SystemExit("--perf needs Linux perf (Debian: apt-get install linux-perf)")
        if daemon is not None and not PY_SPY.exists():
            raise SystemExit("--perf profiles the daemon with py-spy: pip install -e '.[bench]'")
        self.pid, self.out, self.daemon = pid, out, daemon
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Profile:
        cmds = [[PERF or "perf", "record", "-F", "499", "-g", "-p", str(self.pid), "-o", str(self.out)]]
        if self.daemon is not None:
            pid, out = self.daemon
            cmds.append([str(PY_SPY), "record", "--nonblocking", "--threads", "--rate", "100", "--format",
                         "raw", "--output", str(out), "--pid", str(pid)])  # fmt: skip
        for cmd in cmds:
            self._procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *_exc: object) -> None:
        for proc in self._procs:
            proc.send_signal(signal.SIGINT)  # both write their file on SIGINT
        for proc in self._procs:
            proc.wait(timeout=120)


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
            symbol = " ".join(parts[3:]).removesuffix(" - -").strip()  # perf's empty srcline columns
            rows.append((float(parts[0][:-1]), parts[1], symbol))
    return sorted(rows, reverse=True)[:limit]


def by_object(data: Path) -> dict[str, int]:
    """Samples per shared object (the kernel, asterisk, libc, modules): where the process's time went."""
    out = subprocess.run(
        [PERF or "perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
         "--sort", "dso", "-n"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    counts: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].endswith("%") and parts[1].isdigit():
            counts[parts[2]] = int(parts[1])
    return counts
