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
import json
import os
import shutil
import socket
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.events import Events
from recorderd.sdnotify import Notifier
from storage.models import Call

log = structlog.get_logger("recorderd.status")

STATUS_FILE = "status.json"
FORMAT = 1
HEARTBEAT_S = 10.0  # the file is rewritten at least this often while the daemon runs
STALE_AFTER = 3  # heartbeats without a rewrite: the daemon is not running (or is hung)
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


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn one (rename is atomic in a directory)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.replace(tmp, path)


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
        free, total = _disk_usage(self.config.data_dir)
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


# -- the reader side: recorderctl status ----------------------------------------------------------
class StatusUnavailable(Exception):
    pass


def read_status(data_dir: Path) -> dict[str, Any]:
    path = data_dir / STATUS_FILE
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise StatusUnavailable(f"{path}: no status file (the daemon has never run here?)") from exc
    except OSError as exc:
        raise StatusUnavailable(f"{path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise StatusUnavailable(f"{path}: not valid JSON: {exc}") from exc
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


@dataclass
class Volume:
    """What the catalogue says about disk needs: recent intake and the longest retention window."""

    recent_bytes_per_day: float | None
    stored_bytes: int | None
    window_days: float | None


def catalogue_volume(sessions: sessionmaker[Session], now: dt.datetime, days: int = 30) -> Volume:
    since = now - dt.timedelta(days=days)
    with sessions() as s:
        recent = s.scalar(select(func.sum(Call.audio_bytes)).where(Call.started_at >= since))
        oldest = s.scalar(select(func.min(Call.started_at)).where(Call.started_at >= since))
        stored = s.scalar(select(func.sum(Call.audio_bytes)).where(Call.audio_path.is_not(None)))
        windows = s.execute(
            select(Call.started_at, Call.expires_at)
            .where(Call.expires_at.is_not(None))
            .order_by(Call.started_at.desc())
            .limit(1000)
        ).all()
    span = max(1.0, (now - oldest).total_seconds() / 86400) if oldest else None
    rate = (recent or 0) / span if span else None
    window = max(((e - st).total_seconds() / 86400 for st, e in windows if e is not None), default=None)
    return Volume(rate, int(stored) if stored is not None else None, window)


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} TiB"


def _ago(ts: object, now: dt.datetime, zone: dt.tzinfo) -> str:
    if not ts:
        return "-"
    t = dt.datetime.fromisoformat(str(ts))
    return f"{t.astimezone(zone):%Y-%m-%d %H:%M:%S} ({(now - t).total_seconds():.0f} s ago)"


def _fields(record: dict[str, Any], skip: Sequence[str] = ("ts", "kind", "state", "type")) -> str:
    return " ".join(f"{k}={v}" for k, v in record.items() if k not in skip and v is not None)


def _row(label: str, value: str) -> str:
    return f"  {label + ':':19}{value}"


def _disk_usage(path: Path) -> tuple[int | None, int | None]:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None, None
    return usage.free, usage.total


def format_status(
    status: dict[str, Any] | None,
    *,
    now: dt.datetime,
    zone: dt.tzinfo,
    up: tuple[bool, str],
    data_dir: Path,
    volume: Volume | None,
    recent: int = 8,
) -> list[str]:
    """The human report of ``recorderctl status``; disk figures are measured now, by the reader."""
    out = [f"recorderd: {'running' if up[0] else 'DOWN'} ({up[1]})"]
    free, total = _disk_usage(data_dir)
    st: dict[str, Any] = status or {}
    if status is not None:
        started = _ago(st.get("started_at"), now, zone)
        out[0] += f", pid {st.get('pid')} on {st.get('host')}, started {started}"
        problems = "; ".join(st.get("problems") or [])
        out.append(
            _row(
                "health",
                ("ok" if st.get("healthy") else "UNHEALTHY") + (f" - {problems}" if problems else ""),
            )
        )
        out.append(_row("status written", _ago(st.get("updated_at"), now, zone)))
        ami = st.get("ami") or {}
        since = _ago(ami.get("since"), now, zone)
        out.append(
            _row("PBX link (AMI)", f"{ami.get('state')} since {since}" if ami.get("enabled") else "disabled")
        )
        accepting = "" if st.get("accepting_calls", True) else " (not accepting new calls)"
        out.append(_row("calls in progress", f"{st.get('calls_in_progress')}{accepting}"))
        md = st.get("metadata") or {}
        out.append(
            _row("metadata writer", f"backlog {md.get('backlog')}{', STALLED' if md.get('stalled') else ''}")
        )
        mq = st.get("mqtt") or {}
        if mq.get("enabled"):
            link = "connected" if mq.get("connected") else f"DISCONNECTED ({mq.get('last_error')})"
            counts = (
                f"published {mq.get('published')}, dropped {mq.get('dropped')}, queued {mq.get('queued')}"
            )
            out.append(_row("MQTT", f"{link} to {mq.get('broker')}; {counts}"))
        else:
            out.append(_row("MQTT", "not configured"))
    low = (st.get("disk") or {}).get("low_threshold_bytes")
    disk = f"{_size(free)} free of {_size(total)} in {data_dir}"
    if free is not None and low is not None and free < low:
        disk += f" - LOW (alert below {_size(low)})"
    out.append(_row("disk", disk))
    if volume is not None and volume.recent_bytes_per_day:
        rate = volume.recent_bytes_per_day
        lasts = f"; free space lasts ~{free / rate:.0f} days without deletions" if free is not None else ""
        out.append(_row("recording volume", f"~{_size(rate)}/day over the last 30 days{lasts}"))
        if volume.window_days:
            need = rate * volume.window_days
            have = (volume.stored_bytes or 0) + (free or 0)
            verdict = "enough" if have >= need else f"SHORT by {_size(need - have)}"
            out.append(
                _row(
                    "retention needs",
                    f"~{_size(need)} for up to {volume.window_days:.0f} days of audio; "
                    f"stored {_size(volume.stored_bytes)} + free {_size(free)}: {verdict}",
                )
            )
    if status is not None:
        reaper = (st.get("last") or {}).get("reaper_run")
        ran = f"{_ago(reaper.get('ts'), now, zone)} {_fields(reaper)}" if reaper else "none reported"
        out.append(_row("last reaper run", ran))
        alerts = st.get("open_alerts") or []
        out.append(_row("open alerts", str(len(alerts)) if alerts else "none"))
        for a in alerts:
            out.append(f"    {a.get('kind')}: since {_ago(a.get('ts'), now, zone)} {_fields(a)}")
        events = (st.get("recent") or [])[-recent:]
        if events:
            out.append("  recent events:")
            for e in events:
                t = dt.datetime.fromisoformat(str(e.get("ts"))).astimezone(zone)
                label = str(e.get("kind")) + (f" [{e.get('state')}]" if e.get("type") == "alert" else "")
                out.append(f"    {t:%m-%d %H:%M:%S} {label} {_fields(e)}")
    return out


def status_exit_code(status: dict[str, Any] | None, up: bool) -> int:
    """0: running, healthy, nothing open. 1: anything a person should look at."""
    if status is None or not up or not status.get("healthy") or status.get("open_alerts"):
        return 1
    return 0


def readonly_sessions(config: Config) -> sessionmaker[Session] | None:
    """The catalogue for reading only, or None when there is none to read.

    SQLite creates ``-wal``/``-shm`` files next to a WAL database even for a read-only reader. Run
    as root while the daemon is stopped, that would leave root-owned files the daemon (user
    recorderd) cannot open at its next start. So a reader that does not own the database opens it
    ``immutable``: no side files, no locks; the figures may miss the last uncheckpointed writes,
    which is fine for an estimate of disk needs.
    """
    url = config.db_url
    if not url.startswith("sqlite:///"):
        return sessionmaker(create_engine(url), expire_on_commit=False)
    path = Path(url.removeprefix("sqlite:///"))
    try:
        owner = path.stat().st_uid
    except OSError:
        return None
    flags = "mode=ro" if owner == os.geteuid() else "mode=ro&immutable=1"
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"file:{path}?{flags}", uri=True, check_same_thread=False),
    )
    return sessionmaker(engine, expire_on_commit=False)


def report(config: Config, *, now: dt.datetime | None = None) -> tuple[dict[str, Any], list[str], int]:
    """``recorderctl status``: (machine-readable summary, lines for people, exit status)."""
    now = now or utcnow()
    status: dict[str, Any] | None
    try:
        status = read_status(config.data_dir)
        up = daemon_up(status, now, same_host=status.get("host") == socket.gethostname())
    except StatusUnavailable as exc:
        status, up = None, (False, str(exc))
    volume = None
    with contextlib.suppress(SQLAlchemyError, sqlite3.Error):
        sessions = readonly_sessions(config)
        if sessions is not None:
            volume = catalogue_volume(sessions, now)
    lines = format_status(status, now=now, zone=config.zone, up=up, data_dir=config.data_dir, volume=volume)
    free, total = _disk_usage(config.data_dir)
    summary: dict[str, Any] = {
        "up": up[0],
        "reason": up[1],
        "disk": {"free_bytes": free, "total_bytes": total},
        "volume": None if volume is None else vars(volume),
        "status": status,
    }
    return summary, lines, status_exit_code(status, up[0])
