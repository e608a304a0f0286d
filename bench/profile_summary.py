"""Summarise py-spy collapsed stacks (``--format raw``): where the daemon's samples go.

python -m bench.profile_summary PROFILE.txt [--top 25] [--thread MainThread]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

_LOC = re.compile(r" \((?P<file>[^()]*):(?P<line>\d+)\)$")


def frame_name(frame: str) -> str:
    """``fn (path/to/file.py:123)`` → ``fn (file.py)``."""
    m = _LOC.search(frame)
    if m is None:
        return frame
    return f"{frame[: m.start()]} ({Path(m.group('file')).name})"


def summarise(path: Path, top: int = 25, thread: str | None = None) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = stack.split(";")
        tname = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        # py-spy --threads puts 'thread (0x...)' first; keep it for the per-thread split
        threads[tname.split(" ")[0] + " " + (tname.split('"')[1] if '"' in tname else tname)] += count
        if thread and thread not in tname:
            continue
        total += count
        names = [frame_name(f) for f in frames if not f.startswith(("thread", "process"))]
        if names:
            self_t[names[-1]] += count
        for name in set(names):
            incl[name] += count
    out = [f"{total} samples" + (f" in threads matching {thread!r}" if thread else "")]
    out.append("\nsamples per thread:")
    out += [f"  {c:7d}  {t}" for t, c in threads.most_common()]
    out.append(f"\ntop {top} by self time:")
    out += [f"  {100 * c / total:5.1f} %  {n}" for n, c in self_t.most_common(top)]
    out.append(f"\ntop {top} inclusive:")
    out += [f"  {100 * c / total:5.1f} %  {n}" for n, c in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--thread")
    args = p.parse_args()
    print(summarise(Path(args.profile), args.top, args.thread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
