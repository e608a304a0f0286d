"""Ledger checkpoints without a person (issue 12 item 7).

The daemon signs a checkpoint on a timer and at shutdown, writes it to a directory on "another
volume" and retains it on a real Mosquitto; `recorderctl ledger verify` then finds the newest by
itself, says how old it is, and names a rollback of the tail, the deletion of every row, and a
tail rewritten with recomputed hashes, none of which the hash chain alone can see.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from recorderd.cli.ctl import main as ctl_main
from recorderd.daemon.lifecycle import Daemon, Endpoints
from storage import ledger
from storage.checkpoints import PREFIX
from storage.models import LedgerRow
from support.mosquitto import Mosquitto
from support.people import Site, make_site, person

pytestmark = pytest.mark.timeout(90)


def rewrite_from(db: Path, seq: int) -> None:
    """Edit row ``seq`` and recompute every hash from there on: a chain that verifies on its own."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT seq, at, kind, actor, call_id, subject, detail, prev_hash FROM ledger"
        " WHERE seq >= ? ORDER BY seq",
        (seq,),
    ).fetchall()
    prev = rows[0][7]
    for n, (s, at, kind, actor, call_id, subject, detail, _prev) in enumerate(rows):
        d = json.loads(detail)
        if n == 0:
            d["rewritten"] = True
        body = ledger.canonical(s, at, kind, actor, call_id, subject, d)
        digest = ledger.chain_hash(prev, body)
        conn.execute(
            "UPDATE ledger SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (json.dumps(d, ensure_ascii=False, sort_keys=True, separators=(",", ":")), prev, digest, s),
        )
        prev = digest
    conn.commit()
    conn.close()


def copy_db(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


async def run_daemon_until(site: Site, done: Callable[[Daemon], bool]) -> Daemon:
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    daemon = Daemon(site.config, on_ready=ready.set_result)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(asyncio.shield(ready), 10)
        async with asyncio.timeout(20):
            while True:
                if done(daemon):
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return daemon


def verify(site: Site, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = ctl_main([*site.args(), "ledger", "verify", "--as", "boss"])
    return code, capsys.readouterr().out


async def test_the_daemon_checkpoints_and_verify_names_rollback_and_rewrite(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    offsite = tmp_path / "offsite"
    extra = (
        f'[ledger]\ncheckpoint_interval_s = 0.2\ncheckpoint_dirs = ["{offsite}"]\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\ntopic_prefix = "recorderd/cp"\n'
        '[agi]\nlisten = "127.0.0.1:0"\n[audiosocket]\nlisten = "127.0.0.1:0"\n'
    )
    site = make_site(tmp_path, extra)
    person(site.people(), None, "boss", "manager", "boss-password", key=[site.identity])
    monkeypatch.setenv("RECORDERD_PASSWORD", "boss-password")

    daemon = await run_daemon_until(site, lambda d: d.checkpointer is not None and d.checkpointer.taken >= 2)
    assert daemon.checkpointer is not None and daemon.checkpointer.taken >= 3  # and one at shutdown
    files = sorted(offsite.glob(f"{PREFIX}*.json"))
    last = ledger.Checkpoint.from_json(files[-1].read_text())
    with site.sessions() as s:
        head = ledger.head(s)
    assert head is not None and head.kind == "checkpoint" and head.seq == last.seq + 1  # noted after it

    code, out = verify(site, capsys)
    assert code == 0, out
    assert f"newest checkpoint: row {last.seq}, signed {last.at} (" in out and " s old), from " in out

    db = site.config.data_dir / "recorderd.db"
    clean = tmp_path / "clean.db"
    copy_db(db, clean)

    # 1. A rollback of the tail (the newest rows deleted, or an older backup restored).
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM ledger WHERE seq >= ?", (last.seq - 2,))
    code, out = verify(site, capsys)
    assert code == 1 and f"attests row {last.seq}" in out and "were removed" in out, out

    # 2. Every row deleted.
    copy_db(clean, db)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM ledger")
    code, out = verify(site, capsys)
    assert code == 1 and "the ledger ends at row 1" in out and "were removed" in out, out

    # 3. The tail rewritten with recomputed hashes: the chain holds, the checkpoint does not.
    copy_db(clean, db)
    rewrite_from(db, last.seq - 3)
    with site.sessions() as s:
        assert ledger.verify(s).ok  # the chain alone sees nothing
        assert s.scalar(select(LedgerRow.hash).where(LedgerRow.seq == last.seq)) != last.hash
    code, out = verify(site, capsys)
    assert code == 1 and f"row {last.seq} differs from the checkpoint" in out, out

    # 4. The directory gone (the other volume unmounted): the retained MQTT copy still holds it.
    copy_db(clean, db)
    for f in files:
        f.unlink()
    rewrite_from(db, last.seq - 3)
    code, out = verify(site, capsys)
    assert code == 1 and f"row {last.seq} differs from the checkpoint" in out, out
    assert "from mqtt://" in out
