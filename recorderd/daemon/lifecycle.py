"""The daemon's lifecycle: start-up checks, listeners, long-lived tasks, orderly shutdown.

Start-up refuses to run on anything that would silently lose calls: an unreadable recipient, a
missing announcement, an unusable data directory. Shutdown stops taking calls, seals every open
recording within a bound, flushes metadata, and only then returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from pbx.agi.server import AgiServer
from pbx.ami.client import AmiClient
from pbx.audiosocket.server import AudioSocketServer
from pbx.errors import excerpt
from recorderd.config import Config
from recorderd.config.summary import config_summary
from recorderd.daemon.agipeers import PeerFilter
from recorderd.daemon.calls import CallManager
from recorderd.daemon.checkpoints import Checkpointer
from recorderd.daemon.checks import StartupError, check_config
from recorderd.daemon.diskpool import DISK_THREADS, DiskPool
from recorderd.daemon.events import Events
from recorderd.daemon.incidentwatch import IncidentWatch
from recorderd.daemon.leader import Leadership
from recorderd.daemon.metadata import MetadataWriter, utcnow
from recorderd.daemon.monitor import Monitor
from recorderd.daemon.recording import READ_LOW_WATER
from recorderd.daemon.recovery import recover
from recorderd.daemon.sdnotify import Notifier
from recorderd.daemon.timeline import TICK_S
from recorderd.retention.reaper import Reaper
from storage.db import open_database

log = structlog.get_logger("recorderd.daemon")

SHUTDOWN_BOUND_S = 10.0
PEER_TEXT_LIMIT = 120  # characters of a peer's bytes quoted in an alert


@dataclass(frozen=True)
class Endpoints:
    agi_port: int
    audiosocket_port: int
    advertise: str


def check_startup(config: Config) -> list[str]:
    """Everything that must hold before the first call (recorderd/daemon/checks.py); the recipients."""
    return check_config(config).recipients


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        on_ready: Callable[[Endpoints], None] | None = None,
        notifier: Notifier | None = None,
        media_clock: Callable[[], float] | None = time.monotonic,
        media_speed: float = 1.0,
    ) -> None:
        """``media_clock``: what recordings' timelines follow; a simulator running ``media_speed``
        times faster than real time passes its own clock (or None: frames end to end)."""
        self.config = config
        self._media_clock = media_clock
        self._media_speed = media_speed
        self._writer: MetadataWriter | None = None  # set by run(); reload() ledgers through it
        self._on_ready = on_ready
        self.manager: CallManager | None = None
        self.ami: AmiClient | None = None
        self.ami_up = asyncio.Event()  # set while the AMI link is logged in
        self.ami_state, self.ami_since = ("connecting" if config.ami.enabled else "disabled"), utcnow()
        self.notifier = notifier or Notifier(None)
        # Events and alerts for MQTT and `recorderctl status`; other components raise theirs here.
        self.events = Events(config.mqtt)
        self.monitor: Monitor | None = None
        self.reaper: Reaper | None = None  # retention (recorderd/reaper.py)
        self.agi_peers: PeerFilter | None = None  # set by run()
        self.agi_server: AgiServer | None = None
        self.checkpointer: Checkpointer | None = None
        self.leadership: Leadership | None = None  # set by run(): catalogue-wide jobs (daemon/leader.py)
        self.audiosocket_server: AudioSocketServer | None = None

    def reload(self, config: Config, recipients: list[str]) -> None:
        """Apply a configuration that passed every check (checks.py): line rules, announcements and
        recipients for calls that start from now on; calls in progress keep what they started with.
        The node name stays what the daemon started with (its rows and its lock carry it)."""
        if config.node != self.config.node:
            config = config.model_copy(update={"node": self.config.node})
        self.config = config
        self.events.resolve("reload_rejected")
        if self._writer is not None:
            self._writer.note("config_loaded", **config_summary(config, "reload"))
        if self.manager is not None:
            self.manager.reconfigure(config, recipients)
        if self.agi_peers is not None:
            self.agi_peers.reconfigure(config.agi.peer_networks())
        if self.reaper is not None:
            self.reaper.reconfigure(config)

    def reload_rejected(self, problem: str) -> None:
        """A reload that failed a check: nothing of it is applied; the operator is told what."""
        log.error("reload_rejected", error=problem, kept="previous configuration")
        self.events.alert("reload_rejected", problem=problem[:500])

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        recipients = check_startup(config)
        try:
            engine, sessions = open_database(config.db_url, node=config.node)
        except Exception as exc:
            raise StartupError(f"database {config.db_url}: {exc}") from exc
        report = recover(sessions, config.data_dir, config.node)
        pool = DiskPool(threads=DISK_THREADS)
        writer = MetadataWriter(sessions, node=config.node, on_stall=self._writer_stalled)
        writer.note("config_loaded", **config_summary(config, "start"))  # R8: config changes are ledgered
        self._writer = writer
        manager = CallManager(config, recipients, writer, pool, events=self.events,
                              media_clock=self._media_clock, tick_s=TICK_S / self._media_speed)  # fmt: skip
        self.manager = manager
        self.leadership = leadership = Leadership(config, engine)
        await leadership.start()

        def leads() -> bool:
            return leadership.leads

        self.reaper = reaper = Reaper(config, sessions, events=self.events, leads=leads)
        leadership.on_elected = reaper.wake
        reaper.disk.check()  # before the first call: a full disk refuses recordings from the start
        manager.recording_refusal = reaper.disk.refusal
        monitor = Monitor(config, notifier=self.notifier, events=self.events, calls=manager, writer=writer,
                          sessions=sessions, link=self._link_status, cluster=leadership.status)  # fmt: skip
        self.monitor = monitor
        self.agi_peers = PeerFilter(config.agi.peer_networks())
        agi = AgiServer(manager.handle_agi, env_timeout=config.agi.env_timeout_s, accept=self.agi_peers)
        spy = AudioSocketServer(manager.on_audiosocket, coalesce_audio=True, read_low_water=READ_LOW_WATER)
        self.agi_server, self.audiosocket_server = agi, spy
        try:
            await spy.start(*config.audiosocket.address)
            await agi.start(*config.agi.address)
        except OSError as exc:
            pool.shutdown()
            raise StartupError(f"cannot listen: {exc.strerror or exc}") from exc
        host = config.audiosocket.address[0]
        if config.audiosocket.advertise:
            manager.advertise = config.audiosocket.advertise
        elif host in ("0.0.0.0", "::", ""):
            raise StartupError("audiosocket.advertise must be set when listening on all addresses")
        else:
            manager.advertise = f"{host}:{spy.port}"
        try:
            async with asyncio.TaskGroup() as tg:
                writer_task = tg.create_task(writer.run(), name="metadata-writer")
                events_task = tg.create_task(self.events.run(), name="events")
                monitor_task = tg.create_task(monitor.run(), name="monitor")
                reaper_task = tg.create_task(reaper.run(), name="retention-reaper")
                leader_task = tg.create_task(leadership.run(), name="leader-election")
                checkpointer = Checkpointer(config, sessions, writer, self.events, leads=leads)
                self.checkpointer = checkpointer
                checkpoint_task = tg.create_task(checkpointer.run(), name="ledger-checkpoints")
                watch_task = tg.create_task(
                    IncidentWatch(config, sessions, self.events, leads=leads).run(), name="incident-watch"
                )
                ami_task = None
                if config.ami.enabled:
                    self.ami = AmiClient(
                        config.ami.host,
                        config.ami.port,
                        config.ami.username,
                        config.ami.resolved_secret(),
                        on_event=manager.on_ami_event,
                        on_state=self._ami_state,
                        ping_interval=config.ami.ping_interval_s,
                    )
                    ami_task = tg.create_task(self.ami.run(), name="ami-client")
                endpoints = Endpoints(agi.port, spy.port, manager.advertise)
                log.info(
                    "ready",
                    agi_port=agi.port,
                    audiosocket_port=spy.port,
                    advertise=manager.advertise,
                    node=config.node,
                    leader=leadership.leads,
                    recovered_rows=len(report.closed_rows),
                    orphan_files=len(report.orphan_files),
                )
                if self._on_ready is not None:
                    self._on_ready(endpoints)
                monitor.ready()  # READY=1: database, recipients and listeners are up
                await stop.wait()
                log.info("stopping", calls_in_progress=manager.active)
                monitor.stopping()
                await agi.close()
                sealed = await manager.seal_all("shutdown", SHUTDOWN_BOUND_S)
                await spy.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SHUTDOWN_BOUND_S):
                        await writer.flush()
                checkpoint_task.cancel()
                if config.ledger.checkpoint_interval_s > 0:  # the last word: what the ledger held at stop
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SHUTDOWN_BOUND_S):
                            await checkpointer.take("shutdown")
                            await writer.flush()
                if ami_task is not None:
                    ami_task.cancel()
                writer_task.cancel()
                monitor_task.cancel()
                reaper_task.cancel()
                watch_task.cancel()
                leader_task.cancel()  # lets go of the lock: another node takes over at its next try
                await self.events.aclose()  # retained "offline (stopped)", bounded
                events_task.cancel()
                log.info("stopped", sealed_recordings=sealed, metadata_backlog=writer.backlog)
                monitor.stopped(sealed_recordings=sealed, metadata_backlog=writer.backlog)
        finally:
            await agi.close()
            await spy.close()
            pool.shutdown()

    def _ami_state(self, state: str, detail: str | None) -> None:
        # The detail may carry the AMI peer's own bytes (a banner, a refusal's Message): escaped and
        # cut short before it reaches a log line, an alert or MQTT.
        detail = None if detail is None else excerpt(detail, PEER_TEXT_LIMIT)
        if self.manager is not None:
            self.manager.ami_connected = state == "connected"
        if (state == "connected") != (self.ami_state == "connected"):
            self.ami_since = utcnow()  # since the link went up or down, not since the last retry
        self.ami_state = state
        stopping = self.monitor is not None and self.monitor.state in ("stopping", "stopped")
        if state == "connected":
            self.events.resolve("pbx_link_down")
        elif state in ("disconnected", "auth_failed") and not stopping:
            # Calls still get recorded without AMI, but without answer/hang-up times and causes.
            self.events.alert("pbx_link_down", link=state, detail=detail)
        if state == "connected":
            self.ami_up.set()
        else:
            self.ami_up.clear()
        if state == "connected":
            log.info("ami_connected")
        elif state == "auth_failed":
            log.error("ami_login_refused", detail=detail)
        else:
            log.warning("ami_link", state=state, detail=detail)

    def _link_status(self) -> dict[str, object]:
        return {
            "enabled": self.config.ami.enabled,
            "state": self.ami_state,
            "since": self.ami_since.isoformat(),
        }

    def _writer_stalled(self, error: str) -> None:
        if self.monitor is not None:
            self.monitor.writer_stalled(error)


def data_path(config: Config, rel: str) -> Path:
    return config.data_dir / rel
