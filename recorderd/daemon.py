"""The daemon's lifecycle: start-up checks, listeners, long-lived tasks, orderly shutdown.

Start-up refuses to run on anything that would silently lose calls: an unreadable recipient, a
missing announcement, an unusable data directory. Shutdown stops taking calls, seals every open
recording within a bound, flushes metadata, and only then returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from announce import PromptError, validate_prompt
from pbx.agi.server import AgiServer
from pbx.ami.client import AmiClient
from pbx.audiosocket.server import AudioSocketServer
from recorderd.calls import CallManager
from recorderd.config import Config, ConfigError
from recorderd.diskpool import DiskPool
from recorderd.metadata import MetadataWriter
from recorderd.recovery import recover
from storage.age import AgeKeyError, parse_recipient
from storage.db import open_database

log = structlog.get_logger("recorderd.daemon")

SHUTDOWN_BOUND_S = 10.0


class StartupError(Exception):
    """The daemon cannot start safely; the message tells the operator what to fix."""


@dataclass(frozen=True)
class Endpoints:
    agi_port: int
    audiosocket_port: int
    advertise: str


def check_startup(config: Config) -> list[str]:
    """Everything that must hold before the first call; returns the recipients."""
    try:
        recipients = config.encryption.resolved_recipients()
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    for r in recipients:
        try:
            parse_recipient(r)
        except AgeKeyError as exc:
            raise StartupError(f"encryption: bad age recipient {r[:12]}…: {exc}") from exc
    for key, ann in config.announcements.items():
        if ann.file is not None:
            try:
                validate_prompt(ann.file)
            except PromptError as exc:
                raise StartupError(f"announcements.{key}: {exc}") from exc
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = config.data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"data_dir {config.data_dir}: not writable: {exc.strerror}") from exc
    return recipients


class Daemon:
    def __init__(self, config: Config, *, on_ready: Callable[[Endpoints], None] | None = None) -> None:
        self.config = config
        self._on_ready = on_ready
        self.manager: CallManager | None = None
        self.ami: AmiClient | None = None
        self.ami_up = asyncio.Event()  # set while the AMI link is logged in

    def reload(self, config: Config) -> None:
        """Apply new line rules without touching calls in progress (they keep their decision)."""
        self.config = config
        if self.manager is not None:
            self.manager.reconfigure(config)

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        recipients = check_startup(config)
        try:
            _engine, sessions = open_database(config.db_url)
        except Exception as exc:
            raise StartupError(f"database {config.db_url}: {exc}") from exc
        report = recover(sessions, config.data_dir)
        pool = DiskPool(threads=min(8, (os.cpu_count() or 2) * 2))
        writer = MetadataWriter(sessions)
        manager = CallManager(config, recipients, writer, pool)
        self.manager = manager
        agi = AgiServer(manager.handle_agi, env_timeout=config.agi.env_timeout_s)
        spy = AudioSocketServer(manager.on_audiosocket)
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
                    recovered_rows=len(report.closed_rows),
                    orphan_files=len(report.orphan_files),
                )
                if self._on_ready is not None:
                    self._on_ready(endpoints)
                await stop.wait()
                log.info("stopping", calls_in_progress=manager.active)
                await agi.close()
                sealed = await manager.seal_all("shutdown", SHUTDOWN_BOUND_S)
                await spy.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SHUTDOWN_BOUND_S):
                        await writer.flush()
                if ami_task is not None:
                    ami_task.cancel()
                writer_task.cancel()
                log.info("stopped", sealed_recordings=sealed, metadata_backlog=writer.backlog)
        finally:
            await agi.close()
            await spy.close()
            pool.shutdown()

    def _ami_state(self, state: str, detail: str | None) -> None:
        if self.manager is not None:
            self.manager.ami_connected = state == "connected"
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


def data_path(config: Config, rel: str) -> Path:
    return config.data_dir / rel
