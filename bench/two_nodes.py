"""Two recorders sharing one PostgreSQL catalogue (issue 14, Performance, second bullet).

    python -m bench.two_nodes --calls 200,500,1000 --seconds 30

One throwaway PostgreSQL cluster (bench/postgres.py: Unix socket, fsync on; ``--database-url`` for a
database of your own) and, for each N, a fresh database and two daemons (``bench.daemon_proc``, as in
bench/concurrent_calls.py) with ``node = "a"`` and ``node = "b"``, each its own data directory and
the same database URL. Node a starts first (it creates the catalogue), then node b. N/2 calls go to
each at once, from one load generator (concurrent_calls' AGI + AudioSocket generator, one media
clock for both nodes' calls). After the steady-state window:

* **Zero loss**: every node's recordings are decrypted and checked frame by frame (concurrent_calls'
  ``verify``), per node and in total.
* **Metadata lag**: the calls hang up one by one (``--rate`` a second, a and b interleaved, as
  independent callers do, not all in the same millisecond); a thread of the bench polls the shared
  catalogue every ``POLL_S`` for rows that became final (status completed/unverified, ended_at set).
  A call's lag is from just before its hang-up (FIN on its AudioSocket) to the end of the first poll
  that saw its row final: an upper bound, coarse by up to one poll interval plus one query.
* **One chain**: the shared ledger (both daemons' recording_created/finalised entries) is verified
  with ``storage.ledger.verify``, as ``recorderctl ledger verify`` does.

Then, once, **ledger appends under contention** on a fresh database: worker processes append
``searched`` entries, each with ``storage.ledger.append_committed`` (what the service layer's door
commits before a signed-in person's search, recorderd/service/door.py ``Pass.grant``), as fast as
they can for ``--ledger-seconds``: one process alone, then two at once (one per node's core); then
the whole chain is verified: it must be one total order, every append in it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import (
    DOC,
    Section,
    core_busy,
    core_times,
    cpu_seconds,
    loadavg,
    main_thread_cpu_seconds,
    percentile,
    pin,
    self_cpu_seconds,
    table,
    write_section,
)
from bench.concurrent_calls import (
    CONFIG,
    SETTLE_S,
    TICK_S,
    Call,
    LoadGenerator,
    Result,
    Streamer,
    _fmt,
    _wait_sealed,
    read_probes,
    spawn_daemon,
    stop_daemon,
    verify,
)
from bench.postgres import Catalogue, add_arguments, catalogue, config_line
from storage import ledger
from storage.age import generate_identity
from storage.db import open_database
from storage.models import COMPLETED, UNVERIFIED
from storage.models import Call as CallRow

POLL_S = 0.05  # the lag poll's interval: the lag's resolution
LAG_TIMEOUT_S = 120.0  # a row not final this long after the last hang-up counts as never final
NODES = ("a", "b")
# What calls.search ledgers for a search by number over a month (recorderd/service/calls.py Query.detail).
SEARCH_DETAIL = {"from": "2026-11-01", "to": "2026-11-30", "number": "0312345678", "limit": 100}


def layout() -> tuple[set[int], set[int], set[int]]:
    """Cores of daemon a, daemon b, and the rest (load generator, PostgreSQL server, lag poll).
    Two cores: both daemons share core 0 as the one daemon of concurrent_calls has it, so the total
    compares with that figure and the difference is what sharing one catalogue costs."""
    n = os.cpu_count() or 1
    if n >= 3:
        return {0}, {1}, set(range(2, n))
    if n == 2:
        return {0}, {0}, {1}
    return {0}, {0}, {0}


def _cores(c: set[int]) -> str:
    return ", ".join(str(x) for x in sorted(c))


def describe(db: Catalogue, cores: tuple[set[int], set[int], set[int]]) -> str:
    if db.cluster:
        catalogue_is = (
            f"**PostgreSQL {db.cluster.bin.parent.name}** (a throwaway cluster the bench started: Unix "
            f"socket, fsync on, otherwise default settings; its server on core {_cores(cores[2])})"
        )
    else:
        catalogue_is = (
            "**PostgreSQL** at the URL given with --database-url (its server not pinned by the bench)"
        )
    return (
        f"Catalogue: {catalogue_is}. Daemon a on core {_cores(cores[0])}, daemon b on core "
        f"{_cores(cores[1])}; the load generator and the lag poll on core {_cores(cores[2])}; the ledger "
        "workers on the daemons' cores."
    )


@dataclass
class Run:
    calls: int
    nodes: dict[str, Result]
    shared_core: bool  # both daemons on one core: their CPU adds up against it
    lag: list[float] = field(default_factory=list)  # seconds, per call seen final
    never_final: int = 0
    hangup_rate: float = 0.0
    ledger_checked: int = 0
    ledger_problems: list[str] = field(default_factory=list)
    cores: list[float] = field(default_factory=list)
    loadgen_cpu: float = 0.0

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.nodes.values())

    @property
    def daemon_cpu(self) -> float:
        return sum(r.daemon_cpu for r in self.nodes.values())

    @property
    def keeps_up(self) -> bool:
        both = all(r.keeps_up for r in self.nodes.values())
        return both and (not self.shared_core or self.daemon_cpu < 95.0)

    @property
    def lag_ms(self) -> tuple[float, float, float]:
        ms = [x * 1e3 for x in self.lag]
        return (percentile(ms, 50), percentile(ms, 99), max(ms, default=float("nan")))


class LagWatch(threading.Thread):
    """Polls the shared catalogue for the calls' rows becoming final; notes when each was first seen."""

    def __init__(self, url: str, calls: list[Call]) -> None:
        super().__init__(name="lag-watch", daemon=True)
        self.url = url
        self.pending = {c.call_id for c in calls if c.call_id is not None}
        self.seen: dict[str, float] = {}
        self.deadline = float("inf")  # set once the last call has hung up
        self.error: BaseException | None = None
        self.polling = threading.Event()  # connected, first poll done: the hang-ups may begin

    def run(self) -> None:
        engine, sessions = open_database(self.url, migrate=False)
        final = CallRow.status.in_((COMPLETED, UNVERIFIED)) & CallRow.ended_at.is_not(None)
        try:
            while self.pending and time.monotonic() < self.deadline:
                start = time.monotonic()
                with sessions() as s:
                    ids = list(s.scalars(select(CallRow.id).where(CallRow.id.in_(self.pending), final)))
                end = time.monotonic()  # the rows were final before the query's snapshot, so before now
                for call_id in ids:
                    self.seen[call_id] = end
                    self.pending.discard(call_id)
                self.polling.set()
                time.sleep(max(0.0, start + POLL_S - time.monotonic()))
        except BaseException as exc:  # reported by the run, never a silent hang
            self.error = exc
        finally:
            self.polling.set()
            engine.dispose()


async def hang_up_paced(calls: list[Call], rate: float) -> None:
    """Each call hangs up on its own, ``rate`` a second: its media stops, its queued frames go out
    (bounded), then the FIN; ``Call.hung_up`` is the time just before the FIN."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i, call in enumerate(calls):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_hang_up(call)))
    await asyncio.gather(*tasks)


async def _hang_up(call: Call) -> None:
    if call.sock is None:
        return
    call.stop = True
    await asyncio.sleep(TICK_S)  # the media thread may be inside this call's send: a tick later it is not
    deadline = time.monotonic() + 10
    while call.pending and call.error is None and time.monotonic() < deadline:
        Streamer.flush(call)
        await asyncio.sleep(0.02)
    call.hung_up = time.monotonic()
    call.sock.close()


def _interleave(a: list[Call], b: list[Call]) -> list[Call]:
    out: list[Call] = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


def _window(
    run: Run,
    procs: dict[str, subprocess.Popen[bytes]],
    gens: dict[str, LoadGenerator],
    streamer: Streamer,
    seconds: float,
) -> tuple[int, int]:
    """The steady-state window: each daemon's CPU, the offered rate per node, the cores; (t0, t1) ns."""
    pids = {name: p.pid for name, p in procs.items()}
    cpu0 = {k: (cpu_seconds(p), main_thread_cpu_seconds(p)) for k, p in pids.items()}
    frames0 = {k: sum(c.generated for c in g.calls) for k, g in gens.items()}
    own0, t0, c0 = self_cpu_seconds(), time.monotonic_ns(), core_times()
    streamer.record_lag = True
    time.sleep(seconds)
    streamer.record_lag = False
    own1, t1, c1 = self_cpu_seconds(), time.monotonic_ns(), core_times()
    cpu1 = {k: (cpu_seconds(p), main_thread_cpu_seconds(p)) for k, p in pids.items()}
    frames1 = {k: sum(c.generated for c in g.calls) for k, g in gens.items()}
    wall = (t1 - t0) / 1e9
    run.cores = core_busy(c0, c1)
    run.loadgen_cpu = 100 * (own1 - own0) / wall
    lags = streamer.lags
    for name, r in run.nodes.items():
        r.daemon_cpu = 100 * (cpu1[name][0] - cpu0[name][0]) / wall
        r.loop_cpu = 100 * (cpu1[name][1] - cpu0[name][1]) / wall
        r.loadgen_cpu = run.loadgen_cpu
        r.offered = (frames1[name] - frames0[name]) / wall / max(1, r.established)
        r.lag = (percentile(lags, 99) * 1e3, max(lags, default=0.0) * 1e3)
    return t0, t1


def run_one(
    n: int,
    seconds: float,
    rate: float,
    root: Path,
    loop_name: str,
    settle: float,
    db: Catalogue,
    cores: tuple[set[int], set[int], set[int]],
) -> Run:
    identity, recipient = generate_identity()
    run_dir = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=root))
    url = db.fresh()
    share = {"a": n - n // 2, "b": n // 2}
    dirs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    run = Run(n, {}, shared_core=cores[0] == cores[1])
    streamer: Streamer | None = None
    watch: LagWatch | None = None
    try:
        ready: dict[str, dict[str, Any]] = {}
        for name, core in zip(NODES, cores[:2], strict=True):  # a first: it creates the catalogue
            dirs[name] = run_dir / name / "data"
            dirs[name].mkdir(parents=True)
            config = run_dir / name / "recorderd.toml"
            text = (
                config_line(url)
                + f'node = "{name}"\n'
                + CONFIG.format(data_dir=dirs[name], recipient=recipient)
            )
            config.write_text(text, encoding="utf-8")
            procs[name], ready[name] = spawn_daemon(config, run_dir / name / "probes.json", loop_name, core)
            run.nodes[name] = Result(share[name], 0, loop=ready[name].get("loop", "?"), backend="postgresql")
        gens = {name: LoadGenerator(ready[name]["agi_port"], share[name], rate / 2) for name in NODES}
        gens["b"].streamer = streamer = gens["a"].streamer  # one media clock for every call
        for call in gens["b"].calls:
            call.index += share["a"]  # distinct channels and numbers across the two nodes

        async def place() -> None:
            await asyncio.gather(*(g.place_all() for g in gens.values()))

        streamer.start()
        asyncio.run(place())
        for name, gen in gens.items():
            run.nodes[name].established = sum(1 for c in gen.calls if c.sock is not None)
        time.sleep(settle)
        t0, t1 = _window(run, procs, gens, streamer, seconds)
        everyone = _interleave(gens["a"].calls, gens["b"].calls)
        watch = LagWatch(url, everyone)
        watch.start()
        watch.polling.wait(timeout=60)  # its connection made before the first hang-up, not during
        h0 = time.monotonic()
        asyncio.run(hang_up_paced(everyone, rate))
        run.hangup_rate = len(everyone) / max(1e-9, time.monotonic() - h0)
        watch.deadline = time.monotonic() + LAG_TIMEOUT_S
        watch.join()
        streamer.running = False
        if watch.error is not None:
            raise RuntimeError(f"N={n}: the lag poll failed: {watch.error}") from watch.error
        run.lag = [
            watch.seen[c.call_id] - c.hung_up for c in everyone if c.call_id in watch.seen and c.hung_up
        ]
        run.never_final = len(watch.pending)
        for name in NODES:
            _wait_sealed(dirs[name], run.nodes[name].established, timeout=120)
    finally:
        if streamer is not None:
            streamer.running = False
        if watch is not None:
            watch.deadline = 0.0  # a failed run leaves no poll behind
        for proc in procs.values():
            proc.terminate()  # both at once; stop_daemon waits for each (and kills a stuck one)
        for name, proc in procs.items():
            stop_daemon(proc, f"N={n}, node {name}")
    for name, r in run.nodes.items():
        read_probes(run_dir / name / "probes.json", r, t0, t1)
        r.failures = dict(gens[name].failures)
        verify(dirs[name], identity, gens[name].calls, r, url)
    run.ledger_checked, run.ledger_problems = verify_ledger(url)
    return run


def verify_ledger(url: str) -> tuple[int, list[str]]:
    """The whole chain, as ``recorderctl ledger verify`` walks it: (entries checked, problems)."""
    engine, sessions = open_database(url, migrate=False)
    try:
        with sessions() as s:
            report = ledger.verify(s)
    finally:
        engine.dispose()
    return report.checked, [f"seq {p.seq}: {p.message}" for p in report.problems]


# --- ledger appends under contention ---------------------------------------------------------


def _append_worker(url: str, actor: str, cores: set[int], orders: Any, out: Any) -> None:
    """One process appending ``searched`` entries through the service layer's commit: each order is a
    number of seconds to append for, as fast as it can; None ends it."""
    pin(cores)
    engine, sessions = open_database(url, migrate=False)
    try:
        ledger.append_committed(sessions, "searched", actor, detail=SEARCH_DETAIL)  # connect, warm up
        out.put((actor, 1, 0.0))
        while (seconds := orders.get()) is not None:
            count, start = 0, time.monotonic()
            end = start + seconds
            while time.monotonic() < end:
                ledger.append_committed(sessions, "searched", actor, detail=SEARCH_DETAIL)
                count += 1
            out.put((actor, count, time.monotonic() - start))
    finally:
        engine.dispose()


@dataclass
class Appends:
    seconds: float
    alone: float = 0.0  # appends/s, one process
    together: dict[str, float] = field(default_factory=dict)  # appends/s per process, two at once
    appended: int = 0  # entries the chain should hold: those before, plus every append
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.checked == self.appended


def _results(out: Any, workers: list[Any], n: int, timeout: float) -> list[tuple[str, int, float]]:
    """``n`` results from the workers, or an error as soon as one has died (spawning is slow on a
    busy host: the first results, their readiness, may take long)."""
    got: list[tuple[str, int, float]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            got.append(out.get(timeout=1.0))
        except queue.Empty:
            dead = [w.exitcode for w in workers if w.exitcode is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"a ledger worker failed or hung (exit codes {dead})") from None
    return got


def ledger_contention(url: str, seconds: float, cores: tuple[set[int], set[int], set[int]]) -> Appends:
    """One worker appending alone for ``seconds``, then two at once, then the whole chain verified."""
    engine, _ = open_database(url, migrate=True)
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    result = Appends(seconds)
    result.appended, _ = verify_ledger(url)  # a database given by URL may hold earlier entries
    out = ctx.Queue()
    orders = {name: ctx.Queue() for name in NODES}
    workers = [
        ctx.Process(target=_append_worker, args=(url, f"bench-{name}", core, orders[name], out))
        for name, core in zip(NODES, cores[:2], strict=True)
    ]
    for w in workers:
        w.start()
    try:
        result.appended += len(_results(out, workers, len(workers), 120))  # ready: one entry each
        for phase in (NODES[:1], NODES):
            for name in phase:
                orders[name].put(seconds)
            got = _results(out, workers, len(phase), seconds + 60)
            result.appended += sum(count for _actor, count, _t in got)
            rates = {actor: count / elapsed for actor, count, elapsed in got}
            if len(phase) == 1:
                result.alone = sum(rates.values())
            else:
                result.together = rates
        for name in NODES:
            orders[name].put(None)
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
                w.join()
    result.checked, result.problems = verify_ledger(url)
    return result


# --- the report ------------------------------------------------------------------------------


def _calls_table(runs: list[Run]) -> str:
    rows: list[list[object]] = []
    for run in runs:
        for name, r in run.nodes.items():
            rows.append([
                run.calls, name, f"{r.established} / {r.calls}", f"{r.generated:,}", f"{r.stored:,}",
                f"**{r.lost}**", f"{r.daemon_cpu:.0f} % ({r.loop_cpu:.0f} %)", _fmt(r.arrival),
                _fmt(r.durable), r.completed_rows, "yes" if r.keeps_up else "**no**",
            ])  # fmt: skip
        nodes = run.nodes.values()
        set_up, generated = sum(r.established for r in nodes), sum(r.generated for r in nodes)
        stored, sealed = sum(r.stored for r in nodes), sum(r.completed_rows for r in nodes)
        rows.append([
            run.calls, "**both**", f"{set_up} / {run.calls}", f"{generated:,}", f"{stored:,}",
            f"**{run.lost}**", f"{run.daemon_cpu:.0f} %", "", "", sealed, "yes" if run.keeps_up else "**no**",
        ])  # fmt: skip
    return table(
        ["calls", "node", "set up", "frames generated", "frames stored", "lost", "daemon CPU (event loop)",
         "arrival ms p50/p99/max", "sent→fsynced ms p50/p99/max", "sealed rows", "keeps up"],
        rows,
    )  # fmt: skip


def _lag_table(runs: list[Run]) -> str:
    rows: list[list[object]] = []
    for run in runs:
        chain = "verified" if not run.ledger_problems else f"**{len(run.ledger_problems)} problems**"
        busy = " / ".join(f"{c:.0f} %" for c in run.cores)
        rows.append([
            run.calls, f"{run.hangup_rate:.0f}/s", f"{len(run.lag)} of {run.calls}", _fmt(run.lag_ms),
            f"{run.ledger_checked:,} entries, {chain}", f"{run.loadgen_cpu:.0f} %, {busy}",
        ])  # fmt: skip
    return table(
        ["calls", "hang-ups", "rows seen final", "metadata lag ms p50/p99/max", "shared ledger",
         "loadgen CPU, cores busy"],
        rows,
    )  # fmt: skip


def _notes(runs: list[Run]) -> list[str]:
    notes = []
    for run in runs:
        if run.never_final:
            after = f"{LAG_TIMEOUT_S:g} s after the last hang-up"
            notes.append(f"- N={run.calls}: {run.never_final} rows not final {after}")
        notes += [f"- N={run.calls}: ledger: {p}" for p in run.ledger_problems[:5]]
        for name, r in run.nodes.items():
            if r.unreadable_files or r.misordered_files or r.failures or r.completed_rows != r.established:
                notes.append(
                    f"- N={run.calls}, node {name}: {r.unreadable_files} unreadable, {r.misordered_files} "
                    f"misordered files; {r.completed_rows} sealed rows; "
                    f"generator failures {r.failures or 'none'}"
                )
    return notes


def _appends_table(appends: Appends) -> str:
    together = sum(appends.together.values())
    each = " + ".join(f"{v:.0f}" for v in appends.together.values())
    chain = "verified: one total order" if appends.ok else f"**not verified**: {appends.problems[:3]}"
    return table(
        ["processes", "appends/s", "chain after both phases"],
        [
            ["1", f"{appends.alone:.0f}", ""],
            ["2 at once", f"{together:.0f} ({each})",
             f"{appends.checked:,} entries, {appends.appended:,} expected; {chain}"],
        ],
    )  # fmt: skip


def report(runs: list[Run], appends: Appends | None, seconds: float, settle: float, where: str) -> str:
    best = max((run.calls for run in runs if run.keeps_up), default=0)
    out = (
        f"{where}\n\nSteady-state window {seconds:g} s per N, starting {settle:g} s after the last call was "
        f"set up; N/2 calls on each node.\n\n{_calls_table(runs)}\n\n"
        f"**Largest total N at zero loss on both nodes: {best}** (each node: zero lost frames, every call "
        "set up and streaming at 50 frames/s, its daemon's CPU < 95 % of a core, arrival and sent→fsynced "
        "p99 within concurrent_calls' limits; two daemons on one core: their sum < 95 %).\n\n"
        f"Metadata lag (hang-up → row final in the shared catalogue, polled every {POLL_S * 1e3:.0f} ms: "
        f"resolution one poll plus one query):\n\n{_lag_table(runs)}\n"
    )
    notes = _notes(runs)
    if notes:
        out += "\n" + "\n".join(notes) + "\n"
    if appends is not None:
        out += (
            "\nLedger appends under contention (`append_committed`: one committed transaction each, "
            f"queued on the chain's advisory lock; {appends.seconds:g} s per phase):\n\n"
            f"{_appends_table(appends)}\n"
        )
    return out


def _as_json(run: Run) -> dict[str, Any]:
    nodes = {k: r.__dict__ | {"lost": r.lost, "keeps_up": r.keeps_up} for k, r in run.nodes.items()}
    fields = ("calls", "never_final", "hangup_rate", "ledger_checked", "ledger_problems", "loadgen_cpu")
    return {k: getattr(run, k) for k in fields} | {
        "nodes": nodes,
        "lost": run.lost,
        "keeps_up": run.keeps_up,
        "lag_ms": run.lag_ms,
        "lag_seen": len(run.lag),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", default="200,500,1000", help="comma-separated total N (N/2 on each node)")
    p.add_argument("--seconds", type=float, default=30.0, help="steady-state window per N")
    p.add_argument(
        "--rate", type=float, default=200.0, help="calls set up (and hung up) per second, in total"
    )
    p.add_argument("--settle", type=float, default=SETTLE_S, help="seconds between set-up and window")
    p.add_argument("--ledger-seconds", type=float, default=10.0, help="per phase of the ledger contention")
    p.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    p.add_argument("--loop", default=os.environ.get("RECORDERD_EVENT_LOOP", "asyncio"),
                   choices=["asyncio", "uvloop"], help="the daemons' event loop")  # fmt: skip
    p.add_argument("--doc", default=str(DOC), help="where to write the figures ('-': nowhere)")
    p.add_argument("--section", default="two_nodes", help="the block of the doc to (re)write")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    add_arguments(p)
    p.add_argument("--note", default="", help="a line to put above the table (e.g. which tree ran)")
    args = p.parse_args(argv)
    if not args.database_url:
        args.postgres = True  # two nodes share a catalogue only on PostgreSQL
    load = loadavg()
    cores = layout()
    pin(cores[2])
    sys.setswitchinterval(0.0005)  # the media thread must not wait 5 ms for the GIL during set-up
    runs = []
    # After pin(): the PostgreSQL server started here inherits the load generator's cores.
    with tempfile.TemporaryDirectory(prefix="bench-two-", dir=args.dir) as tmp, catalogue(args) as db:
        where = describe(db, cores)
        print(where, flush=True)
        for n in (int(x) for x in args.calls.split(",")):
            run = run_one(n, args.seconds, args.rate, Path(tmp), args.loop, args.settle, db, cores)
            runs.append(run)
            per_node = ", ".join(
                f"{k}: lost {r.lost} of {r.generated}, CPU {r.daemon_cpu:.0f} %, keeps up {r.keeps_up}"
                for k, r in run.nodes.items()
            )
            print(
                f"N={n}: {per_node}; total lost {run.lost}, keeps up {run.keeps_up}; metadata lag "
                f"p50/p99/max {_fmt(run.lag_ms)} ms ({len(run.lag)} of {n} seen, {run.never_final} never); "
                f"ledger {run.ledger_checked} entries, problems {len(run.ledger_problems)}",
                flush=True,
            )
        appends = None
        if args.ledger_seconds > 0:
            appends = ledger_contention(db.fresh(), args.ledger_seconds, cores)
            print(
                f"ledger appends/s: 1 process {appends.alone:.0f}; 2 at once "
                f"{sum(appends.together.values()):.0f} ({appends.together}); chain {appends.checked} "
                f"entries for {appends.appended} appends, verified {appends.ok}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"runs": [_as_json(run) for run in runs], "appends": appends and asdict(appends)}))
    if args.doc != "-":
        text = (args.note + "\n\n" if args.note else "") + report(
            runs, appends, args.seconds, args.settle, where
        )
        write_section(Section(args.section, text, load), Path(args.doc))
    ok = all(not run.ledger_problems for run in runs) and (appends is None or appends.ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
