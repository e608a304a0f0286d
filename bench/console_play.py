"""Web console playback and memory (issue 13): an hour-long recording played in Chromium, and the
console's RSS idle and with 50 sessions streaming.

    python -m bench.console_play --minutes 60 --sessions 50

1. A recording of ``--minutes`` (8 kHz mono, speech-like noise), encrypted as the daemon does, and a
   person whose key copy has the production work factor (scrypt 2**18).
2. ``recorderd console`` as its own process; Debian's headless Chromium (selenium) signs in, opens the
   call and clicks Play. The page reports (window.recorderdPlayer): the time to open the key copy, the
   time from the click to the first sample scheduled to sound, and when wavesurfer.js was ready with
   the whole hour. Chromium's JS heap (CDP Performance.getMetrics) and the summed RSS of its processes
   are read at the end and sampled during the run (peak).
3. The console's RSS idle (signed-in sessions, nothing streaming), then with ``--sessions`` sessions
   each fetching the whole ciphertext at once (peak, sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bench.common import DOC, Section, loadavg, rss_mib, table, write_section
from bench.console_search import start_console
from recorderd.config import load_config
from recorderd.service import Service
from recorderd.service.people import FreshKey, add_first_person
from storage.age import generate_identity
from storage.audio import au_header, slin_to_au_payload
from storage.db import open_database
from storage.models import COMPLETED, Call
from storage.vault import AgeWriter

CONFIG = """data_dir = "{data}"
[ami]
enabled = false
[encryption]
recipients = ["{recipient}"]
[console]
listen = "127.0.0.1:0"
[people.passwords]
argon2_time_cost = 1
argon2_memory_kib = 8
"""  # key_work_factor: the default (18), as in production
PASSWORD = "bench-password-1"


def make_site(root: Path, minutes: float) -> tuple[Path, str, int]:
    (root / "data").mkdir(parents=True)
    identity, recipient = generate_identity()
    cfg = root / "recorderd.toml"
    cfg.write_text(CONFIG.format(data=root / "data", recipient=recipient), encoding="utf-8")
    config = load_config(cfg)
    _e, sessions = open_database(config.db_url)
    call_id = "00000000-0000-4000-8000-000000000001"
    rel = f"recordings/{call_id}.age"
    path = config.data_dir / rel
    path.parent.mkdir(parents=True)
    rng = np.random.default_rng(1)
    samples = int(minutes * 60 * 8000)
    w = AgeWriter(path, [recipient])
    w.write(au_header())
    for start in range(0, samples, 8000 * 60):  # a minute at a time
        n = min(8000 * 60, samples - start)
        pcm = (rng.normal(0, 3000, n) * np.sin(np.arange(n) / 2000.0)).astype("<i2").tobytes()
        w.write(slin_to_au_payload(pcm))
    sealed = w.close()
    t = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)
    with sessions.begin() as s:
        s.add(Call(id=call_id, direction="inbound", line="general", started_at=t, answered_at=t,
                   ended_at=t + dt.timedelta(minutes=minutes), duration_s=minutes * 60, status=COMPLETED,
                   audio_path=rel, audio_bytes=sealed.size, audio_sha256=sealed.sha256,
                   audio_seconds=minutes * 60, remote_number="0311112222",
                   local_number="0668585050"))  # fmt: skip
    svc = Service(config, sessions)
    add_first_person(svc, "boss", "boss", "manager", PASSWORD, key=FreshKey([identity]))
    return cfg, call_id, sealed.size


def chromium_rss(driver_pid: int) -> float:
    """Summed RSS (MiB) of chromedriver's descendants (browser, renderer, GPU, utility processes)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0.0, list(children.get(driver_pid, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):
            total += rss_mib(pid)[0]
    return total


def play_in_chromium(url: str, call_id: str, timeout: float) -> dict[str, Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    service = DriverService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], chromium_rss(service.process.pid))

    try:
        driver.get(f"{url}/signin")
        driver.find_element(By.ID, "person_id").send_keys("boss")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "signin").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "search-form"))
        driver.get(f"{url}/calls/{call_id}")
        driver.execute_cdp_cmd("Performance.enable", {})
        base = chromium_rss(service.process.pid)
        threading.Thread(target=sample, daemon=True).start()
        driver.find_element(By.ID, "purpose").send_keys("bench")
        driver.find_element(By.ID, "key-password").send_keys(PASSWORD)
        driver.find_element(By.ID, "play").click()
        finished = "return ['ready','failed','wrong-key','refused'].includes(window.recorderdPlayer.phase)"
        WebDriverWait(driver, timeout, 0.05).until(lambda d: d.execute_script(finished))
        got = driver.execute_script(
            "const s = window.recorderdPlayer; return {phase: s.phase, unlock: s.unlockMs,"
            " unlocked: s.unlockedAt, first: s.firstAudibleMs, ready: s.readyAt,"
            " n: s.samples ? s.samples.length : 0, integrity: s.integrity}"
        )  # fmt: skip
        metrics = {
            m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
        }
        stop.set()
        end = chromium_rss(service.process.pid)
        return {**got, "heap": metrics.get("JSHeapUsedSize", 0) / 2**20, "rss_base": base, "rss_end": end,
                "rss_peak": max(peak[0], end)}  # fmt: skip
    finally:
        stop.set()
        driver.quit()


def sign_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    r = client.post("/signin", data={"csrf": token[1], "person_id": "boss", "password": PASSWORD})
    assert r.status_code == 303
    return client


def stream_many(url: str, call_id: str, n: int, pid: int) -> tuple[float, float, float, int]:
    clients = [sign_in(url) for _ in range(n)]
    time.sleep(1.0)  # settle: what the idle console holds with n signed-in sessions
    idle = rss_mib(pid)[0]
    grants = []
    for c in clients:
        page = c.get(f"/calls/{call_id}").text
        token = re.search(r'data-csrf="([^"]+)"', page)
        assert token
        r = c.post(f"/calls/{call_id}/play", data={"purpose": "bench"}, headers={"X-CSRF-Token": token[1]})
        assert r.status_code == 200, r.text
        grants.append(r.json()["ticket"])
    got = [0] * n
    peak = [idle]
    done = threading.Event()

    def fetch(i: int) -> None:
        with clients[i].stream("GET", f"/sealed/{grants[i]}") as r:
            for piece in r.iter_bytes(65536):
                got[i] += len(piece)

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mib(pid)[0])

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    done.set()
    return idle, peak[0], took, sum(got)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--dir", help="work directory (default: a temporary one)")
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    args = p.parse_args(argv)
    load = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-play-", dir=args.dir) as tmp:
        cfg, call_id, size = make_site(Path(tmp), args.minutes)
        proc, url = start_console(cfg)
        try:
            idle0 = rss_mib(proc.pid)[0]
            page = play_in_chromium(url, call_id, timeout=max(60.0, args.minutes * 10))
            idle, peak, took, total = stream_many(url, call_id, args.sessions, proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    expected = int(args.minutes * 60 * 8000)
    ok = page["phase"] == "ready" and page["n"] == expected and page["integrity"] is True
    body = (
        f"A {args.minutes:g}-minute recording ({size / 2**20:.1f} MiB of ciphertext), key copy at scrypt "
        f"2**18, in Debian's headless Chromium; decoded {page['n']:,} of {expected:,} samples, "
        f"integrity {'matches' if page['integrity'] else 'MISMATCH'}{'' if ok else ' — FAILED'}.\n\n"
        + table(
            ["measure", "value"],
            [
                ["open the key copy (scrypt, in the page)", f"{page['unlock']:.0f} ms"],
                ["click → key copy open (grant + ledger + key copy + scrypt)", f"{page['unlocked']:.0f} ms"],
                ["key open → first sample scheduled to sound", f"{page['first'] - page['unlocked']:.0f} ms"],
                ["click → first sample scheduled to sound", f"{page['first']:.0f} ms"],
                [
                    "click → whole hour decrypted, waveform drawn (wavesurfer ready)",
                    f"{page['ready']:.0f} ms",
                ],
                ["page JS heap at the end", f"{page['heap']:.0f} MiB"],
                [
                    "Chromium RSS (all processes) before Play / peak / at the end",
                    f"{page['rss_base']:.0f} / {page['rss_peak']:.0f} / {page['rss_end']:.0f} MiB",
                ],
                ["console RSS just started", f"{idle0:.0f} MiB"],
                [f"console RSS idle, {args.sessions} sessions signed in", f"{idle:.0f} MiB"],
                [f"console RSS peak, {args.sessions} sessions streaming the file at once", f"{peak:.0f} MiB"],
                [
                    f"{args.sessions} streams: bytes, wall time",
                    f"{total / 2**20:.0f} MiB in {took:.1f} s ({total / 2**20 / took:.0f} MiB/s)",
                ],
            ],
        )
    )
    section = Section("console_play", body, load)
    print(section.render())
    if args.doc != "-":
        write_section(section, Path(args.doc))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
