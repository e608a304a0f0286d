"""``recorderctl status``: the daemon's status file, the disk, and what the catalogue says of volume.

The operator's view, free of sign-in (it shows no call and no number): a cron or Nagios check.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.service.incidents import open_incident_lines
from recorderd.statusfile import StatusUnavailable, daemon_up, read_status, staleness, status_exit_code
from storage.db import readonly_sessions
from storage.files import disk_usage
from storage.models import Call


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    free, total = disk_usage(data_dir)
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
        age = staleness(st, now) if st.get("state") != "stopped" else None
        written = _ago(st.get("updated_at"), now, zone)
        if age is not None:  # a full disk, a hung daemon: what follows is the past, and we say so
            written += f" - STALE ({age:.0f} s without a heartbeat): the figures below are from then"
        out.append(_row("status written", written))
        ami = st.get("ami") or {}
        since = _ago(ami.get("since"), now, zone)
        link = f"{ami.get('state')} since {since}" if ami.get("enabled") else "disabled"
        if ami.get("enabled") and not up[0]:  # no daemon, no live link: only what it last saw
            link = f"none (recorderd is down; it last reported: {link})"
        out.append(_row("PBX link (AMI)", link))
        node = st.get("cluster") or {}
        if node.get("shared"):  # several recorders may share this catalogue: which one leads
            role = "leader (runs the catalogue-wide jobs)" if node.get("leader") else "not the leader"
            out.append(_row("node", f"{node.get('node')}, {role}"))
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
        counted = str(len(alerts)) if alerts else "none"
        if not up[0] or age is not None:
            counted = f"unknown now ({counted} at the last status, {written.split(' - ')[0]})"
        out.append(_row("open alerts", counted))
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
    incidents: list[str] = []
    with contextlib.suppress(SQLAlchemyError, sqlite3.Error):
        sessions = readonly_sessions(config.db_url)
        if sessions is not None:
            volume = catalogue_volume(sessions, now)
            incidents = open_incident_lines(sessions, config.zone)
    lines = format_status(status, now=now, zone=config.zone, up=up, data_dir=config.data_dir, volume=volume)
    # Open until a person with the "incidents" permission acknowledges them (recorderctl incidents ack).
    lines.append(_row("open incidents", str(len(incidents)) if incidents else "none"))
    lines += [f"  {line}" for line in incidents]
    free, total = disk_usage(config.data_dir)
    summary: dict[str, Any] = {
        "up": up[0],
        "reason": up[1],
        "disk": {"free_bytes": free, "total_bytes": total},
        "volume": None if volume is None else vars(volume),
        "status": status,
        "open_incidents": incidents,
    }
    return summary, lines, max(status_exit_code(status, up[0]), 1 if incidents else 0)
