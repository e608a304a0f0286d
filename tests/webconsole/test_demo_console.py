"""``recorderd demo --console``: the demo, then the console on its data until Ctrl-C, signing in as the
demo person with the ID and password it prints."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_keeps_the_console_running(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "recorderd.cli",
        "demo",
        "--dir",
        str(tmp_path),
        "--speed",
        "25",
        "--console",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout or []], daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=120)
            if line.startswith("Web console:"):
                break
        found = re.match(r"Web console: (\S+)\s+\(ID (\S+), password (\S+);", line)
        assert found, line
        url, pid, password = found.groups()
        client = httpx.Client(base_url=url, timeout=10)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
        assert token
        signed = client.post("/signin", data={"csrf": token[1], "person_id": pid, "password": password})
        assert signed.status_code == 303
        page = client.get("/calls", params={"go": "1"})
        assert page.status_code == 200 and page.text.count('class="call-link"') == 5  # the demo's five calls
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
