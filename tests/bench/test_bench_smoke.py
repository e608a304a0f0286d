"""A tiny run of every benchmark (seconds, not minutes), so they keep working. Not performance tests:
the assertions are about sane output (frames counted and all stored, sections written), never
about timings, which depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import concurrent_calls, encryption, hot_path, reaper_pass, startup, two_nodes
from bench.common import Section, percentile, write_section
from bench.profile_summary import summarise
from support.postgres import require_postgres

pytestmark = pytest.mark.slow


def test_concurrent_calls_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--calls", "4,8", "--seconds", "1", "--settle", "1", "--rate", "50", "--doc", str(doc), "--json"]
    assert concurrent_calls.main(args) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["calls"] for r in results] == [4, 8]
    for r in results:
        assert r["established"] == r["calls"] == r["completed_rows"]
        assert r["generated"] > 50 * r["calls"]  # every call streamed for > 1 s
        assert r["stored"] == r["generated"] and r["lost"] == 0
        assert r["misordered_files"] == r["unreadable_files"] == 0
        assert 0 < r["rss"] < 2048 and r["daemon_cpu"] >= 0
    text = doc.read_text()
    assert "<!-- bench:concurrent_calls:start -->" in text and "Largest N that keeps up" in text


def test_hot_path_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--calls", "20", "--rounds", "14", "--repeat", "1", "--mode", "none,timeline,timeline-late"]
    assert hot_path.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["none", "timeline", "timeline-late"]
    assert all("µs CPU per frame" in line for line in lines)
    assert "prompt reads 0" in lines[1]  # audio flowing: the timeline never reads promptly
    assert "prompt reads 0" not in lines[2]  # pauses: it does


def test_encryption_smoke(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    assert (
        encryption.main(["--hours", "0.005", "--repeat", "1", "--dir", str(tmp_path), "--doc", str(doc)]) == 0
    )
    text = doc.read_text()
    assert "vault / raw" in text and "ChaCha20-Poly1305" in text
    assert not [p for p in tmp_path.iterdir() if p != doc]  # its files are cleaned up


def test_startup_smoke(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    assert startup.main(["--runs", "1", "--calls", "3", "--seconds", "1", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "to READY" in text and "Per active call" in text and "0 frames lost" in text


def test_reaper_pass_smoke(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--calls", "400", "--due", "0.25", "--live", "3", "--baseline", "1", "--settle", "1"]
    assert reaper_pass.main([*args, "--dir", str(tmp_path), "--doc", str(doc)]) == 0  # 1: a check failed
    text = doc.read_text()
    assert "| 400 | 100 | 100 |" in text and "**0 lost**" in text
    assert (
        "rows deleted: 100, log entries: 100, ledger entries: 100, due files left: 0, ledger problems: 0"
        in text
    )


def test_doc_sections_are_replaced_not_appended(tmp_path: Path) -> None:
    doc = tmp_path / "P.md"
    doc.write_text("# Performance\n\nprose stays\n")
    write_section(Section("x", "first", "0.00 0.00 0.00"), doc)
    write_section(Section("y", "other", "0.00 0.00 0.00"), doc)
    write_section(Section("x", "second", "0.00 0.00 0.00"), doc)
    text = doc.read_text()
    assert "prose stays" in text and "second" in text and "other" in text and "first" not in text
    assert text.index("bench:x:start") < text.index("bench:y:start")


def test_helpers(tmp_path: Path) -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(100)], 99) == 98.0
    stacks = tmp_path / "p.txt"
    stacks.write_text(
        "thread (1): MainThread;main (a.py:1);recv (b.py:2) 3\nthread (1): MainThread;main (a.py:1) 1\n"
    )
    out = summarise(stacks)
    assert "75.0 %  recv (b.py)" in out and "100.0 %  main (a.py)" in out


def test_console_search_smoke(tmp_path: Path) -> None:
    from bench import console_search

    doc = tmp_path / "PERFORMANCE.md"
    assert (
        console_search.main(["--calls", "3000", "--repeat", "3", "--dir", str(tmp_path), "--doc", str(doc)])
        == 0
    )
    text = doc.read_text()
    assert "| a number (full-width, hyphens) | 1 |" in text and "MULTI-INDEX OR" in text


@pytest.mark.skipif(not Path("/usr/bin/chromedriver").exists(), reason="needs chromium and chromium-driver")
def test_console_play_smoke(tmp_path: Path) -> None:
    from bench import console_play

    doc = tmp_path / "PERFORMANCE.md"
    assert (
        console_play.main(["--minutes", "0.2", "--sessions", "2", "--dir", str(tmp_path), "--doc", str(doc)])
        == 0
    )
    text = doc.read_text()
    assert "decoded 96,000 of 96,000 samples, integrity matches" in text


def test_concurrent_calls_on_postgres_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_postgres()
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--calls", "4", "--seconds", "1", "--settle", "1", "--rate", "50", "--doc", str(doc), "--json"]
    assert concurrent_calls.main([*args, "--postgres"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "PostgreSQL" in out[0] and "N=4 on postgresql: lost 0 of" in "\n".join(out)
    [r] = json.loads(out[-1])
    assert r["backend"] == "postgresql"
    assert r["established"] == r["calls"] == r["completed_rows"] == 4  # sealed rows read from PostgreSQL
    assert r["stored"] == r["generated"] > 0 and r["lost"] == 0
    text = doc.read_text()
    assert "<!-- bench:concurrent_calls_postgresql:start -->" in text and "Catalogue: **PostgreSQL" in text
    assert "bench:concurrent_calls:start" not in text  # the SQLite figures are not overwritten


def test_two_nodes_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_postgres()
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--calls", "4", "--seconds", "1", "--settle", "1", "--rate", "50", "--ledger-seconds", "0.5"]
    assert two_nodes.main([*args, "--doc", str(doc), "--json"]) == 0  # 1: a ledger check failed
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    [run] = result["runs"]
    assert set(run["nodes"]) == {"a", "b"}
    for r in run["nodes"].values():  # each node's recordings decrypted and counted, its rows sealed
        assert r["established"] == r["calls"] == r["completed_rows"] == 2
        assert r["stored"] == r["generated"] > 50 * 2 and r["lost"] == 0
        assert r["misordered_files"] == r["unreadable_files"] == 0
    # every row seen final in the shared catalogue, after its hang-up
    assert run["lag_seen"] == 4 and run["never_final"] == 0
    p50, p99, most = run["lag_ms"]
    assert 0 < p50 <= p99 <= most < 60_000
    # the shared chain holds both daemons' entries (created + finalised per call, config_loaded) and verifies
    assert run["ledger_problems"] == [] and run["ledger_checked"] >= 2 * 4
    appends = result["appends"]
    assert appends["alone"] > 0 and len(appends["together"]) == 2 and all(appends["together"].values())
    assert appends["problems"] == [] and appends["checked"] == appends["appended"] > 2
    text = doc.read_text()
    assert "<!-- bench:two_nodes:start -->" in text and "Largest total N at zero loss on both nodes" in text
    assert "metadata lag ms p50/p99/max" in text and "verified: one total order" in text


def test_reaper_pass_on_postgres_smoke(tmp_path: Path) -> None:
    require_postgres()
    doc = tmp_path / "PERFORMANCE.md"
    args = [
        "--calls",
        "400",
        "--due",
        "0.25",
        "--live",
        "3",
        "--baseline",
        "1",
        "--settle",
        "1",
        "--postgres",
    ]
    assert reaper_pass.main([*args, "--dir", str(tmp_path), "--doc", str(doc)]) == 0  # 1: a check failed
    text = doc.read_text()
    assert "<!-- bench:reaper_pass_postgresql:start -->" in text and "Catalogue: **PostgreSQL" in text
    assert "| 400 | 100 | 100 |" in text and "**0 lost**" in text
    assert (
        "rows deleted: 100, log entries: 100, ledger entries: 100, due files left: 0, ledger problems: 0"
        in text
    )
