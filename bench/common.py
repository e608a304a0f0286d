"""What every benchmark needs: the machine, /proc readings, pinning, percentiles, the doc writer."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "PERFORMANCE.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def command_line() -> str:
    return "python -m " + " ".join(shlex.quote(a) for a in [_module_name(), *sys.argv[1:]])


def _module_name() -> str:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


def pin(cores: set[int], pid: int = 0) -> bool:
    """Pin ``pid`` (0: this process) to ``cores`` if the machine has them; False if it cannot."""
    if not hasattr(os, "sched_setaffinity") or max(cores) >= (os.cpu_count() or 1):
        return False
    os.sched_setaffinity(pid, cores)
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU time of the process's main thread alone (the daemon's event loop)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+) kB", text)
    hwm = re.search(r"VmHWM:\s+(\d+) kB", text)
    return (int(rss.group(1)) / 1024 if rss else 0.0, int(hwm.group(1)) / 1024 if hwm else 0.0)


def core_times() -> list[tuple[int, int]]:
    """Per CPU (busy, total) jiffies from /proc/stat; busy includes irq and softirq time, which the
    kernel charges to no process (on loopback, TCP delivery runs as the sender's softirq)."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + v[4]  # idle + iowait
            total = sum(v[:8])
            out.append((total - idle, total))
    return out


def core_busy(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    """Per CPU busy % between two ``core_times()`` readings."""
    return [
        100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        for (b0, t0), (b1, t1) in zip(before, after, strict=True)
    ]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass
class Section:
    """One benchmark's block in docs/PERFORMANCE.md, between markers, replaced on every run."""

    name: str
    body: str
    load_before: str  # load average when the benchmark started

    def render(self) -> str:
        header = (
            f"_Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on {machine()}; "
            f"load average (1/5/15 min) at the start: {self.load_before}, at the end: {loadavg()}._\n\n"
            f"```sh\n{command_line()}\n```\n\n"
        )
        return (
            f"<!-- bench:{self.name}:start -->\n{header}{self.body.rstrip()}\n<!-- bench:{self.name}:end -->"
        )


def write_section(section: Section, doc: Path = DOC) -> None:
    """Replace the section's block in ``doc`` (append it if absent)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Performance\n"
    block = section.render()
    pattern = re.compile(
        rf"<!-- bench:{re.escape(section.name)}:start -->.*?<!-- bench:{re.escape(section.name)}:end -->",
        re.S,
    )
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text.rstrip() + "\n", encoding="utf-8")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
