"""The reaper on real SQLite files and real recording files, driven by a clock the test controls."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from recorderd.config import Config
from recorderd.retention.engine import Retention, due_query
from recorderd.retention.reaper import Reaper
from recorderd.retention.report import plan
from storage import erase, holds, ledger, retention_log
from storage.db import immediate
from storage.models import EXCLUDED, Call, RetentionEvent, RetentionIntent
from support.retention_seed import Clock, jst, make_config, row, seed, sessions_for

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")

# These tests are about the reaper's mechanics, not the Civil Code (tests/unit/storage/test_retention.py,
# test_profiles.py): "same_day" keeps their dates simple (a call on 1 January: day 1 = 1 January).
RETENTION = """
[retention]
default = "short"
batch_size = 3
policy_change_grace_h = 0
max_clock_jump_h = 100000  # the clock-jump test sets its own
metadata = {{ days = 60, day_one = "same_day" }}
[retention.stores]
secondary = "{root}/secondary"
[retention.policies.short]
keep = {{ days = 10, day_one = "same_day" }}
basis = "test 1"
[retention.policies.tiered]
keep = {{ months = 6, day_one = "same_day" }}
tiers = [{{ store = "secondary", keep = {{ months = 6, day_one = "same_day" }} }}]
"""


class Sink:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, dict[str, object]]] = []
        self.resolved: list[str] = []
        self.events: list[str] = []

    def alert(self, kind: str, *, transient: bool = False, **fields: object) -> None:
        self.alerts.append((kind, fields))

    def resolve(self, kind: str, **fields: object) -> None:
        self.resolved.append(kind)

    def event(self, kind: str, **fields: object) -> None:
        self.events.append(kind)


def config_for(tmp_path: Path, **changes: str) -> Config:
    text = RETENTION.format(root=tmp_path)
    for old, new in changes.items():
        text = text.replace(old, new)
    return make_config(tmp_path, text)


def log_entries(config: Config, action: str | None = None) -> list[RetentionEvent]:
    with sessions_for(config)() as s:
        return retention_log.entries(s, actions=[action] if action else None)


async def test_reaper_deletes_exactly_the_due_recordings(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    # 1-10 January, one call a day at 10:00 JST: kept 10 days, the 1 January call through 10 January.
    calls = seed(config, sessions, [(jst(2026, 1, d, 10), "general") for d in range(1, 11)])
    clock = Clock(jst(2026, 1, 10, 23, 59, 59))  # the last second of the first call's last day
    reaper = Reaper(config, sessions, clock=clock, events=Sink())

    first = await reaper.run_pass()
    assert first.deleted == 0 and all(c.path.exists() for c in calls)
    clock.now = jst(2026, 1, 15, 0, 0)  # 00:00 JST on the 15th: calls of 1-5 January are due
    report = await reaper.run_pass()
    assert report.deleted == 5 and report.refused is None
    for c in calls:
        r = row(sessions, c.id)
        assert r is not None
        due = r.started_at < jst(2026, 1, 6)
        assert c.path.exists() is not due
        assert (r.audio_path is None, r.audio_deleted_at is not None) == (due, due)
        assert r.expires_at == dt.datetime.combine(
            r.started_at.astimezone(config.zone).date() + dt.timedelta(days=10), dt.time(), config.zone
        )
    deleted = log_entries(config, "delete")
    assert sorted(e.call_id or "" for e in deleted) == sorted(c.id for c in calls[:5])
    entry = json.loads(deleted[0].detail)
    assert deleted[0].rule == "policy short: 10 days from the recording, its day counted (test 1)"
    assert (
        deleted[0].actor == "reaper"
        and entry["sha256"] == calls[0].sha256
        and entry["path"] == str(calls[0].path)
    )
    # The directory entries are gone for good, and the rows stay for the metadata period.
    assert not any((config.data_dir / "recordings/2026/01/01").iterdir())
    assert (await reaper.run_pass()).deleted == 0


async def test_held_recordings_are_never_touched_until_released(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    held, free, tiered = seed(
        config,
        sessions,
        [(jst(2026, 1, 1, 10), "general"), (jst(2026, 1, 1, 11), "general"), (jst(2026, 1, 1, 12), "tiered")],
    )
    with immediate(sessions) as s:
        holds.place(
            s,
            held.id,
            kind="police_legal",
            reference="P-1",
            reason="捜査関係事項照会",
            by="chief",
            at=jst(2026, 1, 5),
        )
        holds.place(
            s, held.id, kind="disclosure", reference="D-7", reason="開示請求", by="clerk", at=jst(2026, 1, 6)
        )
        holds.place(
            s,
            tiered.id,
            kind="harassment",
            reference="H-2",
            reason="不当要求",
            by="chief",
            at=jst(2026, 1, 6),
        )
    clock = Clock(jst(2027, 6, 1))  # far past every expiry, the secondary tier's too
    reaper = Reaper(config, sessions, clock=clock, events=Sink())
    report = await reaper.run_pass()
    # The free call loses its audio and, its metadata period long over, its row; held ones keep both.
    assert (report.deleted, report.moved, report.held_past_expiry, report.purged) == (1, 0, 2, 1)
    assert held.path.exists() and tiered.path.exists() and not free.path.exists()
    assert row(sessions, free.id) is None
    assert row(sessions, held.id) is not None and row(sessions, tiered.id).audio_store is None  # type: ignore[union-attr]

    # Releasing one of two holds keeps it; releasing the last lets the next pass delete it.
    with immediate(sessions) as s:
        [police, disclosure] = holds.listing(s, call_id=held.id)
        holds.release(s, police.id, by="chief", reason="照会終了", at=clock.now)
    assert (await reaper.run_pass()).deleted == 0 and held.path.exists()
    with immediate(sessions) as s:
        holds.release(s, disclosure.id, by="clerk", reason="開示済み", at=clock.now)
    assert (await reaper.run_pass()).deleted == 1 and not held.path.exists()
    actions = [e.action for e in log_entries(config) if e.call_id == held.id]
    assert actions == ["hold", "hold", "release", "release", "delete", "purge_metadata"]


async def test_osaka_tier_moves_at_six_months_then_deletes(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    [call] = seed(config, sessions, [(jst(2026, 1, 10, 9), "tiered")])
    clock = Clock(jst(2026, 7, 9, 23, 59))
    reaper = Reaper(config, sessions, clock=clock, events=Sink())
    assert (await reaper.run_pass()).moved == 0 and call.path.exists()

    clock.now = jst(2026, 7, 10, 0, 0)  # 6 months: 10 Jan - 9 Jul kept here
    assert (await reaper.run_pass()).moved == 1
    moved = tmp_path / "secondary" / call.rel
    r = row(sessions, call.id)
    assert r is not None and not call.path.exists() and moved.exists()
    assert (r.audio_store, r.audio_path, r.audio_sha256) == ("secondary", str(moved), call.sha256)
    assert r.expires_at == jst(2027, 1, 10) and r.move_at is None
    [entry] = log_entries(config, "move")
    assert json.loads(entry.detail)["to"] == str(moved) and entry.call_id == call.id

    clock.now = jst(2027, 1, 9, 23, 59)
    assert (await reaper.run_pass()).deleted == 0
    clock.now = jst(2027, 1, 10)
    assert (await reaper.run_pass()).deleted == 1 and not moved.exists()
    assert json.loads(log_entries(config, "delete")[0].detail)["store"] == "secondary"


async def test_metadata_rows_outlive_their_audio_then_go_without_numbers_in_the_log(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    [call] = seed(config, sessions, [(jst(2026, 1, 1, 10), "general")])
    with sessions.begin() as s:
        s.add(
            Call(
                id="excluded-1",
                direction="inbound",
                line="kokoro",
                started_at=jst(2026, 1, 1, 11),
                status=EXCLUDED,
            )
        )
    clock = Clock(jst(2026, 1, 11))
    reaper = Reaper(config, sessions, clock=clock, events=Sink())
    assert (await reaper.run_pass()).deleted == 1
    assert row(sessions, call.id) is not None
    clock.now = jst(2026, 3, 1, 23, 59)  # 60 days: 1 Jan - 1 Mar
    assert (await reaper.run_pass()).purged == 0
    clock.now = jst(2026, 3, 2)
    assert (await reaper.run_pass()).purged == 2
    assert row(sessions, call.id) is None and row(sessions, "excluded-1") is None
    purges = log_entries(config, "purge_metadata")
    assert {e.call_id for e in purges} == {call.id, "excluded-1"}
    assert all("0311112222" not in e.detail and "0668585050" not in e.detail for e in purges)


async def test_policy_change_is_logged_with_counts_and_deferred_by_the_grace(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    calls = seed(config, sessions, [(jst(2026, 1, d, 10), "general") for d in (1, 2, 3, 4)])
    clock = Clock(jst(2026, 1, 6))
    sink = Sink()
    reaper = Reaper(config, sessions, clock=clock, events=sink)
    assert (await reaper.run_pass()).deleted == 0

    # Shortened from 10 to 3 days: calls of 1-2 January become due at once, but not before the grace.
    shorter = config_for(
        tmp_path,
        **{
            'keep = { days = 10, day_one = "same_day" }': 'keep = { days = 3, day_one = "same_day" }',
            "policy_change_grace_h = 0": "policy_change_grace_h = 24",
        },
    )
    reaper.reconfigure(shorter)
    report = await reaper.run_pass()
    assert (report.policy_changed, report.deferred, report.deleted) == (True, 3, 0)
    change = json.loads(log_entries(config, "policy_change")[-1].detail)
    assert change["before"] == {"with_audio": 4, "due_now": 0, "kept_forever": 0}
    assert change["after"] == {"with_audio": 4, "due_now": 0, "kept_forever": 0}
    assert (change["changed"], change["earlier"], change["later"], change["deferred"]) == (4, 4, 0, 3)
    assert [k for k, _ in sink.alerts] == ["retention_policy_change_deferred"]

    clock.now = jst(2026, 1, 7)  # the grace ends: the deferred ones go, the 4 January call (due 7 Jan) too
    assert (await reaper.run_pass()).deleted == 4
    assert not any(c.path.exists() for c in calls)
    assert (await reaper.run_pass()).policy_changed is False


async def test_a_clock_far_past_the_last_known_time_stops_deletion(tmp_path: Path) -> None:
    config = config_for(tmp_path, **{"max_clock_jump_h = 100000": "max_clock_jump_h = 72"})
    sessions = sessions_for(config)
    [call] = seed(config, sessions, [(jst(2026, 1, 1, 10), "general")])
    clock = Clock(jst(2026, 1, 2))
    sink = Sink()
    reaper = Reaper(config, sessions, clock=clock, events=sink)
    await reaper.run_pass()
    clock.advance(days=400)  # an RTC reset, a bad NTP answer
    report = await reaper.run_pass()
    assert (report.refused, report.deleted) == ("retention_clock_jump", 0) and call.path.exists()
    assert sink.alerts[-1][0] == "retention_clock_jump"
    with immediate(sessions) as s:  # what `recorderctl retention confirm-clock` writes
        retention_log.set_time(s, "clock_confirmed_at", clock.now)
    assert (await reaper.run_pass()).deleted == 1
    assert "retention_clock_jump" in sink.resolved


async def test_an_empty_catalogue_beside_recording_files_stops_deletion(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    stray = config.data_dir / "recordings/2026/01/01/lost.age"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"age-encryption.org/v1")
    sink = Sink()
    report = await Reaper(config, sessions, clock=Clock(jst(2026, 6, 1)), events=sink).run_pass()
    assert report.refused == "retention_catalogue_empty" and stray.exists()
    assert sink.alerts[0][0] == "retention_catalogue_empty"


async def test_a_file_already_missing_is_logged_as_deleted_and_reported(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    gone, kept = seed(config, sessions, [(jst(2026, 1, 1, 10), "general"), (jst(2026, 1, 20, 10), "general")])
    gone.path.unlink()
    report = await Reaper(config, sessions, clock=Clock(jst(2026, 1, 12)), events=Sink()).run_pass()
    assert report.deleted == 1 and kept.path.exists()
    [entry] = log_entries(config, "delete")
    assert json.loads(entry.detail)["note"] == "file was already missing"


async def test_rows_still_recording_are_left_alone(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    [call] = seed(config, sessions, [(jst(2026, 1, 1, 10), "general")])
    with sessions.begin() as s:
        s.get(Call, call.id).status = "recording"  # type: ignore[union-attr]
    report = await Reaper(config, sessions, clock=Clock(jst(2026, 2, 1)), events=Sink()).run_pass()
    assert report.deleted == 0 and call.path.exists()
    with sessions() as s:
        assert s.scalar(select(Call.retention_policy).where(Call.id == call.id)) is None


@pytest.mark.parametrize("policies", ["", 'default = "short"\n'])
async def test_without_a_policy_nothing_is_ever_deleted(tmp_path: Path, policies: str) -> None:
    text = f'[retention]\n{policies}[retention.policies.short]\nkeep = {{ days = 1, day_one = "same_day" }}\n'
    config = make_config(tmp_path, text if policies else "", lines="")
    sessions = sessions_for(config)
    [call] = seed(config, sessions, [(jst(2026, 1, 1, 10), None)])
    with immediate(sessions) as s:  # years after the newest call: as `retention confirm-clock` does
        retention_log.set_time(s, "clock_confirmed_at", jst(2030, 1, 1))
    report = await Reaper(config, sessions, clock=Clock(jst(2030, 1, 1)), events=Sink()).run_pass()
    r = row(sessions, call.id)
    assert r is not None
    if policies:
        assert report.deferred == 1 and r.expires_at == jst(2030, 1, 2)  # first adoption: 24 h grace
    else:
        assert report.deleted == 0 and call.path.exists() and (r.retention_policy, r.expires_at) == ("", None)


@pytest.mark.parametrize("column", [Call.expires_at, Call.move_at, Call.metadata_expires_at])
def test_each_batch_walks_the_index_instead_of_sorting_every_due_row(
    tmp_path: Path, column: Any, backend: str
) -> None:
    """SQLite's plan for a batch after the first, with bound parameters as the reaper sends them. The
    keyset written as ``col > a OR (col = a AND id > b)`` was planned as a multi-index OR feeding a
    full sort: every batch read and sorted all due rows after the cursor (100,000 due among 1,000,000
    calls: 89 s of deletions, docs/PERFORMANCE.md). It must walk the column's index and stop."""
    if backend != "sqlite":
        pytest.skip("SQLite's query plan (EXPLAIN QUERY PLAN); PostgreSQL's planner is measured in bench/")
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    now = jst(2026, 1, 15)
    q = due_query(column, Call.audio_path.is_not(None), now, (now - dt.timedelta(days=100), "x"), 200)
    with sessions() as s:
        dialect = s.get_bind().dialect
        compiled = q.compile(dialect=dialect)
        values = compiled.construct_params()
        params = []
        for name in compiled.positiontup or ():
            process = compiled.binds[name].type.bind_processor(dialect)
            params.append(process(values[name]) if process else values[name])
        plan = [
            r[3] for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), tuple(params))
        ]
    assert f"SEARCH calls USING INDEX ix_calls_{column.key} ({column.key}>? AND {column.key}<?)" in plan, plan
    assert not any("MULTI-INDEX OR" in p or p == "USE TEMP B-TREE FOR ORDER BY" for p in plan), plan


async def test_the_plan_counts_scheduled_rows_in_sql_exactly_as_row_by_row(tmp_path: Path) -> None:
    """``retention plan`` counts plain scheduled deletions with one GROUP BY and goes row by row only
    for the rest; its counts must equal the row-by-row listing (``--calls``) on a mixed catalogue:
    scheduled and not yet scheduled rows, moves to a tier, a held call, several days and policies."""
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    days = [jst(2026, 1, d, 10) for d in range(1, 21)]
    scheduled = seed(config, sessions, [(t, "general") for t in days] + [(t, "tiered") for t in days[:3]])
    clock = Clock(jst(2026, 1, 12))
    await Reaper(config, sessions, clock=clock, events=Sink()).run_pass()  # schedules, deletes 1-2 Jan
    seed(config, sessions, [(t, "general") for t in days[5:9]])  # not yet scheduled by the reaper
    with immediate(sessions) as s:
        holds.place(
            s, scheduled[10].id, kind="manager_order", reference="M-1", reason="r", by="t", at=clock.now
        )
    ret = Retention(config, sessions)
    until = jst(2026, 8, 1)
    with sessions() as s:
        counted = plan(config, ret, s, clock.now, until)
        full = plan(config, ret, s, clock.now, until, calls=True)
    # --calls adds each group's calls (indented) under it; the held calls are listed either way.
    cut = next(i for i, line in enumerate(full) if line.startswith("kept by holds"))
    listed = [line for line in full[:cut] if not line.startswith(" ")] + full[cut:]
    assert counted == listed
    assert (
        any("move to secondary" in line for line in counted)
        and "kept by holds although due: 1 call(s)" in counted
    )

    def total(action: str) -> int:
        return sum(int(line.split()[1 + len(action.split())]) for line in counted if f"  {action} " in line)

    # 20 + 4 "general" calls, 2 already deleted, 1 held; the 3 "tiered" move in July, go in 2027.
    assert (total("delete"), total("move to secondary")) == (20 + 4 - 2 - 1, 3), counted


def test_a_purge_batch_rechecks_every_row_under_the_lock(tmp_path: Path) -> None:
    """purge_rows re-checks each row in one batch: only rows whose audio is gone, not recording, not
    held and with no file operation in flight go, each with one log and one ledger entry."""
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    at = jst(2026, 1, 1, 10)
    ok, held, audio, busy, recording = (c.id for c in seed(config, sessions, [(at, "general")] * 5))
    now = jst(2026, 6, 1)
    with immediate(sessions) as s:
        for call_id in (ok, held, busy, recording):
            s.execute(update(Call).where(Call.id == call_id).values(audio_path=None, audio_deleted_at=now))
        s.execute(update(Call).where(Call.id == recording).values(status="recording"))
        holds.place(s, held, kind="police_legal", reference="P-1", reason="r", by="t", at=now)
        s.add(RetentionIntent(path="/x", call_id=busy, op="delete", state="started", action="delete",
                              actor="t", detail="{}", created_at=now))  # fmt: skip
    ids = [ok, held, audio, busy, recording, "no-such-call"]
    assert erase.purge_rows(sessions, ids, now, actor="reaper", rule="metadata retention: 60 days") == [ok]
    with sessions() as s:
        assert s.get(Call, ok) is None
        assert all(s.get(Call, k) is not None for k in (held, audio, busy, recording))
        [entry] = retention_log.entries(s, actions=["purge_metadata"])
        assert entry.call_id == ok and "0311112222" not in entry.detail
        [chained] = ledger.entries(s, kinds=["metadata_purged"])
        assert chained.call_id == ok and ledger.verify(s).ok


async def test_each_node_reaps_only_its_own_files_and_only_the_leader_assigns(tmp_path: Path) -> None:
    """Several recorders on one catalogue: a node deletes only the files it holds (the others' are on
    their disks); expiries and the purge are the leader's share, done once for every node's rows."""
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    calls = seed(config, sessions, [(jst(2026, 1, d, 10), "general") for d in range(1, 5)])
    theirs = {c.id for c in calls[:2]}
    with sessions.begin() as s:
        s.execute(update(Call).where(Call.id.in_(theirs)).values(node="hall-b"))
    clock = Clock(jst(2026, 1, 30))
    follower = await Reaper(config, sessions, clock=clock, events=Sink(), leads=lambda: False).run_pass()
    assert (follower.assigned_batches, follower.deleted) == (0, 0)
    assert all(getattr(row(sessions, c.id), "retention_policy", "") is None for c in calls)

    leader = await Reaper(config, sessions, clock=clock, events=Sink()).run_pass()
    assert leader.assigned_batches > 0 and leader.deleted == 2
    for c in calls:
        r = row(sessions, c.id)
        assert r is not None and r.retention_policy == "short" and r.expires_at is not None
        assert c.path.exists() is (c.id in theirs) and (r.audio_path is None) is (c.id not in theirs)


def test_a_node_settles_only_the_intents_it_wrote(tmp_path: Path) -> None:
    """An intent names the node on whose disk its file is: another node finding no file at that path
    (it is not on its disk) must not take the deletion as done."""
    config = config_for(tmp_path)
    sessions = sessions_for(config)
    [call] = seed(config, sessions, [(jst(2026, 1, 1, 10), "general")])
    with immediate(sessions) as s:
        s.add(RetentionIntent(path="/elsewhere/" + call.rel, call_id=call.id, op="delete", state="started",
                              action="delete", actor="reaper", detail="{}", created_at=jst(2026, 1, 2),
                              node="hall-b"))  # fmt: skip
    assert erase.recover(sessions, jst(2026, 1, 3), node="hall-a") == []
    [(_intent, verdict)] = erase.recover(sessions, jst(2026, 1, 3), node="hall-b")
    assert verdict.startswith("finished")  # on hall-b the file is gone: its deletion completes there
