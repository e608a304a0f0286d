"""Several recorders, one catalogue (issue 14, part 2): two ``recorderd run`` processes, each with its
own PBX simulator, ports, node name and recordings directory, against one real PostgreSQL database.

- calls on both nodes land in one catalogue, each row naming its node, and one ledger chain verifies
  after both wrote to it at once;
- a hold placed through node A beats a deletion on node B, by B's reaper and by a request on B;
- one node leads the catalogue-wide jobs; kill it and the other takes over within the retry bound;
- a node asked to play a call whose file only the other holds refuses, naming that node, and the
  refusal is ledgered.

Needs the PostgreSQL server binaries (tests/support/postgres.py: skipped with that reason outside CI,
a failure under CI).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pbx.simulator import CallResult, PbxSimulator, SimCall
from recorderd.cli.demo import speech
from recorderd.config import Config, load_config
from recorderd.records.audio import ElsewhereError
from recorderd.service import calls as call_service
from recorderd.service import retention as retention_service
from recorderd.service.door import Service
from recorderd.statusfile import StatusUnavailable, read_status
from storage import ledger
from storage.age import generate_identity
from storage.db import open_database
from storage.models import Call
from support.people import FAST, staff
from support.postgres import Cluster
from support.service import Service as Process
from support.service import Spawn

pytestmark = pytest.mark.timeout(180)

RETRY_S = 0.3  # cluster.leader_retry_s: the hand-over bound the test holds the daemons to
SECRET = "multi-secret"
CALLER, AGENT = speech("caller")[:16000], speech("agent")[:16000]  # one second each, in real time


@dataclasses.dataclass
class Node:
    name: str
    root: Path
    config_path: Path
    sim: PbxSimulator
    proc: Process

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


def node_config(name: str, root: Path, url: str, ami_port: int, recipient: str) -> str:
    return f"""
database_url = "{url}"
node = "{name}"
data_dir = "{root / "data"}"
[cluster]
leader_retry_s = {RETRY_S}
[agi]
listen = "127.0.0.1:0"
[audiosocket]
listen = "127.0.0.1:0"
[ami]
port = {ami_port}
secret = "{SECRET}"
[encryption]
recipients = ["{recipient}"]
[defaults]
inbound = "record"
[retention]
default = "raw"
interval_s = 0.5
policy_change_grace_h = 0
disk_refuse_free_mb = 0
disk_warn_free_percent = 0
[retention.policies.raw]
keep = {{ days = 31 }}
{FAST}"""


@pytest.fixture
async def nodes(
    tmp_path: Path, postgres: Cluster, spawn: Spawn
) -> AsyncIterator[Callable[[str], asyncio.Future[Node]]]:
    """start(name) -> a running node on this test's database; the first started creates the catalogue."""
    url = postgres.new_database()
    _identity, recipient = generate_identity()
    sims: list[PbxSimulator] = []

    async def start(name: str) -> Node:
        root = tmp_path / name
        root.mkdir()
        sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, ami_secret=SECRET, speed=1.0)
        await sim.start()
        sims.append(sim)
        cfg = root / "recorderd.toml"
        cfg.write_text(node_config(name, root, url, sim.ami_port, recipient), encoding="utf-8")
        proc = spawn(cfg, {})
        await proc.start()
        ready = await proc.expect_log("ready", within=60)
        assert ready["node"] == name
        sim.set_agi_target("127.0.0.1", int(ready["agi_port"]))
        return Node(name, root, cfg, sim, proc)

    def begin(name: str) -> asyncio.Future[Node]:
        return asyncio.ensure_future(start(name))

    yield begin
    for sim in sims:
        await sim.close()
    postgres.drop(url)


def inbound(n: int) -> SimCall:
    return SimCall(caller=f"031111{n:04d}", dialled="0668585050", caller_audio=CALLER, agent_audio=AGENT)


def call_id(result: CallResult) -> str:
    return str(uuid.UUID(result.variables["RECORDING_ID"]))


def sessions_of(node: Node) -> sessionmaker[Session]:
    return open_database(node.config.db_url, migrate=False)[1]


async def until(check: Callable[[], bool], within: float = 30) -> None:
    """Wait for a condition another process brings about (its rows, its files), bounded."""
    async with asyncio.timeout(within):  # another process: no event to await, so look again, bounded
        while True:
            if await asyncio.to_thread(check):
                return
            await asyncio.sleep(0.1)


def leads_says_status(node: Node) -> bool:
    try:
        return bool(read_status(node.data_dir)["cluster"]["leader"])
    except StatusUnavailable:
        return False


def finished(sessions: sessionmaker[Session], ids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        with sessions() as s:
            rows = s.scalars(select(Call).where(Call.id.in_(ids))).all()
        return len(rows) == len(ids) and all(r.status == "completed" and r.audio_sha256 for r in rows)

    return check


async def test_calls_on_both_nodes_land_in_one_catalogue_and_one_chain(
    nodes: Callable[[str], asyncio.Future[Node]],
) -> None:
    a = await nodes("hall-a")
    b = await nodes("hall-b")
    results = await asyncio.gather(
        *(a.sim.run_call(inbound(n)) for n in range(3)), *(b.sim.run_call(inbound(10 + n)) for n in range(3))
    )
    ids_a, ids_b = [call_id(r) for r in results[:3]], [call_id(r) for r in results[3:]]
    sessions = sessions_of(a)
    await until(finished(sessions, ids_a + ids_b))

    with sessions() as s:
        rows = {r.id: r for r in s.scalars(select(Call))}
        report = ledger.verify(s)
        created = ledger.entries(s, kinds=["recording_created"])
    assert {rows[i].node for i in ids_a} == {"hall-a"} and {rows[i].node for i in ids_b} == {"hall-b"}
    for node, ids in ((a, ids_a), (b, ids_b)):
        other = b if node is a else a
        for i in ids:
            rel = rows[i].audio_path
            assert rel is not None
            assert (node.data_dir / rel).is_file() and not (other.data_dir / rel).exists()
    assert report.ok, report.problems  # one chain, appended to by both processes at once
    assert {e.call_id: e.detail.get("node") for e in created} == {i: rows[i].node for i in ids_a + ids_b}
    # One leader: the first node started; the other says it is not.
    assert await a.proc.expect_log("leader_elected", lambda r: r.get("node") == "hall-a")
    assert await b.proc.expect_log("leader_elsewhere", lambda r: r.get("node") == "hall-b")
    assert not [r for r in b.proc.lines if r.get("event") == "leader_elected"]


async def test_a_hold_placed_through_one_node_beats_a_deletion_on_the_other(
    nodes: Callable[[str], asyncio.Future[Node]], tmp_path: Path
) -> None:
    a = await nodes("hall-a")
    b = await nodes("hall-b")
    held_r, free_r = await asyncio.gather(b.sim.run_call(inbound(1)), b.sim.run_call(inbound(2)))
    held, free = call_id(held_r), call_id(free_r)
    sessions = sessions_of(a)

    def assigned() -> bool:  # the leader (hall-a) gave both rows their expiry
        with sessions() as s:
            rows = s.scalars(select(Call).where(Call.id.in_([held, free]))).all()
        return len(rows) == 2 and all(r.retention_policy == "raw" and r.status == "completed" for r in rows)

    await until(assigned)
    signed = staff(a.config, tmp_path, {"boss": "manager"})
    svc_a = Service(a.config, sessions)
    boss_a = svc_a.sign_in("boss", "boss-password")
    [hold] = retention_service.add_holds(
        svc_a, boss_a, calls=[held], kind="police_legal", reference="K-14", reason="捜査関係事項照会"
    )
    assert signed and hold.call_id == held
    with sessions.begin() as s:  # both due now: only the hold tells them apart
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        s.execute(update(Call).where(Call.id.in_([held, free])).values(expires_at=past))

    deleted = await b.proc.expect_log("recording_deleted", lambda r: r.get("call_id") == free, within=30)
    assert deleted["call_id"] == free
    with sessions() as s:
        kept, gone = s.get(Call, held), s.get(Call, free)
    assert gone is not None and gone.audio_path is None and gone.audio_deleted_at is not None
    assert kept is not None and kept.audio_path is not None and (b.data_dir / kept.audio_path).is_file()
    assert not [r for r in a.proc.lines if r.get("event") == "recording_deleted"]  # not hall-a's files

    svc_b = Service(b.config, sessions)  # recorderctl calls delete on hall-b: refused, the hold named
    result = retention_service.delete(
        svc_b,
        svc_b.sign_in("boss", "boss-password"),
        held,
        request="D-9",
        reason="本人からの削除請求",
        requester=retention_service.Requester("山田花子", "06-1234-5678"),
    )
    assert not result.done and "K-14" in result.note
    assert (b.data_dir / kept.audio_path).is_file()
    with sessions() as s:
        assert ledger.verify(s).ok


async def test_the_leader_dies_and_the_other_node_takes_over(
    nodes: Callable[[str], asyncio.Future[Node]],
) -> None:
    a = await nodes("hall-a")
    b = await nodes("hall-b")
    await a.proc.expect_log("leader_elected", lambda r: r.get("node") == "hall-a")
    await b.proc.expect_log("leader_elsewhere")
    assert await a.proc.wait(signal.SIGKILL) == -signal.SIGKILL  # no goodbye: the server drops its lock
    loop = asyncio.get_running_loop()
    killed = loop.time()
    # The server notices the dead connection at once (its socket closes with the process); the other
    # node tries every RETRY_S. Generous slack for a loaded machine, still far below the default 15 s.
    elected = await b.proc.expect_log("leader_elected", lambda r: r.get("node") == "hall-b", within=10)
    assert elected and loop.time() - killed < 10
    await until(lambda: leads_says_status(b))  # and says so in its status file (recorderctl status)
    result = await b.sim.run_call(inbound(5))  # the survivor records on, and leads
    sessions = sessions_of(b)
    await until(finished(sessions, [call_id(result)]))
    with sessions() as s:
        assert ledger.verify(s).ok


async def test_playing_a_call_held_by_another_node_names_that_node(
    nodes: Callable[[str], asyncio.Future[Node]], tmp_path: Path
) -> None:
    a = await nodes("hall-a")
    b = await nodes("hall-b")
    result = await b.sim.run_call(inbound(3))
    sessions = sessions_of(a)
    await until(finished(sessions, [call_id(result)]))
    staff(a.config, tmp_path, {"boss": "manager"})
    svc = Service(a.config, sessions)
    boss = svc.sign_in("boss", "boss-password")
    with pytest.raises(ElsewhereError, match="held by node 'hall-b'"):
        call_service.play_sealed(svc, boss, call_id(result), "苦情の確認")
    with sessions() as s:
        [denied] = ledger.entries(s, kinds=["access_denied"])[-1:]
    assert "hall-b" in str(denied.detail)
    # With hall-b's data directory mounted on hall-a (shared storage), the same request succeeds.
    mounted = a.config.model_copy(
        update={"cluster": a.config.cluster.model_copy(update={"data_dirs": {"hall-b": b.data_dir}})}
    )
    sealed = call_service.play_sealed(Service(mounted, sessions), boss, call_id(result), "苦情の確認")
    assert sealed.recording.is_file() and sealed.recording.is_relative_to(b.data_dir)
