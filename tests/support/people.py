"""A small recorderd installation on disk for people/ledger/export tests: config, database, recordings.

Password hashing and key-copy costs are turned down (argon2 t=1, 8 KiB; scrypt 2**4): the code paths
are the production ones, only cheaper.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config, load_config
from recorderd.people.users import Actor, People
from storage.age import generate_identity
from storage.audio import au_header, slin_to_au_payload
from storage.db import open_database
from storage.models import Call
from storage.vault import AgeWriter
from support import backend

FAST = """
[people.passwords]
argon2_time_cost = 1
argon2_memory_kib = 8
key_work_factor = 4
max_failures = 3
"""
T0 = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)  # 10:00 JST


@dataclass
class Site:
    root: Path
    config_path: Path
    identity: str
    recipient: str

    @functools.cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    def people(self, config: Config | None = None) -> People:
        return People(self.sessions, config or self.config)

    @functools.cached_property
    def sessions(self) -> sessionmaker[Session]:
        return open_database(self.config.db_url)[1]

    def args(self) -> list[str]:
        return ["--config", str(self.config_path)]


def make_site(tmp: Path, extra: str = "", *, municipality: str = "テスト市コールセンター") -> Site:
    identity, recipient = generate_identity()
    cfg = tmp / "recorderd.toml"
    cfg.write_text(
        f'municipality = "{municipality}"\ndata_dir = "{tmp / "data"}"\n{backend.config_line()}'
        "[ami]\nenabled = false\n"
        f'[encryption]\nrecipients = ["{recipient}"]\n{FAST}{extra}',
        encoding="utf-8",
    )
    return Site(tmp, cfg, identity, recipient)


def seed_call(
    site: Site,
    *,
    started: dt.datetime = T0,
    seconds: int = 2,
    remote: str = "0311112222",
    local: str = "0668585050",
    channels: int = 1,
) -> tuple[str, bytes]:
    """A finished recording and its catalogue row, as the daemon leaves them (``channels`` = 2: a
    stereo recording, its samples interleaved)."""
    call_id = str(uuid.uuid4())
    pcm = bytes(range(256)) * (seconds * 16000 * channels // 256)
    rel = f"recordings/{started:%Y/%m/%d}/{call_id}.age"
    path = site.config.data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    w = AgeWriter(path, [site.recipient])
    w.write(au_header(channels=channels))
    w.write(slin_to_au_payload(pcm))
    sealed = w.close()
    with site.sessions.begin() as s:
        ended = started + dt.timedelta(seconds=seconds)
        s.add(
            Call(
                id=call_id,
                direction="inbound",
                started_at=started,
                answered_at=started,
                ended_at=ended,
                duration_s=float(seconds),
                line="general",
                status="completed",
                audio_path=rel,
                audio_bytes=sealed.size,
                audio_sha256=sealed.sha256,
                local_number=local,
                remote_number=remote,
            )
        )
    return call_id, pcm


def person(
    people: People, actor: Actor | None, pid: str, role: str, password: str, *, key: list[str] | None = None
) -> Actor:
    """Add someone (their key copy from ``key`` or the actor's own) and let them choose their own
    password, as a new person must; returns them signed in."""
    if key is None and people.config.people.holds_key(role) and actor is not None:
        key = people.keyring.unlock(actor.id, actor.password)
    first = "first-" + password
    people.add(
        actor, pid, pid.title(), role, first, key=key if people.config.people.holds_key(role) else None
    )
    people.change_password(pid, first, password)
    return people.authenticate(pid, password, action="test")


def staff(config: Config, root: Path, roles: dict[str, str]) -> dict[str, list[str]]:
    """People for CLI tests, one per ID in ``roles`` (ID -> role), the first a manager holding a fresh
    key; each has chosen their password (``<id>-password``), written to a 0600 file. Returns, per ID,
    the recorderctl arguments that sign them in: ``--as ID --password-file FILE``."""
    _engine, sessions = open_database(config.db_url)
    people = People(sessions, config)
    boss: Actor | None = None
    out: dict[str, list[str]] = {}
    for pid, role in roles.items():
        password = f"{pid}-password"
        signed = person(
            people, boss, pid, role, password, key=[generate_identity()[0]] if boss is None else None
        )
        boss = boss or signed
        file = root / f"password-{pid}"
        file.write_text(password + "\n", encoding="utf-8")
        file.chmod(0o600)
        out[pid] = ["--as", pid, "--password-file", str(file)]
    return out
