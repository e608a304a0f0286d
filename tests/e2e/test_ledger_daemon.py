"""The running daemon ledgers what it does (R4, R8) without holding any key: its configuration at
start-up, each recording created and finalised; an excluded call leaves nothing in the ledger."""

from __future__ import annotations

import pytest

from e2e.conftest import MakeHarness
from pbx.simulator import SimCall
from recorderd.cli.demo import speech
from storage import ledger
from storage.db import open_database

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")


async def test_a_recorded_call_is_ledgered_by_the_daemon(make_harness: MakeHarness) -> None:
    h = await make_harness()
    await h.call(SimCall(caller="0311112222", dialled="0668585050", caller_audio=speech("caller")))
    await h.call(SimCall(caller="0322223333", dialled="0668581111"))  # the counselling line: excluded
    recorded = next(r for r in h.rows() if r.status == "completed")
    _e, sessions = open_database(h.config.db_url, migrate=False)
    with sessions() as s:
        entries = ledger.entries(s)
        assert ledger.verify(s).ok
    ours = [e for e in entries if e.kind != "policy_changed"]  # the reaper's first pass may log its policy
    assert [(e.kind, e.call_id) for e in ours] == [
        ("config_loaded", None),
        ("recording_created", recorded.id),
        ("recording_finalised", recorded.id),
    ]
    assert ours[0].detail["reason"] == "start" and "roles" in ours[0].detail
    assert ours[2].detail == {
        "status": "completed",
        "sha256": recorded.audio_sha256,
        "bytes": recorded.audio_bytes,
        "seconds": recorded.audio_seconds,
    }
    assert not (h.data_dir / "keyring").exists()  # the recording host holds no key copy
