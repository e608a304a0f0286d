"""What recording costs the PBX host: N concurrent SIP calls on the real Asterisk (issue 15, part 4).

    python -m bench.host_cost --calls 20,50,100 --repeat 3

On the Asterisk 20.20.1 of the real-PBX lane (scripts/build-asterisk; started unprivileged on free
loopback ports, as tests/support/asterisk.py does) with the real ``recorderd run`` beside it, SIPp
places N concurrent calls, each a caller sending continuous μ-law RTP (noise at speech level) to an
agent leg (a Local channel that answers, plays 2 s and waits), three ways in one run, repeated:

* **unrecorded**: Answer, Dial the agent;
* **MixMonitor**: the same with ``MixMonitor(<uniqueid>.wav)`` before the Dial (what a PBX
  administrator would compare with: Asterisk writes the WAV itself);
* **recorderd (mono)**: the project's own ``from-pstn`` snippet (AGI, then ChanSpy + AudioSocket
  originated by the daemon), on a recorded line without an announcement;
* **recorderd-stereo**: the same on a line with ``channels = "stereo"`` (ChanSpy's ``D`` option: the
  caller left, the city side right, in one 2-channel recording).

Per mode: Asterisk's CPU and the daemon's (utime + stime from /proc, all threads) from SIPp's start
to its exit, and every recording checked: sealed, as long as the call to within a second, sound in
at least 95 % of its 20 ms frames. The extra host CPU per recorded call is the mode's CPU (Asterisk
plus daemon) minus the unrecorded run's of the same repeat, over N; the ratio divides recorderd's by
MixMonitor's (issue 15's goal: at most 1.0). MixMonitor's writes and recorderd's fsyncs are kernel
work done partly outside either process (writeback): not counted for either.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.asterisk_perf import Profile, by_object, hottest
from bench.common import DOC, Section, cpu_seconds, loadavg, table, write_section
from bench.host_lane import MODES, HostLane

CHECK_TOLERANCE_S = 1.0


@dataclass
class Run:
    mode: str
    calls: int
    asterisk_cpu: float = 0.0  # seconds
    daemon_cpu: float = 0.0
    wall: float = 0.0
    complete: int = 0
    problems: list[str] = field(default_factory=list)


def measure(lane: HostLane, mode: str, n: int, perf: Path | None = None) -> Run:
    run = Run(mode, n)
    lane.wait_idle()
    marks = set(lane.recording_ids()) if mode.startswith("recorderd") else set()
    a0, d0, t0 = cpu_seconds(lane.asterisk_pid), cpu_seconds(lane.daemon_pid), time.monotonic()
    if perf is None:
        failed = lane.place_calls(mode, n)
    else:
        spy = perf.with_name(perf.stem.replace("asterisk-", "daemon-") + ".txt")
        daemon = (lane.daemon_pid, spy) if mode != "unrecorded" else None
        with Profile(lane.asterisk_pid, perf, daemon):
            failed = lane.place_calls(mode, n)
    a1, d1, t1 = cpu_seconds(lane.asterisk_pid), cpu_seconds(lane.daemon_pid), time.monotonic()
    run.asterisk_cpu, run.daemon_cpu, run.wall = a1 - a0, d1 - d0, t1 - t0
    if failed:
        run.problems.append(failed)
    if mode.startswith("recorderd"):
        run.complete, problems = lane.check_recorderd(marks, n)
        run.problems += problems
    elif mode == "mixmonitor":
        run.complete, problems = lane.check_mixmonitor(n)
        run.problems += problems
    return run


def report(runs: list[Run], call_s: float) -> str:
    rows = []
    ratios: list[tuple[int, str, float]] = []
    by_repeat: list[dict[str, Run]] = []
    current: dict[str, Run] = {}
    for r in runs:
        if r.mode in current:
            by_repeat.append(current)
            current = {}
        current[r.mode] = r
    if current:
        by_repeat.append(current)
    for rep in by_repeat:
        base = rep.get("unrecorded")
        for mode in MODES:
            if (row := rep.get(mode)) is None:
                continue
            extra = ""
            if base is not None and mode != "unrecorded":
                host = (row.asterisk_cpu + row.daemon_cpu - base.asterisk_cpu - base.daemon_cpu) / row.calls
                extra = f"{1e3 * host:.0f} ms ({1e3 * host / call_s:.1f} ms/call-s)"
            done = "" if mode == "unrecorded" else f"{row.complete} / {row.calls}"
            cpu = f"{row.asterisk_cpu:.2f}", f"{row.daemon_cpu:.2f}"
            rows.append([row.calls, mode, *cpu, f"{row.wall:.0f}", extra, done,
                         "; ".join(row.problems)[:200] or "none"])  # fmt: skip
        if base is None or "mixmonitor" not in rep:
            continue
        baseline = base.asterisk_cpu + base.daemon_cpu
        theirs = rep["mixmonitor"].asterisk_cpu + rep["mixmonitor"].daemon_cpu - baseline
        for ours_mode in ("recorderd", "recorderd-stereo"):
            if (mine := rep.get(ours_mode)) is not None:
                ours = mine.asterisk_cpu + mine.daemon_cpu - baseline
                ratios.append((base.calls, ours_mode, ours / theirs if theirs > 0 else float("nan")))
    body = table(["calls", "mode", "Asterisk CPU s", "daemon CPU s", "wall s", "extra host CPU per call",
                  "complete recordings", "problems"], rows)  # fmt: skip
    lines = [f"- N={n}: {mode}'s extra host CPU per recorded call / MixMonitor's = **{x:.2f}**"
             for n, mode, x in ratios]  # fmt: skip
    return (
        f"Each call {call_s:g} s after the answer; the three modes back to back per repeat. "
        "Extra host CPU: the mode's Asterisk + daemon CPU minus the unrecorded run's, per call.\n\n"
        f"{body}\n\n" + "\n".join(lines) + "\n"
    )


Profiled = tuple[int, str, dict[str, int], list[tuple[float, str, str]]]


def profile_report(profiles: list[Profiled]) -> str:
    """Asterisk's samples per shared object and its hottest symbols per mode (perf, self time)."""
    if not profiles:
        return ""
    parts = ["\nAsterisk under perf (499 Hz; samples per shared object, then the hottest symbols):\n"]
    for n, mode, objects, rows in profiles:
        split = ", ".join(f"{Path(o).name} {c}" for o, c in sorted(objects.items(), key=lambda x: -x[1])[:4])
        hot = ", ".join(f"{pct:.1f} % {sym} ({Path(dso).name})" for pct, dso, sym in rows)
        parts.append(f"- N={n} {mode}: {sum(objects.values())} samples ({split}); {hot}")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", default="20,50,100", help="comma-separated N of concurrent calls")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--call-seconds", type=float, default=20.0, help="length of each call after the answer")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    p.add_argument("--section", default="host_cost")
    p.add_argument("--ami-whitelist", action="store_true",
                   help="experiment: AMI passes only the events recorderd reads")  # fmt: skip
    p.add_argument("--note", default="", help="a line to put above the table")
    p.add_argument("--perf", help="directory for a perf profile of Asterisk per mode and N (first repeat)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = p.parse_args(argv)
    modes = [m for m in MODES if m in args.modes.split(",")]
    if unknown := set(args.modes.split(",")) - set(MODES):
        p.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    load = loadavg()
    runs: list[Run] = []
    profiles: list[Profiled] = []
    if args.perf:
        Path(args.perf).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-host-"))
    lane = HostLane(work, args.call_seconds, max(int(x) for x in args.calls.split(",")), args.ami_whitelist)
    try:
        lane.start()
        for n in (int(x) for x in args.calls.split(",")):
            for repeat in range(args.repeat):
                for mode in modes:
                    data = Path(args.perf) / f"asterisk-{mode}-{n}.data" if args.perf and not repeat else None
                    r = measure(lane, mode, n, data)
                    if data is not None:
                        profiles.append((n, mode, by_object(data), hottest(data)))
                    runs.append(r)
                    print(f"N={n} {mode}: Asterisk {r.asterisk_cpu:.2f} s, daemon {r.daemon_cpu:.2f} s CPU "
                          f"in {r.wall:.0f} s; complete {r.complete}; problems {r.problems or 'none'}",
                          flush=True)  # fmt: skip
    finally:
        lane.close()
        shutil.rmtree(work, ignore_errors=True)
    text = report(runs, args.call_seconds) + profile_report(profiles)
    print(text)
    if args.doc != "-":
        body = (args.note + "\n\n" if args.note else "") + text
        write_section(Section(args.section, body, load), Path(args.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
