"""The monitor (watchdog, STATUS=, alerts, status file) and the reader behind `recorderctl status`."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recorderd.cli.ctl import main as ctl_main
from recorderd.cli.status import report
from recorderd.config import Config, parse_config
from recorderd.daemon.events import Events
from recorderd.daemon.monitor import STATUS_RESERVE, Monitor, write_atomically
from recorderd.daemon.sdnotify import Notifier
from recorderd.statusfile import HEARTBEAT_S, STATUS_FILE, daemon_up, read_status, status_exit_code
from storage.db import open_database
from storage.models import Call

NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)


class Calls:
    active = 2
    accepting = True


class Writer:
    stalled = False
    backlog = 0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    yield sock
    sock.close()


def datagrams(sock: socket.socket) -> list[dict[str, str]]:
    out = []
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return out
        out.append(dict(line.split("=", 1) for line in data.decode().splitlines()))


def make_config(tmp_path: Path, extra: str = "") -> Config:
    return parse_config(f'data_dir = "{tmp_path / "data"}"\n[monitoring]\nstall_bound_s = 60\n{extra}')


def make_monitor(tmp_path: Path, config: Config, clock: Clock, *, db_url: str | None = None,
                 link: dict[str, object] | None = None) -> tuple[Monitor, Events, Writer]:  # fmt: skip
    config.data_dir.mkdir(parents=True, exist_ok=True)
    _e, sessions = open_database(db_url or config.db_url, migrate=db_url is None)
    events = Events(None)
    writer = Writer()
    notifier = Notifier(str(tmp_path / "notify"), watchdog_s=8.0)
    state = link or {"enabled": True, "state": "connected", "since": NOW.isoformat()}
    monitor = Monitor(config, notifier=notifier, events=events, calls=Calls(), writer=writer,
                      sessions=sessions, link=lambda: state, monotonic=clock, clock=lambda: NOW)  # fmt: skip
    return monitor, events, writer


async def test_healthy_ticks_feed_the_watchdog_and_say_status(tmp_path: Path, notify: socket.socket) -> None:
    monitor, _events, _w = make_monitor(tmp_path, make_config(tmp_path), Clock())
    assert monitor.tick_s == 2.0  # at least four pings per 8 s watchdog period
    await monitor.tick()
    assert datagrams(notify) == []  # not ready yet: no pings, no status
    monitor.ready()
    assert datagrams(notify) == [{"READY": "1", "STATUS": "2 call(s) in progress; PBX link up"}]
    health = await monitor.tick()
    assert health.healthy and health.problems == []
    assert datagrams(notify) == [{"WATCHDOG": "1"}]  # status unchanged: not repeated
    body = read_status(monitor.config.data_dir)
    assert body["state"] == "running" and body["calls_in_progress"] == 2 and body["healthy"] is True
    assert body["database"] == {"reachable": True, "error": None}
    assert body["disk"]["free_bytes"] > 0
    monitor.stopping()
    assert datagrams(notify) == [{"STOPPING": "1", "STATUS": "stopping: sealing 2 recording(s)"}]
    monitor.stopped(sealed_recordings=2)
    assert read_status(monitor.config.data_dir)["stopped"] == {"sealed_recordings": 2}


async def test_a_writer_stalled_past_the_bound_stops_the_pings(tmp_path: Path, notify: socket.socket) -> None:
    clock = Clock()
    monitor, events, writer = make_monitor(tmp_path, make_config(tmp_path), clock)
    monitor.ready()
    writer.stalled, writer.backlog = True, 40
    monitor.writer_stalled("database is locked")
    assert "metadata_writer_stalled" in events.open_alerts
    clock.t += 30
    health = await monitor.tick()
    assert health.healthy  # stalled, but within the 60 s bound: keep pinging, say so
    msgs = datagrams(notify)
    assert {"WATCHDOG": "1"} in msgs
    assert "metadata writer stalled 30 s (backlog 40)" in msgs[-1]["STATUS"]
    clock.t += 31
    health = await monitor.tick()
    assert not health.healthy
    msgs = datagrams(notify)
    assert {"WATCHDOG": "1"} not in msgs
    assert msgs[-1]["STATUS"].startswith("UNHEALTHY (over 60 s): watchdog not fed")
    assert read_status(monitor.config.data_dir)["healthy"] is False
    writer.stalled = False  # the lock went away before systemd acted
    health = await monitor.tick()
    assert health.healthy and "metadata_writer_stalled" not in events.open_alerts
    assert {"WATCHDOG": "1"} in datagrams(notify)


async def test_an_unreachable_database_stops_the_pings_after_the_bound(
    tmp_path: Path, notify: socket.socket
) -> None:
    clock = Clock()
    gone = tmp_path / "gone"
    gone.mkdir()
    db = gone / "db.sqlite"
    monitor, _e, _w = make_monitor(tmp_path, make_config(tmp_path), clock, db_url=f"sqlite:///{db}")
    gone.rmdir()  # the database's directory vanished (unmounted volume): nothing answers
    monitor.ready()
    health = await monitor.tick()
    assert health.healthy and "database unreachable 0 s" in health.problems[0]
    clock.t += 61
    health = await monitor.tick()
    assert not health.healthy
    assert read_status(monitor.config.data_dir)["database"]["reachable"] is False


async def test_disk_low_raises_and_resolves_with_hysteresis(tmp_path: Path) -> None:
    config = make_config(tmp_path, "disk_low_free_mb = 100000000\n")  # 100 TB: surely more than free
    monitor, events, _w = make_monitor(tmp_path, config, Clock())
    monitor.ready()
    await monitor.tick()
    assert "disk_low" in events.open_alerts
    await monitor.tick()
    assert [r["kind"] for r in events.recent].count("disk_low") == 1  # one alert, not one per tick
    monitor.config = make_config(tmp_path, "disk_low_free_mb = 1\n")
    await monitor.tick()
    assert "disk_low" not in events.open_alerts
    assert events.last["disk_low"]["state"] == "resolved"


async def test_pbx_link_down_is_a_problem_but_not_unhealthy(tmp_path: Path, notify: socket.socket) -> None:
    link = {"enabled": True, "state": "disconnected", "since": NOW.isoformat()}
    monitor, _e, _w = make_monitor(tmp_path, make_config(tmp_path), Clock(), link=link)
    monitor.ready()
    assert datagrams(notify)[0]["STATUS"] == "2 call(s) in progress; PBX link disconnected"
    health = await monitor.tick()
    assert health.healthy and health.problems == ["PBX link disconnected"]


async def test_status_file_is_rewritten_on_change_or_heartbeat(tmp_path: Path) -> None:
    clock = Clock()
    monitor, _e, _w = make_monitor(tmp_path, make_config(tmp_path), clock)
    monitor.ready()
    path = monitor.config.data_dir / STATUS_FILE
    await monitor.tick()  # the first probe's figures
    os.utime(path, ns=(0, 0))  # mark it, so a rewrite shows
    await monitor.tick()
    assert path.stat().st_mtime_ns == 0  # nothing changed (free space alone does not count): not due
    clock.t += HEARTBEAT_S
    await monitor.tick()
    assert path.stat().st_mtime_ns > 0
    assert not list(path.parent.glob(".*.tmp"))


def status_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": 1, "state": "running", "pid": os.getpid(), "host": socket.gethostname(),
        "updated_at": NOW.isoformat(), "started_at": NOW.isoformat(), "heartbeat_s": 10.0,
        "healthy": True, "problems": [], "calls_in_progress": 1, "accepting_calls": True,
        "ami": {"enabled": True, "state": "connected", "since": NOW.isoformat()},
        "metadata": {"backlog": 0, "stalled": False},
        "mqtt": {"enabled": True, "connected": True, "broker": "mqtt:1883", "published": 5, "dropped": 0,
                 "queued": 0, "last_error": None},
        "disk": {"low_threshold_bytes": 1}, "open_alerts": [], "recent": [], "last": {},
    }  # fmt: skip
    return body | over


@pytest.mark.parametrize(
    ("over", "now_plus", "alive", "up", "why"),
    [
        ({}, 5, True, True, "running"),
        ({}, 31, True, False, "not responding: status file 31 s old"),
        ({}, 5, False, False, "gone"),
        ({"state": "stopped"}, 5, True, False, "stopped at"),
    ],
)
def test_daemon_up(over: dict[str, Any], now_plus: int, alive: bool, up: bool, why: str) -> None:
    got = daemon_up(status_body(**over), NOW + dt.timedelta(seconds=now_plus), pid_alive=lambda _p: alive)
    assert got[0] is up and why in got[1]


def test_exit_code_flags_anything_to_look_at() -> None:
    assert status_exit_code(status_body(), True) == 0
    assert status_exit_code(status_body(), False) == 1
    assert status_exit_code(status_body(healthy=False), True) == 1
    assert status_exit_code(status_body(open_alerts=[{"kind": "disk_low"}]), True) == 1
    assert status_exit_code(None, False) == 1


def seed_calls(config: Config) -> None:
    _e, sessions = open_database(config.db_url)
    with sessions.begin() as s:
        for day in range(10):
            start = NOW - dt.timedelta(days=day + 1)  # the oldest 10 days ago
            s.add(Call(id=f"c{day}", direction="inbound", started_at=start, status="completed",
                       audio_path=f"recordings/c{day}.age", audio_bytes=100 * 2**20,
                       expires_at=start + dt.timedelta(days=31)))  # fmt: skip


def test_report_reads_the_file_and_the_catalogue(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.data_dir.mkdir(parents=True)
    seed_calls(config)
    body = status_body(
        open_alerts=[{"ts": NOW.isoformat(), "kind": "pbx_link_down", "state": "raised",
                      "detail": "refused"}],
        recent=[{"type": "event", "ts": NOW.isoformat(), "kind": "call_ended", "call_id": "c1",
                 "local": "066*****50", "status": "completed"}],
        last={"reaper_run": {"ts": NOW.isoformat(), "kind": "reaper_run", "deleted": 3}},
    )  # fmt: skip
    (config.data_dir / STATUS_FILE).write_text(json.dumps(body))
    summary, lines, code = report(config, now=NOW + dt.timedelta(seconds=3))
    text = "\n".join(lines)
    assert code == 1  # an open alert
    assert summary["up"] is True and summary["volume"]["window_days"] == pytest.approx(31)
    assert "recorderd: running (running)" in lines[0]
    assert "PBX link (AMI):    connected" in text
    assert "calls in progress: 1" in text
    assert "~100.0 MiB/day" in text  # 10 calls of 100 MiB over 10 days
    assert "for up to 31 days of audio" in text
    assert "last reaper run:" in text and "deleted=3" in text
    assert "pbx_link_down: since" in text and "detail=refused" in text
    assert "call_ended call_id=c1 local=066*****50 status=completed" in text


def test_ctl_status_without_a_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "recorderd.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    (tmp_path / "data").mkdir()
    assert ctl_main(["--config", str(cfg), "status"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("recorderd: DOWN (") and "no status file" in out
    assert not (tmp_path / "data" / "recorderd.db").exists()  # a status query creates nothing
    assert ctl_main(["--config", str(cfg), "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["up"] is False


def test_a_stale_file_is_called_stale_and_its_alerts_are_not_presented_as_now(tmp_path: Path) -> None:
    """The daemon's pid is alive (a full disk stopped its rewrites): the reader says the figures are
    old, and does not print "open alerts: none" as if it were the present (issue 12 item 8)."""
    config = make_config(tmp_path)
    config.data_dir.mkdir(parents=True)
    (config.data_dir / STATUS_FILE).write_text(json.dumps(status_body()))
    _summary, lines, code = report(config, now=NOW + dt.timedelta(seconds=95))
    text = "\n".join(lines)
    assert code == 1 and lines[0].startswith("recorderd: DOWN (not responding")
    assert "STALE (95 s without a heartbeat): the figures below are from then" in text
    assert "open alerts:       unknown now (none at the last status" in text
    assert "open alerts:       none" not in text


def test_a_stopped_daemon_shows_no_live_pbx_link(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.data_dir.mkdir(parents=True)
    (config.data_dir / STATUS_FILE).write_text(json.dumps(status_body(state="stopped")))
    _summary, lines, _code = report(config, now=NOW + dt.timedelta(seconds=5))
    text = "\n".join(lines)
    assert lines[0].startswith("recorderd: DOWN (stopped at")
    assert "PBX link (AMI):    none (recorderd is down; it last reported: connected since" in text
    assert "PBX link (AMI):    connected" not in text


def test_a_status_file_padded_for_in_place_rewrites_reads_back(tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE
    write_atomically(path, json.dumps(status_body()).encode())
    assert path.stat().st_size == STATUS_RESERVE  # the room a full disk's rewrite needs
    assert read_status(tmp_path)["state"] == "running"


def test_a_node_sharing_a_catalogue_says_whether_it_leads(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.data_dir.mkdir(parents=True)
    for leads, said in ((False, "hall-b, not the leader"), (True, "hall-b, leader (runs the catalogue-wide")):
        body = status_body(cluster={"node": "hall-b", "leader": leads, "shared": True})
        (config.data_dir / STATUS_FILE).write_text(json.dumps(body))
        _summary, lines, _code = report(config, now=NOW + dt.timedelta(seconds=3))
        assert any(line.strip().startswith("node:") and said in line for line in lines), lines
    (config.data_dir / STATUS_FILE).write_text(json.dumps(status_body()))  # one recorder: no such line
    assert not any(line.strip().startswith("node:") for line in report(config, now=NOW)[1])
