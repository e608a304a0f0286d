"""The status file: the one contract between the running daemon and its readers.

The daemon's monitor (``recorderd/daemon/monitor.py``) writes ``<data_dir>/status.json`` atomically
at least every HEARTBEAT_S; ``recorderctl status`` and the console read it with the functions here.
Neither side imports the other: both import this module.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "HEARTBEAT_S",
    "STALE_AFTER",
    "STATUS_FILE",
    "StatusUnavailable",
    "daemon_up",
    "read_status",
    "staleness",
    "status_exit_code",
]

STATUS_FILE = "status.json"
FORMAT = 1
HEARTBEAT_S = 10.0  # the file is rewritten at least this often while the daemon runs
READ_ATTEMPTS = 3
STALE_AFTER = 3  # heartbeats without a rewrite: the daemon is not running (or is hung)


class StatusUnavailable(Exception):
    pass


def read_status(data_dir: Path) -> dict[str, Any]:
    path = data_dir / STATUS_FILE
    for attempt in range(READ_ATTEMPTS):
        try:
            body = json.loads(path.read_bytes())
            break
        except FileNotFoundError as exc:
            raise StatusUnavailable(f"{path}: no status file (the daemon has never run here?)") from exc
        except OSError as exc:
            raise StatusUnavailable(f"{path}: cannot read: {exc.strerror}") from exc
        except ValueError as exc:
            # On a full disk the daemon rewrites the file in place: we may have caught it half done.
            if attempt + 1 == READ_ATTEMPTS:
                raise StatusUnavailable(f"{path}: not valid JSON: {exc}") from exc
            time.sleep(0.05)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise StatusUnavailable(f"{path}: unknown status format")
    return body


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user (recorderd), which is the normal case for root
    return True


def daemon_up(
    status: dict[str, Any],
    now: dt.datetime,
    *,
    pid_alive: Callable[[int], bool] = _pid_alive,
    same_host: bool = True,
) -> tuple[bool, str]:
    """Whether the daemon that wrote ``status`` runs now, and why we think so."""
    state = status.get("state")
    updated = dt.datetime.fromisoformat(str(status.get("updated_at")))
    age = (now - updated).total_seconds()
    limit = float(status.get("heartbeat_s", HEARTBEAT_S)) * STALE_AFTER
    if state == "stopped":
        return False, f"stopped at {updated.isoformat(timespec='seconds')}"
    if same_host and not pid_alive(int(status.get("pid", 0))):
        return False, f"not running (pid {status.get('pid')} gone; last status {age:.0f} s ago: crashed?)"
    if age > limit:
        return (
            False,
            f"not responding: status file {age:.0f} s old (rewritten every {limit / STALE_AFTER:g} s)",
        )
    return state in ("running", "starting", "stopping"), str(state)


def staleness(status: dict[str, Any], now: dt.datetime) -> float | None:
    """How old the file is, in seconds, when that is more than STALE_AFTER heartbeats; else None.
    A stale file's figures (alerts, link, calls) describe the past, not now."""
    updated = dt.datetime.fromisoformat(str(status.get("updated_at")))
    age = (now - updated).total_seconds()
    limit = float(status.get("heartbeat_s", HEARTBEAT_S)) * STALE_AFTER
    return age if age > limit else None


def status_exit_code(status: dict[str, Any] | None, up: bool) -> int:
    """0: running, healthy, nothing open. 1: anything a person should look at."""
    if status is None or not up or not status.get("healthy") or status.get("open_alerts"):
        return 1
    return 0
