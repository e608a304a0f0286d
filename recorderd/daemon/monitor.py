"""Health and status: the watchdog, ``STATUS=`` for systemd, and the status file ``recorderctl status`` reads.

One task (``Monitor.run``) ticks every couple of seconds. Each tick probes the database and the data
directory's free space off the event loop, looks at the metadata writer, the AMI link and the events
hub, then

- pings systemd's watchdog only if the daemon is healthy: the tick itself proves the event loop
  runs; the metadata writer must not have been stalled, nor the database unreachable, for longer
  than ``monitoring.stall_bound_s``. Past that, systemd restarts us (WatchdogSec=) - that is the
  point: a wedged database connection is something a restart can cure, and waiting forever is not;
- sends ``STATUS=`` when the one-line summary changes;
- raises or resolves the ``disk_low`` and ``metadata_writer_stalled`` alerts;
- writes ``<data_dir>/status.json`` atomically (temp file + rename) when anything changed, and at
  least every HEARTBEAT_S, so a reader can tell a live daemon from a stale file.

A status file rather than a control socket (docs/decisions.md): nothing new listens, it needs no
protocol, it is readable with the same permissions as the data it describes, and after a crash it
still says what the daemon last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.daemon.events import Events
from recorderd.daemon.sdnotify import Notifier
from recorderd.statusfile import FORMAT, HEARTBEAT_S, STATUS_FILE
from storage.files import disk_usage

log = structlog.get_logger("recorderd.status")

PROBE_TIMEOUT_S = 10.0
LOOP_LAG_WARN_S = 1.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(ts: dt.datetime | None) -> str | None:
    return ts.astimezone(dt.UTC).isoformat() if ts is not None else None


class CallsView(Protocol):  # what the monitor reads from the CallManager
    accepting: bool

    @property
    def active(self) -> int: ...


class WriterView(Protocol):  # ... and from the MetadataWriter
    stalled: bool

    @property
    def backlog(self) -> int: ...


@dataclass
class Probe:
    """One look at the database and the disk, taken in a worker thread."""

    db_ok: bool
    db_error: str | None
    free_bytes: int | None
    total_bytes: int | None


@dataclass
class Health:
    healthy: bool  # feed the watchdog
    problems: list[str] = field(default_factory=list)  # shown in STATUS= and the status file


STATUS_RESERVE = 64 * 1024  # the status file is padded to a multiple of this: room to rewrite it in place


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn one (rename is atomic in a directory).

    The file is padded with spaces (JSON ignores them) to a multiple of STATUS_RESERVE. When the
    disk is full (recordings share it), the new temp file cannot be written; then the content is
    written over the old file's blocks, which are already allocated, so ``recorderctl status`` still
    sees the present (a full disk) rather than a picture of before. A reader that catches that
    rewrite half done gets invalid JSON and reads again (statusfile.read_status).
    """
    size = -(-len(data) // STATUS_RESERVE) * STATUS_RESERVE
    padded = data + b" " * (size - len(data))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(padded)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite_in_place(path, data):
            raise
        return
    os.replace(tmp, path)


def _overwrite_in_place(path: Path, data: bytes) -> bool:
    """Write ``data`` over the existing file's reserved bytes; False if it does not fit."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if len(data) > size:
            return False
        os.pwrite(fd, data + b" " * (size - len(data)), 0)
        return True
    finally:
        os.close(fd)


class Monitor:
    def __init__(
        self,
        config: Config,
        *,
        notifier: Notifier,
        events: Events,
        calls: CallsView,
        writer: WriterView,
        sessions: sessionmaker[Session],
        link: Callable[[], dict[str, object]],
        cluster: Callable[[], dict[str, object]] | None = None,
        tick_s: float | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier
        self.events = events
        self.calls = calls
        self.writer = writer
        self.sessions = sessions
        self.link = link
        self.cluster = cluster or (lambda: {"node": config.node, "leader": True, "shared": False})
        wd = notifier.watchdog_s
        # Ping at least 4 times per watchdog period: one slow probe must not cost a restart.
        self.tick_s = tick_s if tick_s is not None else min(2.0, wd / 4) if wd else 2.0
        self._clock = clock
        self._mono = monotonic or (lambda: asyncio.get_running_loop().time())
        self.path = config.data_dir / STATUS_FILE
        self.state = "starting"
        self.started_at = clock()
        self.health = Health(True)
        self.last_ping: dt.datetime | None = None
        self.max_loop_lag_s = 0.0
        self.stopped_summary: dict[str, object] = {}
        self._probe = Probe(True, None, None, None)
        self._probe_task: asyncio.Future[Probe] | None = None
        self._probe_started = 0.0
        self._db_bad_since: float | None = None
        self._stall_since: float | None = None
        self._last_written: bytes | None = None
        self._last_write_at = float("-inf")

    # -- lifecycle hooks (called by the daemon) --------------------------------------------------
    def ready(self) -> None:
        self.state = "running"
        self._write_now()
        self.notifier.ready(self.summary())

    def writer_stalled(self, error: str) -> None:
        """MetadataWriter's on_stall: the first failed write of a stall."""
        self._stall_since = self._mono()
        self.events.alert("metadata_writer_stalled", error=error[:200], backlog=self.writer.backlog)

    def stopping(self) -> None:
        self.state = "stopping"
        self.notifier.stopping(f"stopping: sealing {self.calls.active} recording(s)")
        self._write_now()

    def stopped(self, **summary: object) -> None:
        self.state = "stopped"
        self.stopped_summary = summary
        self._write_now()

    # -- the loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.tick()
            except Exception:
                # No ping this tick: if it keeps failing, the watchdog restarts us, which is right.
                log.exception("monitor_tick_failed")
            before = loop.time()
            await asyncio.sleep(self.tick_s)
            lag = loop.time() - before - self.tick_s
            self.max_loop_lag_s = max(self.max_loop_lag_s, lag)
            if lag > LOOP_LAG_WARN_S:
                # Something held the event loop (a blocking call): frames waited that long too.
                log.warning("event_loop_lag", lag_s=round(lag, 3))

    async def tick(self) -> Health:
        await self._refresh_probe()
        self.health = self._assess()
        if self.state == "running":
            if self.health.healthy:
                self.notifier.watchdog()
                self.last_ping = self._clock()
            self.notifier.status(self.summary())
        data, key = self._render()
        now = self._mono()
        if key != self._last_written or now - self._last_write_at >= HEARTBEAT_S:
            try:
                await asyncio.to_thread(write_atomically, self.path, data)
                self._last_written, self._last_write_at = key, now
            except OSError as exc:
                log.warning("status_file_not_written", path=str(self.path), error=exc.strerror)
        return self.health

    async def _refresh_probe(self) -> None:
        now = self._mono()
        if self._probe_task is None:
            self._probe_task = asyncio.ensure_future(asyncio.to_thread(self._take_probe))
            self._probe_started = now
        # Wait briefly for it; a probe stuck in the database is itself the finding, not a reason
        # to stop ticking. The same probe is awaited again next tick rather than piling up threads.
        done, _ = await asyncio.wait({self._probe_task}, timeout=min(self.tick_s, PROBE_TIMEOUT_S))
        if done:
            self._probe = self._probe_task.result()
            self._probe_task = None
        elif now - self._probe_started > PROBE_TIMEOUT_S:
            self._probe = Probe(
                False,
                f"database probe unanswered for {now - self._probe_started:.0f} s",
                self._probe.free_bytes,
                self._probe.total_bytes,
            )
        if self._probe.db_ok:
            self._db_bad_since = None
        elif self._db_bad_since is None:
            self._db_bad_since = now

    def _take_probe(self) -> Probe:
        db_ok, error = True, None
        try:
            with self.sessions() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to answer is "unreachable"; the text says which
            db_ok, error = False, str(exc).splitlines()[0][:200]
        free, total = disk_usage(self.config.data_dir)
        return Probe(db_ok, error, free, total)

    def _assess(self) -> Health:
        now = self._mono()
        bound = self.config.monitoring.stall_bound_s
        problems: list[str] = []
        healthy = True
        if self.writer.stalled:
            since = self._stall_since if self._stall_since is not None else now
            self._stall_since = since
            problems.append(f"metadata writer stalled {now - since:.0f} s (backlog {self.writer.backlog})")
            healthy &= now - since <= bound
        elif self._stall_since is not None:
            self._stall_since = None
            self.events.resolve("metadata_writer_stalled")
        if self._db_bad_since is not None:
            problems.append(f"database unreachable {now - self._db_bad_since:.0f} s: {self._probe.db_error}")
            healthy &= now - self._db_bad_since <= bound
        free = self._probe.free_bytes
        threshold = self.config.monitoring.disk_low_free_mb * 1024 * 1024
        if free is not None:
            if free < threshold:
                problems.append(f"disk low: {free // 2**20} MiB free")
                self.events.alert(
                    "disk_low",
                    free_mb=free // 2**20,
                    threshold_mb=threshold // 2**20,
                    path=str(self.config.data_dir),
                )
            elif free > threshold * 1.1 and "disk_low" in self.events.open_alerts:
                # 10 % hysteresis: a disk hovering at the threshold is one alert, not one per tick.
                self.events.resolve("disk_low", free_mb=free // 2**20)
        link = self.link()
        if link.get("enabled") and link.get("state") != "connected":
            problems.append(f"PBX link {link.get('state')}")
        if not healthy:
            problems.insert(0, f"UNHEALTHY (over {bound:g} s): watchdog not fed")
        return Health(healthy, problems)

    # -- what we say -----------------------------------------------------------------------------
    def summary(self) -> str:
        """The STATUS= line: what an operator reading ``systemctl status`` needs first."""
        link = self.link()
        parts = [f"{self.calls.active} call(s) in progress"]
        if link.get("enabled"):
            parts.append(
                "PBX link up" if link.get("state") == "connected" else f"PBX link {link.get('state')}"
            )
        if self.events.mqtt is not None:
            parts.append("MQTT connected" if self.events.connected else "MQTT disconnected")
        if self.events.open_alerts:
            parts.append(f"alerts: {', '.join(sorted(self.events.open_alerts))}")
        text_ = "; ".join(parts)
        problems = [p for p in self.health.problems if not p.startswith("PBX link")]
        return f"{'; '.join(problems)}; {text_}" if problems else text_

    def snapshot(self) -> dict[str, object]:
        probe = self._probe
        return {
            "format": FORMAT,
            "state": self.state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": _iso(self.started_at),
            "heartbeat_s": HEARTBEAT_S,
            "healthy": self.health.healthy,
            "problems": self.health.problems,
            "summary": self.summary(),
            "watchdog": {
                "enabled": self.notifier.watchdog_s is not None,
                "interval_s": self.notifier.watchdog_s,
                "last_ping": _iso(self.last_ping),
            },
            "ami": self.link(),
            "cluster": self.cluster(),  # this node's name, and whether it runs the catalogue-wide jobs
            "calls_in_progress": self.calls.active,
            "accepting_calls": self.calls.accepting,
            "metadata": {"backlog": self.writer.backlog, "stalled": self.writer.stalled},
            "database": {"reachable": probe.db_ok, "error": probe.db_error},
            "disk": {
                "path": str(self.config.data_dir),
                "free_bytes": probe.free_bytes,
                "total_bytes": probe.total_bytes,
                "low_threshold_bytes": self.config.monitoring.disk_low_free_mb * 2**20,
            },
            "max_loop_lag_s": round(self.max_loop_lag_s, 3),
            **self.events.snapshot(),
            **({"stopped": self.stopped_summary} if self.stopped_summary else {}),
        }

    def _render(self) -> tuple[bytes, bytes]:
        """(the file's bytes, the part whose change warrants a rewrite before the heartbeat).

        Free space and loop lag move all the time; on their own they wait for the heartbeat.
        """
        body = self.snapshot()
        key = {k: v for k, v in body.items() if k not in ("disk", "max_loop_lag_s")}
        body["updated_at"] = _iso(self._clock())
        data = json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True, default=str).encode() + b"\n"
        return data, json.dumps(key, sort_keys=True, default=str).encode()

    def _write_now(self) -> None:
        data, key = self._render()
        try:
            write_atomically(self.path, data)
            self._last_written, self._last_write_at = key, self._mono()
        except OSError as exc:
            log.warning("status_file_not_written", path=str(self.path), error=exc.strerror)
