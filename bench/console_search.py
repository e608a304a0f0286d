"""Web console search on a big catalogue (issue 13): server time per search, and the query plans.

    python -m bench.console_search --calls 1000000

Seeds ``--calls`` finished calls (recorderd's schema, through its migrations; 1 % of them held, numbers
drawn from 100,000 callers), starts ``recorderd console`` on it as its own process, signs in as an
auditor and runs each kind of search ``--repeat`` times over HTTP on loopback: one Tokyo day, a number
(typed full-width, with hyphens), held calls only, and a week of not-held calls. Server time is the
console's own ``Server-Timing`` (request in → page rendered, including the search's ledger entry,
committed before the rows are read); the round trip is reported beside it. Then ``EXPLAIN QUERY
PLAN`` of the SQL each search ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert, select, update

from bench.common import DOC, Section, loadavg, percentile, rss_mib, table, write_section
from recorderd.config import load_config
from recorderd.service import Service
from recorderd.service.calls import Query, search
from recorderd.service.people import FreshKey, add_first_person, add_person, change_password
from storage.age import generate_identity
from storage.db import open_database
from storage.models import COMPLETED, Call, Hold

CONFIG = """data_dir = "{data}"
[ami]
enabled = false
[encryption]
recipients = ["{recipient}"]
[console]
listen = "127.0.0.1:{port}"
[people.passwords]
argon2_time_cost = 1
argon2_memory_kib = 8
key_work_factor = 4
"""
CHUNK = 10_000
CALLERS = 100_000
DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _rows(total: int, days: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    span = days * 86400
    for i in range(total):
        started = DAY0 + dt.timedelta(seconds=(i * 7919) % span)
        cid = str(uuid.UUID(int=i + 1))
        chunk.append({
            "id": cid, "direction": "inbound" if i % 3 else "outbound", "line": f"line-{i % 20}",
            "local_number": f"06685{i % 20:05d}", "remote_number": f"090{(i * 31) % CALLERS:08d}",
            "started_at": started, "answered_at": started, "ended_at": started + dt.timedelta(seconds=150),
            "duration_s": 150.0, "status": COMPLETED, "audio_path": f"recordings/{cid}.age",
            "audio_bytes": 2_400_000, "audio_sha256": hashlib.sha256(cid.encode()).hexdigest(),
            "audio_seconds": 150.0, "retention_policy": "",
        })  # fmt: skip
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(root: Path, total: int, port: int) -> tuple[Path, float]:
    (root / "data").mkdir(parents=True, exist_ok=True)
    identity, recipient = generate_identity()
    cfg = root / "recorderd.toml"
    cfg.write_text(CONFIG.format(data=root / "data", recipient=recipient, port=port), encoding="utf-8")
    config = load_config(cfg)
    _e, sessions = open_database(config.db_url)
    t0 = time.monotonic()
    days = max(1, total // 3000)  # ~3,000 calls a day: a large city's contact centre
    for chunk in _rows(total, days):
        with sessions.begin() as s:
            s.execute(insert(Call), chunk)
    with sessions.begin() as s:
        held = [{"call_id": str(uuid.UUID(int=i + 1)), "kind": "disclosure", "reference": f"R-{i}",
                 "reason": "bench", "placed_by": "bench", "placed_at": DAY0}
                for i in range(0, total, 100)]  # fmt: skip
        s.execute(insert(Hold), held)
        # As storage/holds.place would (it sets the flag with each hold; bulk inserts bypass it).
        s.execute(update(Call).where(Call.id.in_(select(Hold.call_id))).values(held=True))
    svc = Service(config, sessions)
    add_first_person(svc, "boss", "boss", "manager", "boss-password-1", key=FreshKey([identity]))
    boss = svc.sign_in("boss", "boss-password-1")
    add_person(svc, boss, "audit", "audit", "auditor", "first-audit-1", key=None)
    change_password(svc, "audit", "first-audit-1", "audit-password-1")
    return cfg, time.monotonic() - t0


def start_console(cfg: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "recorderd.cli.daemon", "console", "--config", str(cfg)],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "recorderd console: URL", once listening (bounded by start-up)
    found = re.search(r"(https?://\S+)", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"the console did not start: {line!r}")
    return proc, found[1]


def sign_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    r = client.post("/signin", data={"csrf": token[1], "person_id": "audit", "password": "audit-password-1"})
    assert r.status_code == 303, r.text
    return client


def searches(days: int) -> dict[str, dict[str, str]]:
    mid = (DAY0 + dt.timedelta(days=days // 2)).date()
    week = mid + dt.timedelta(days=6)
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in "090-0003-1000")  # full-width
    return {
        "one Tokyo day": {"from": mid.isoformat(), "to": mid.isoformat()},
        "a number (full-width, hyphens)": {"number": wide.replace("-", "－")},
        "held only": {"held": "yes"},
        "a week, not held": {"from": mid.isoformat(), "to": week.isoformat(), "held": "no"},
    }


def plans(cfg: Path, days: int) -> list[tuple[str, str, list[str]]]:
    """The SQL each search runs (captured as the service layer executes it) and SQLite's plan."""
    config = load_config(cfg)
    engine, sessions = open_database(config.db_url, migrate=False)
    svc = Service(config, sessions)
    who = svc.sign_in("audit", "audit-password-1")
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM calls" in statement:
            seen.append((statement, parameters))

    out = []
    for label, q in searches(days).items():
        seen.clear()
        first = dt.date.fromisoformat(q["from"]) if "from" in q else None
        last = dt.date.fromisoformat(q["to"]) if "to" in q else None
        held = {"yes": True, "no": False}.get(q.get("held", ""))
        search(svc, who, Query(first=first, last=last, number=q.get("number"), held=held, limit=51))
        sql, params = seen[-1]
        db = sqlite3.connect(config.data_dir / "recorderd.db")
        rows = db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        db.close()
        out.append((label, " ".join(sql.split()), [r[-1] for r in rows]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", help="work directory (default: a temporary one)")
    p.add_argument("--keep", help="seed the catalogue here once and reuse it on later runs")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    args = p.parse_args(argv)
    load = loadavg()
    days = max(1, args.calls // 3000)
    with tempfile.TemporaryDirectory(prefix="bench-console-", dir=args.dir) as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        if args.keep and (root / "recorderd.toml").exists():
            cfg, seed_s = root / "recorderd.toml", 0.0  # seeded by an earlier run
        else:
            cfg, seed_s = seed(root, args.calls, args.port)
        proc, url = start_console(cfg)
        try:
            client = sign_in(url)
            rows = []
            for label, q in searches(days).items():
                server, trip, found = [], [], 0
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    r = client.get("/calls", params={"go": "1", **q})
                    trip.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text[:500]
                    server.append(float(r.headers["server-timing"].split("dur=")[1]))
                    found = r.text.count('class="call-link"')
                rows.append([label, found, f"{percentile(server, 50):.1f}", f"{percentile(server, 99):.1f}",
                             f"{percentile(trip, 99):.1f}"])  # fmt: skip
            rss = rss_mib(proc.pid)[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        explained = plans(cfg, days)
    body = (
        f"{args.calls:,} calls over {days} days, 1 % held; each search {args.repeat} times, page of 50 "
        f"(seeded in {seed_s:.0f} s; console RSS after the searches {rss:.0f} MiB).\n\n"
        + table(["search", "calls on the page", "server p50 ms", "server p99 ms", "round trip p99 ms"], rows)
        + "\n\nQuery plans (SQLite `EXPLAIN QUERY PLAN`):\n\n"
        + "\n".join(f"- {label}: `{' / '.join(plan)}`" for label, _sql, plan in explained)
    )
    section = Section("console_search", body, load)
    print(section.render())
    if args.doc != "-":
        write_section(section, Path(args.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
