"""Helpers for the web console tests: the console on a real installation: SQLite catalogue,
keyring, age recordings, uvicorn on a loopback port in a
thread of its own (its own event loop), and people of each role."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recorderd.console.serve import ConsoleServer
from recorderd.service import Actor
from support.people import Site, make_site, person, seed_call

CONSOLE = '\n[console]\nlisten = "127.0.0.1:0"\nlanguage = "ja"\n'


@dataclass
class Running:
    site: Site
    server: ConsoleServer
    url: str
    call: str  # a recording (remote 03-1111-2222)
    pcm: bytes  # its audio, as slin (16-bit little-endian)
    manager: Actor
    auditor: Actor


def start(site: Site) -> tuple[ConsoleServer, str, threading.Thread]:
    server = ConsoleServer(site.config, sessions=site.sessions)
    ready = threading.Event()
    urls: list[str] = []

    def run() -> None:
        asyncio.run(server.run(on_ready=lambda u: (urls.append(u), ready.set())))

    thread = threading.Thread(target=run, name="console", daemon=True)
    thread.start()
    assert ready.wait(30), "the console did not start"
    return server, urls[0], thread


def running(tmp_path: Path, channels: int = 1) -> Iterator[Running]:
    site = make_site(tmp_path, CONSOLE)
    call, pcm = seed_call(site, seconds=3, channels=channels)
    seed_call(site, remote="0455556666")  # another number, that a search by number must not find
    people = site.people()
    boss = person(people, None, "boss", "manager", "boss-password-1", key=[site.identity])
    auditor = person(people, boss, "audit", "auditor", "audit-password-1")
    server, url, thread = start(site)
    try:
        yield Running(site, server, url, call, pcm, boss, auditor)
    finally:
        server.stop()
        thread.join(10)
