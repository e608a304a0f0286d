"""Reading back what the daemon stored, for assertions about recordings."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from pbx.simulator import CallResult, SimCall
from recorderd.cli.demo import speech
from recorderd.daemon.calls import CallManager
from recorderd.daemon.events import Events
from recorderd.records.audio import decrypt_recording
from storage.audio import parse_au
from storage.db import open_database
from storage.models import Call

CALLER = speech("caller")
AGENT = speech("agent")


def inbound(caller: str = "0311112222", seconds: float = 2.0) -> SimCall:
    n = int(seconds * 8000) * 2
    return SimCall(caller=caller, dialled="0668585050", caller_audio=CALLER[:n], agent_audio=AGENT[:n])


def row_of(db_url: str, result: CallResult) -> Call:
    """The catalogue row of a call the daemon recorded (by the RECORDING_ID it set)."""
    with open_database(db_url, migrate=False)[1]() as s:
        row = s.get(Call, str(uuid.UUID(result.variables["RECORDING_ID"])))
    assert row is not None, result.variables
    return row


def stored_pcm(data_dir: Path, row: Call, identity: str) -> tuple[bytes, bool]:
    """(16-bit little-endian PCM as the spy streamed it, whether the file was sealed)."""
    assert row.audio_path is not None
    dec = decrypt_recording(data_dir / row.audio_path, [identity])
    _rate, _channels, samples = parse_au(dec.au)
    return samples, dec.complete


def when(events: Events, kind: str, count: int = 1, state: str | None = None) -> asyncio.Future[None]:
    """A future done once the daemon has recorded ``count`` events of ``kind`` (alerts: in
    ``state``) from now on."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen = 0

    def listener(record: dict[str, object]) -> None:
        nonlocal seen
        if record["kind"] == kind and (state is None or record.get("state") == state):
            seen += 1
            if seen >= count and not done.done():
                done.set_result(None)

    events.listeners.append(listener)
    return done


async def wait_for_parts(data_dir: Path, min_bytes: int, count: int = 1) -> None:
    """The disk threads write the files; watch them grow (bounded): there is no event to await."""
    async with asyncio.timeout(15):
        while True:
            if len([p for p in data_dir.rglob("*.age.part") if p.stat().st_size >= min_bytes]) >= count:
                return
            await asyncio.sleep(0.02)


async def spy_attached(manager: CallManager, started: asyncio.Future[None], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait (bounded) until AMI reported ChanSpyStart for the one call in progress (``started``:
    ``when(events, "call_started")``, taken before the call)."""
    async with asyncio.timeout(timeout):
        await started
        [call] = [c for c in manager._pending.values() if c.attached.done()]
        await call.spy_started.wait()
