"""Retention at scale (issue 6, part 3): a big catalogue, its due recordings deleted by the running
daemon while live calls stream into it.

    python -m bench.reaper_pass --calls 1000000 --due 0.1 --live 200
    python -m bench.reaper_pass --calls 1000000 --due 0.1 --live 200 --postgres

``--postgres``: the catalogue on a throwaway PostgreSQL cluster (bench/postgres.py), its server on the
load generator's core; seeding, the pass, the plan and the checks all run against it.

1. **Seed** a data directory: ``--calls`` finished calls in the catalogue (recorderd's schema, through its
   migrations), the oldest ``--due`` fraction older than the 31-day policy below and each backed by
   a file (a stand-in for its ciphertext: only due files are ever opened); the catalogue as a daemon
   without a retention policy has left it (policy "" on every row, that configuration applied).
2. **The daemon** (``bench.daemon_proc``: ``Daemon`` as ``recorderd run`` starts it) runs pinned to
   core 0; the load generator of ``bench.concurrent_calls`` on core 1 sets up ``--live`` calls over
   FastAGI and streams each over AudioSocket in real time (50 frames/s, send time in every frame).
3. After a ``--baseline`` window, the 31-day policy is written into the configuration and SIGHUP
   reloads it, as an operator does: the reload starts a pass that computes every row's expiry (a
   policy change), then deletes the due files in batches (intent, unlink, directory fsync, row
   update, a retention-log and a ledger entry each). Its phases come from the daemon's own JSON log.
4. **Plan**: ``recorderctl retention plan`` (the next 31 days), as an operator runs it, timed.

Reported: the pass's phases and rate; the live calls' frame delays (arrival at the recording, and
sent → fsynced) in the baseline window and during the pass; daemon CPU and RSS; and whether every
live recording, decrypted, holds every frame in order. Then the catalogue is checked: every due
file gone, every deletion in the rows, the retention log and the ledger (``ledger.verify``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.common import (
    DOC,
    REPO,
    Section,
    cpu_seconds,
    loadavg,
    percentile,
    pin,
    rss_mib,
    table,
    write_section,
)
from bench.concurrent_calls import CONFIG, DAEMON_CORE, LOADGEN_CORE, LoadGenerator
from bench.concurrent_calls import Result as CallsResult
from bench.concurrent_calls import verify as verify_calls
from bench.postgres import Catalogue, add_arguments, catalogue, config_line, sqlalchemy_url
from recorderd.config import load_config
from recorderd.retention import rules as retention_rules
from recorderd.service import Service
from recorderd.service.people import FreshKey, add_first_person, add_person, change_password
from storage import ledger, retention_log
from storage.age import generate_identity
from storage.db import immediate, open_database
from storage.models import COMPLETED, Call, LedgerRow, RetentionEvent

POLICY = """
[retention]
default = "raw"
policy_change_grace_h = 0   # the benchmark's policy applies at once (the default grace is 24 h)
[retention.policies.raw]
keep = { days = 31 }
"""
LINE = "staff-out"  # the load generator's line (bench.concurrent_calls.CONFIG)
CHUNK = 10_000


def _rows(total: int, due: int, now: dt.datetime, data: Path) -> Iterator[list[dict[str, Any]]]:
    """The catalogue in chunks, oldest first; each due call's file is written on the way."""
    chunk: list[dict[str, Any]] = []
    for i in range(total):
        old = i < due
        age = dt.timedelta(days=36 + i % 300) if old else dt.timedelta(days=i % 29)
        started = now - age - dt.timedelta(minutes=i % 600)
        cid = str(uuid.UUID(int=i + 1))
        rel = f"recordings/{started:%Y/%m/%d}/{cid}.age"
        blob = cid.encode() * 64
        if old:
            path = data / rel
            try:
                path.write_bytes(blob)
            except FileNotFoundError:
                path.parent.mkdir(parents=True)
                path.write_bytes(blob)
        chunk.append({
            "id": cid, "direction": "inbound", "line": LINE, "local_number": "0668585050",
            "remote_number": f"090{i:08d}", "started_at": started, "answered_at": started,
            "ended_at": started + dt.timedelta(seconds=150), "duration_s": 150.0, "status": COMPLETED,
            "audio_path": rel, "audio_bytes": len(blob), "audio_sha256": hashlib.sha256(blob).hexdigest(),
            "audio_seconds": 150.0, "retention_policy": "",
        })  # fmt: skip
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(config_path: Path, total: int, due: int) -> None:
    config = load_config(config_path)
    _e, sessions = open_database(config.db_url)
    now = dt.datetime.now(dt.UTC)
    for chunk in _rows(total, due, now, config.data_dir):
        with sessions.begin() as s:
            s.execute(insert(Call), chunk)
    with immediate(sessions) as s:  # what a daemon without [retention] records once it ran a pass
        retention_log.set_state(s, "policy_fingerprint", retention_rules.fingerprint(config)[0])


class LogTail:
    """The daemon's JSON log, read as it grows (100,000 deletions are 100,000 lines)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.seen: list[dict[str, Any]] = []

    def wait_for(self, event: str, timeout: float, after: float = 0.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self.offset += end
            for line in data[:end].splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("event") in ("retention_pass", "retention_policy_changed", "reloaded"):
                        self.seen.append(entry)
            for entry in self.seen:
                if entry["event"] == event and _wall(entry) >= after:
                    return entry
            time.sleep(0.1)
        raise TimeoutError(f"no {event!r} in the daemon's log within {timeout:g} s")


def _wall(entry: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(entry["timestamp"]).timestamp()


@dataclass
class Outcome:
    calls: int
    due: int
    live: int
    seed_s: float = 0.0
    ready_s: float = 0.0
    assign_s: float = 0.0  # reload → every row's expiry written (policy change logged)
    delete_s: float = 0.0  # → pass finished
    deleted: int = 0
    plan_s: float = 0.0
    plan_lines: int = 0
    db_mib: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # daemon CPU % of its core, per window
    rss: dict[str, float] = field(default_factory=dict)
    delays: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    frames: CallsResult | None = None
    checks: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.frames.lost if self.frames else -1


def _delays(samples: list[list[int]], start: int, end: int) -> tuple[float, float, float]:
    values = [d / 1e6 for t, d, *_ in samples if start <= t <= end]
    if not values:
        return (float("nan"), float("nan"), float("nan"))
    return (percentile(values, 50), percentile(values, 99), max(values))


def database_mib(url: str) -> float:
    engine, sessions = open_database(url, migrate=False)
    try:
        with sessions() as s:
            if engine.dialect.name == "postgresql":
                return (
                    float(s.execute(text("SELECT pg_database_size(current_database())")).scalar_one()) / 2**20
                )
    finally:
        engine.dispose()
    return Path(url.removeprefix("sqlite:///")).stat().st_size / 2**20


def run(args: argparse.Namespace, root: Path, db: Catalogue) -> Outcome:
    out = Outcome(args.calls, int(args.calls * args.due), args.live)
    identity, recipient = generate_identity()
    data_dir = root / "data"
    data_dir.mkdir()
    config = root / "recorderd.toml"
    db_url = db.fresh()
    base = config_line(db_url) + CONFIG.format(data_dir=data_dir, recipient=recipient)
    config.write_text(base, encoding="utf-8")
    t = time.monotonic()
    seed(config, out.calls, out.due)
    out.seed_s = time.monotonic() - t
    out.db_mib = database_mib(sqlalchemy_url(db_url, data_dir))
    log_path, probes = root / "daemon.log", root / "probes.json"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    cmd = [
        sys.executable,
        "-m",
        "bench.daemon_proc",
        str(config),
        "--log",
        str(log_path),
        "--probes",
        str(probes),
    ]
    spawned = time.monotonic_ns()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, env=env, cwd=REPO, preexec_fn=lambda: pin({DAEMON_CORE}) and None
    )
    tail = LogTail(log_path)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        out.ready_s = (ready["ready"] - spawned) / 1e9  # start-up recovery looks at every file
        tail.wait_for("retention_pass", 600)  # the start-up pass (nothing to do: no policy yet)
        gen = LoadGenerator(ready["agi_port"], args.live, 100.0)
        gen.streamer.start()
        asyncio.run(gen.place_all())
        time.sleep(args.settle)
        c0, m0 = cpu_seconds(proc.pid), time.monotonic_ns()
        time.sleep(args.baseline)
        c1, m1 = cpu_seconds(proc.pid), time.monotonic_ns()
        out.cpu["baseline"] = 100 * (c1 - c0) / ((m1 - m0) / 1e9)
        out.rss["baseline"] = rss_mib(proc.pid)[0]
        config.write_text(base + POLICY, encoding="utf-8")
        hup_wall, hup = time.time(), time.monotonic_ns()
        os.kill(proc.pid, signal.SIGHUP)
        changed = tail.wait_for("retention_policy_changed", args.timeout, after=hup_wall)
        out.rss["expiries"] = rss_mib(proc.pid)[0]
        done = tail.wait_for("retention_pass", args.timeout, after=hup_wall)
        c2, m2 = cpu_seconds(proc.pid), time.monotonic_ns()
        out.rss["deletions"], out.rss["peak"] = rss_mib(proc.pid)
        # The log's wall-clock times on the probes' monotonic clock, through the SIGHUP instant.
        to_mono = {
            k: hup + int((_wall(e) - hup_wall) * 1e9) for k, e in (("changed", changed), ("done", done))
        }
        out.assign_s = (to_mono["changed"] - hup) / 1e9
        out.delete_s = (to_mono["done"] - to_mono["changed"]) / 1e9
        out.deleted = int(done.get("deleted", 0))
        out.cpu["pass"] = 100 * (c2 - c1) / ((m2 - m1) / 1e9)
        asyncio.run(gen.hang_up_all())
        gen.streamer.running = False
        time.sleep(2.0)  # the hang-ups' last blocks sealed (checked below: unreadable files would show)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    samples: dict[str, list[list[int]]] = json.loads(probes.read_text())
    windows = {"baseline": (m0, m1), "assign": (hup, to_mono["changed"]), "delete": (to_mono["changed"], m2)}
    for name, (a, b) in windows.items():
        out.delays[name] = {k: _delays(samples[k], a, b) for k in ("arrival", "durable")}
    out.frames = CallsResult(args.live, sum(1 for c in gen.calls if c.sock is not None))
    verify_calls(data_dir, identity, gen.calls, out.frames, db_url)
    reader = planner(config, data_dir)
    t = time.monotonic()
    plan = subprocess.run(
        [sys.executable, "-m", "recorderd.cli.ctl", "--config", str(config), "retention", "plan", *reader],
        env=env, cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    out.plan_s = time.monotonic() - t
    out.plan_lines = len(plan.stdout.splitlines())
    out.checks = check_catalogue(data_dir, out.due, db_url)
    return out


def planner(config: Path, data_dir: Path) -> list[str]:
    """A person who may read the plan (an auditor: the plan is ledgered like any look at the
    catalogue); returns the recorderctl arguments that sign them in."""
    cfg = load_config(config)
    svc = Service(cfg, open_database(cfg.db_url)[1])
    password = "bench-auditor-pw"
    add_first_person(svc, "benchboss", "Bench", "manager", password, key=FreshKey([generate_identity()[0]]))
    boss = svc.sign_in("benchboss", password)
    add_person(svc, boss, "bench", "Bench auditor", "auditor", "first-" + password, key=None)
    change_password(svc, "bench", "first-" + password, password)
    file = data_dir / "bench-password"
    file.write_text(password)
    return ["--as", "bench", "--password-file", str(file)]


def check_catalogue(data_dir: Path, due: int, db_url: str = "") -> dict[str, int]:
    """Every due file gone and accounted for: rows, retention log, ledger (verified whole), in the
    catalogue at ``db_url`` (empty: the SQLite file in ``data_dir``)."""
    engine, sessions = open_database(sqlalchemy_url(db_url, data_dir), migrate=False)
    queries = {
        "rows deleted": select(func.count()).select_from(Call).where(Call.audio_deleted_at.is_not(None)),
        "log entries": select(func.count())
        .select_from(RetentionEvent)
        .where(RetentionEvent.action == "delete"),
        "ledger entries": select(func.count()).select_from(LedgerRow).where(LedgerRow.kind == "deleted"),
    }
    try:
        with sessions() as s:
            checks = {k: int(s.execute(q).scalar_one()) for k, q in queries.items()}
            report = ledger.verify(s)
    finally:
        engine.dispose()
    seeded = {f"{uuid.UUID(int=i + 1)}.age" for i in range(due)}
    checks["due files left"] = sum(1 for p in (data_dir / "recordings").rglob("*.age") if p.name in seeded)
    checks["ledger problems"] = len(report.problems)
    checks["ledger entries checked"] = report.checked
    return checks


def _fmt(t: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in t)


def body(r: Outcome, args: argparse.Namespace, backend: str = "") -> str:
    assert r.frames is not None
    rate = f"{r.deleted / r.delete_s:,.0f}" if r.delete_s else "-"
    phases = table(
        ["catalogued", "due", "deleted", "expiries computed (policy change)", "due files deleted",
         "deletions/s", "`retention plan` (31 days)", "database", "seeding"],
        [[f"{r.calls:,}", f"{r.due:,}", f"{r.deleted:,}",
          f"{r.assign_s:.1f} s ({r.calls / r.assign_s:,.0f} rows/s)", f"{r.delete_s:.1f} s", rate,
          f"{r.plan_s:.1f} s ({r.plan_lines} lines)", f"{r.db_mib:,.0f} MiB", f"{r.seed_s:.0f} s"]],
    )  # fmt: skip
    rows = []
    for name, label in (
        ("baseline", "live calls only"),
        ("assign", "pass: expiries"),
        ("delete", "pass: deletions"),
    ):
        d = r.delays[name]
        cpu = r.cpu["baseline" if name == "baseline" else "pass"]
        rows.append([label, _fmt(d["arrival"]), _fmt(d["durable"]), f"{cpu:.0f} %"])
    delays = table(["window", "arrival ms p50/p99/max", "sent→fsynced ms p50/p99/max", "daemon CPU"], rows)
    checks = ", ".join(f"{k}: {v:,}" for k, v in r.checks.items())
    return (
        (backend + "\n\n" if backend else "")
        + f"Daemon start to READY on this catalogue: {r.ready_s:.1f} s. "
        f"{r.live} live calls ({r.frames.established} set up), {args.baseline:g} s baseline window; "
        f"daemon RSS {r.rss['baseline']:.0f} MiB before the pass, {r.rss['expiries']:.0f} MiB once the "
        f"expiries are computed, {r.rss['deletions']:.0f} MiB at its end (peak {r.rss['peak']:.0f} MiB).\n\n"
        f"{phases}\n\n{delays}\n\n"
        f"Live recordings: {r.frames.generated:,} frames sent, {r.frames.stored:,} stored, "
        f"**{r.lost} lost**, {r.frames.misordered_files} misordered, "
        f"{r.frames.unreadable_files} unreadable.  \n"
        f"Catalogue after the pass: {checks}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--due", type=float, default=0.1)
    p.add_argument("--live", type=int, default=200, help="calls streaming during the pass")
    p.add_argument("--baseline", type=float, default=30.0, help="seconds of live calls before the pass")
    p.add_argument("--settle", type=float, default=5.0, help="seconds between call set-up and baseline")
    p.add_argument("--timeout", type=float, default=3600.0, help="for each phase of the pass")
    p.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    p.add_argument("--section", help="the block of the doc to (re)write (default: reaper_pass[_postgresql])")
    add_arguments(p)
    args = p.parse_args(argv)
    load = loadavg()
    pin({LOADGEN_CORE})
    sys.setswitchinterval(0.0005)  # the media thread must not wait 5 ms for the GIL (as concurrent_calls)
    # After pin(): a PostgreSQL server started here inherits the load generator's core.
    with tempfile.TemporaryDirectory(prefix="bench-reaper-", dir=args.dir) as tmp, catalogue(args) as db:
        r = run(args, Path(tmp), db)
        backend = db.describe(DAEMON_CORE, LOADGEN_CORE)
        section = args.section or ("reaper_pass" if db.name == "sqlite" else f"reaper_pass_{db.name}")
    text = body(r, args, backend)
    print(text)
    if args.doc != "-":
        write_section(Section(section, text, load), Path(args.doc))
    bad = r.lost or r.deleted != r.due or r.checks["due files left"] or r.checks["ledger problems"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
