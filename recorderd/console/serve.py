"""``recorderd console``: the console's own process, served by uvicorn on the ``[console]`` address.

The catalogue must be current (the daemon migrates it; the console never changes a schema). TLS: give
``tls_certificate`` and ``tls_key`` (uvicorn speaks HTTPS), or keep loopback and put a reverse proxy
in front with ``behind_tls_proxy = true`` (docs/console.md).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.console.app import build_app
from recorderd.service import Service
from storage.db import open_current

__all__ = ["ConsoleServer", "serve"]


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it listens (it has no event of its own for that)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


class ConsoleServer:
    """The console on its address; ``url`` once bound (port 0 picks a free one, for tests)."""

    def __init__(self, config: Config, *, sessions: sessionmaker[Session] | None = None) -> None:
        self.config = config
        if sessions is None:
            _engine, sessions = open_current(config.db_url)
        self.service = Service(config, sessions)
        self.app = build_app(self.service, config)
        host, port = config.console.address
        c = config.console
        self.server = _Server(
            uvicorn.Config(
                self.app,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,  # URLs carry numbers searched for: personal data stays out of logs
                proxy_headers=False,
                server_header=False,
                ssl_certfile=str(c.tls_certificate) if c.tls_certificate else None,
                ssl_keyfile=str(c.tls_key) if c.tls_key else None,
            )
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.config.console.tls_certificate else "http"
        host, port = self.config.console.address
        for server in self.server.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
        return f"{scheme}://{host}:{port}"

    async def run(self, *, on_ready: Callable[[str], None] | None = None) -> None:
        task = asyncio.create_task(self.server.serve())
        listening = asyncio.create_task(self.server.listening.wait())
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if on_ready is not None and self.server.started:
            on_ready(self.url)
        await task

    def stop(self) -> None:
        self.server.should_exit = True


def serve(config: Config, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM (uvicorn handles both)."""
    asyncio.run(ConsoleServer(config).run(on_ready=on_ready))
