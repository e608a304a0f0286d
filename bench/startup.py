"""Start-up to READY, and memory per idle daemon and per active call (issue 6, part 4).

    python -m bench.startup --runs 5 --calls 500

Start-up: the real command (``python -m recorderd.cli run --config …``, as the systemd unit runs
``recorderd run``) pinned to one core, from ``exec`` to READY: the ``READY=1`` datagram on
``$NOTIFY_SOCKET`` (what systemd waits for with Type=notify) when the daemon sends one, else its
``ready`` log line. Twice per run: on a fresh data directory (creates the database: migrations)
and again on the same directory (a restart). Idle memory: RSS one second after READY. Then
SIGTERM, and the time to a clean exit.

Per active call: ``bench.concurrent_calls`` with ``--calls`` real-time calls: (RSS with the calls
streaming − RSS idle) / calls.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DOC, Section, loadavg, pin, rss_mib, table, write_section
from bench.concurrent_calls import CONFIG, DAEMON_CORE, LOADGEN_CORE, run_one
from storage.age import generate_identity


def start_once(config: Path, root: Path, tag: str) -> dict[str, float]:
    notify_path = root / "notify.sock"
    notify_path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.005)
    log_path = root / f"daemon-{tag}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
    cmd = [sys.executable, "-m", "recorderd.cli", "run", "--config", str(config), "--json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=log, env=env, preexec_fn=lambda: pin({DAEMON_CORE}) and None
    )
    ready_at = logged_at = None
    deadline = t0 + 120
    try:
        while ready_at is None:
            now = time.perf_counter()
            if now > deadline or proc.poll() is not None:
                raise RuntimeError(f"daemon did not become ready; see {log_path}")
            if logged_at is not None and now - logged_at > 2.0:
                break  # a daemon without sd_notify: its ready log line is all there is
            try:
                if "READY=1" in notify.recv(4096).decode().split("\n"):
                    ready_at = time.perf_counter()
            except TimeoutError:
                if logged_at is None and b'"event": "ready"' in log_path.read_bytes():
                    logged_at = time.perf_counter()
        ready_via = "READY=1" if ready_at is not None else "log line"
        ready_at = ready_at if ready_at is not None else logged_at
        assert ready_at is not None
        ready = ready_at - t0
        time.sleep(1.0)
        rss, _peak = rss_mib(proc.pid)
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stop = time.perf_counter() - t1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        log.close()
    return {"ready_s": ready, "rss_mib": rss, "stop_s": stop, "via_notify": float(ready_via == "READY=1")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=500, help="calls for the per-call memory (0: skip)")
    p.add_argument("--seconds", type=float, default=10.0, help="steady state for the per-call memory")
    p.add_argument("--dir", help="work directory (default: a temporary one)")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    args = p.parse_args(argv)
    load = loadavg()
    pin({LOADGEN_CORE})
    fresh: list[dict[str, float]] = []
    again: list[dict[str, float]] = []
    per_call = None
    with tempfile.TemporaryDirectory(prefix="bench-start-", dir=args.dir) as tmp:
        for i in range(args.runs):
            root = Path(tmp) / f"run{i}"
            (root / "data").mkdir(parents=True)
            _identity, recipient = generate_identity()
            config = root / "recorderd.toml"
            config.write_text(CONFIG.format(data_dir=root / "data", recipient=recipient), encoding="utf-8")
            fresh.append(start_once(config, root, "fresh"))
            again.append(start_once(config, root, "again"))
        if args.calls:
            r = run_one(
                args.calls, args.seconds, 200.0, Path(tmp), os.environ.get("RECORDERD_EVENT_LOOP", "asyncio")
            )
            per_call = (r.rss - r.rss_idle) * 1024 / args.calls, r.rss_idle, r.rss, r.lost
    rows = []
    for label, runs in (
        ("fresh data directory (creates the database)", fresh),
        ("restart (database exists)", again),
    ):
        ready = [r["ready_s"] for r in runs]
        rows.append([
            label, f"{statistics.median(ready):.2f}", f"{max(ready):.2f}",
            f"{statistics.median(r['rss_mib'] for r in runs):.0f}",
            f"{statistics.median(r['stop_s'] for r in runs):.2f}",
            "READY=1 (sd_notify)" if all(r["via_notify"] for r in runs) else "`ready` log line",
        ])  # fmt: skip
    body = table(
        ["start", "to READY s (median)", "max", "idle RSS MiB", "SIGTERM → exit s", "READY seen as"], rows
    )
    text = f"{args.runs} runs each, daemon pinned to one core.\n\n{body}\n"
    if per_call is not None:
        kib, idle, busy, lost = per_call
        text += (
            f"\nPer active call: {kib:.0f} KiB (RSS {idle:.0f} MiB idle → {busy:.0f} MiB with {args.calls} "
            f"calls streaming for {args.seconds:g} s; {lost} frames lost).\n"
        )
    print(text)
    print(json.dumps({"fresh": fresh, "restart": again}))
    if args.doc != "-":
        write_section(Section("startup", text, load), Path(args.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
