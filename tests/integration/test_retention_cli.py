"""recorderctl retention / holds / calls preserve|delete on real files and a real SQLite catalogue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from recorderd.cli.ctl import main as ctl
from recorderd.config import Config, load_config
from storage import retention_log
from storage.models import Preservation
from support.people import FAST, staff
from support.retention_seed import Seeded, config_text, row, seed, sessions_for

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")

RETENTION = """
[retention]
default = "short"
[retention.policies.short]
keep = {{ days = 10 }}
basis = "第5条"
[retention.policies.external]
keep = {{ years = 5 }}
anchor = "preservation"
[retention.preservation]
dir = "{root}/medium"
policy = "external"
medium = "USB-01"
"""
LINE = '[[lines]]\nname = "general"\nnumbers = ["06-6858-5050"]\n'
NOW = dt.datetime.now(dt.UTC)
ASKED = ("--requester", "山田花子", "--contact", "06-1234-5678")  # who asked (Osaka form 2)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Config, list[Seeded]]:
    path = tmp_path / "recorderd.toml"
    path.write_text(config_text(tmp_path, RETENTION.format(root=tmp_path) + FAST, LINE))
    (tmp_path / "medium").mkdir()
    config = load_config(path)
    calls = seed(config, sessions_for(config), [(NOW - dt.timedelta(days=d), "general") for d in (2, 3, 40)])
    STAFF.update(
        staff(config, tmp_path, {"kacho": "manager", "clerk": "operations_manager", "aud": "auditor"})
    )
    return path, config, calls


STAFF: dict[str, list[str]] = {}


def run(cfg: Path, *args: str, by: str = "kacho") -> int:
    """recorderctl, signed in as ``by`` (a manager unless said otherwise)."""
    return ctl(["--config", str(cfg), *args, *STAFF[by]])


def day(ts: dt.datetime, config: Config) -> str:
    """The Tokyo date of ``ts``, as the CLI reads dates (never the UTC date)."""
    return f"{ts.astimezone(config.zone):%Y-%m-%d}"


def test_a_deletion_request_is_refused_while_held_and_shows_the_hold(
    site: tuple[Path, Config, list[Seeded]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, config, (call, *_rest) = site
    assert (
        run(
            cfg,
            "holds",
            "add",
            call.id[:8],
            "--kind",
            "harassment",
            "--ref",
            "H-2026-3",
            "--reason",
            "不当要求行為",
        )
        == 0
    )
    assert "hold #1 on call" in capsys.readouterr().out
    assert (
        run(cfg, "calls", "delete", call.id, "--request", "DEL-9", "--reason", "本人申出", *ASKED, by="clerk")
        == 1
    )
    err = capsys.readouterr().err
    assert "REFUSED" in err and "harassment H-2026-3" in err and "不当要求行為" in err and "kacho" in err
    assert call.path.exists()

    assert run(cfg, "holds", "release", "--ref", "H-2026-3", "--reason", "解決") == 0
    assert (
        run(cfg, "calls", "delete", call.id, "--request", "DEL-9", "--reason", "本人申出", *ASKED, by="clerk")
        == 0
    )
    assert "audio deleted on request DEL-9" in capsys.readouterr().out
    r = row(sessions_for(config), call.id)
    assert (
        not call.path.exists() and r is not None and r.audio_path is None and r.audio_deleted_at is not None
    )
    with sessions_for(config)() as s:
        entries = retention_log.entries(s, call_id=call.id)
    assert [e.action for e in entries] == ["hold", "request_refused", "release", "request_delete"]
    assert (entries[-1].actor, entries[-1].reference, entries[-1].rule) == (
        "clerk",
        "DEL-9",
        "deletion request DEL-9",
    )
    assert json.loads(entries[-1].detail)["reason"] == "本人申出"
    assert json.loads(entries[-1].detail)["requester"] == {
        "name": "山田花子",
        "contact": "06-1234-5678",
        "relation": "本人",
    }
    assert json.loads(entries[1].detail)["requester"]["name"] == "山田花子"  # the refusal names them too
    # Nothing left to delete: refused, and said why.
    assert run(cfg, "calls", "delete", call.id, "--request", "DEL-10", "--reason", "再申出", *ASKED) == 1

    # The report of the Tokyo day the deletion was logged on (never the UTC day; and never the day
    # this module was imported: under faketime at 23:59 Tokyo the date turns during the run).
    deleted_on = day(entries[-1].at, config)
    assert run(cfg, "retention", "report", "--from", deleted_on, "--to", deleted_on) == 0
    out = capsys.readouterr().out
    assert "request_delete" in out and "deletion request DEL-9" in out and "hold" not in out.split("\n")[1]


def test_holds_by_number_and_dates_list_and_release(
    site: tuple[Path, Config, list[Seeded]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, config, calls = site
    start = (NOW - dt.timedelta(days=5)).astimezone(config.zone)
    assert (
        run(
            cfg,
            "holds",
            "add",
            "--number",
            "+81-3-1111-2222",
            "--from",
            f"{start:%Y-%m-%d}",
            "--to",
            f"{NOW.astimezone(config.zone):%Y-%m-%d}",
            "--kind",
            "disclosure",
            "--ref",
            "開示R8-12",
            "--reason",
            "本人開示請求",
        )
        == 0
    )
    assert capsys.readouterr().out.count("hold #") == 2  # the two recent calls, not the 40-day-old one
    assert run(cfg, "holds", "list") == 0
    listed = capsys.readouterr().out
    assert listed.count("disclosure") == 2 and calls[2].id[:8] not in listed
    assert run(cfg, "holds", "release", "1", "--reason", "開示済み") == 0
    assert run(cfg, "holds", "release", "1", "--reason", "again") == 2  # already released
    assert "already released" in capsys.readouterr().err
    assert run(cfg, "holds", "list", "--all", "--ref", "開示R8-12") == 0
    assert "released" in capsys.readouterr().out
    assert run(cfg, "holds", "add", "nonexistent", "--kind", "disclosure", "--ref", "x", "--reason", "y") == 2


def test_preserve_copies_the_ciphertext_with_a_catalogue_and_its_own_retention(
    site: tuple[Path, Config, list[Seeded]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, config, (call, *_rest) = site
    before = row(sessions_for(config), call.id)
    assert before is not None
    own = (before.retention_policy, before.expires_at, before.move_at)
    assert (
        run(
            cfg,
            "calls",
            "preserve",
            call.id[:8],
            "--reason",
            "解決しない対応事案",
            "--ref",
            "外部保存-1",
        )
        == 0
    )
    out = capsys.readouterr().out
    copy = config.retention.preservation.dir / f"{call.id}.age"  # type: ignore[union-attr]
    assert copy.read_bytes() == call.path.read_bytes() and "USB-01" in out
    with sessions_for(config)() as s:
        [entry] = s.query(Preservation).all()
    assert (entry.medium, entry.sha256, entry.preserved_by, entry.reference) == (
        "USB-01",
        call.sha256,
        "kacho",
        "外部保存-1",
    )
    five_years = entry.expires_at - entry.preserved_at
    assert dt.timedelta(days=5 * 365) < five_years <= dt.timedelta(days=5 * 366 + 1)
    # The copy has its own clock; the call's own audio keeps its own retention (issue 11).
    r = row(sessions_for(config), call.id)
    assert r is not None and (r.retention_policy, r.expires_at, r.move_at) == own
    assert r.preserved_at == entry.preserved_at
    catalogue = (copy.parent / "CATALOGUE.tsv").read_text().splitlines()
    assert (
        catalogue[0].startswith("entry\tmedium")
        and call.id in catalogue[1]
        and "0311112222" not in catalogue[1]
    )
    # Twice on one medium is refused; a deletion request is refused while preserved.
    assert run(cfg, "calls", "preserve", call.id, "--reason", "again") == 2
    assert run(cfg, "calls", "delete", call.id, "--request", "D-1", "--reason", "申出", *ASKED) == 1
    assert "preserved: entry 1 on USB-01" in capsys.readouterr().err
    assert run(cfg, "retention", "catalogue") == 0
    assert "USB-01" in capsys.readouterr().out
    # The plan shows the copy with its own period, counted from the preservation, not the recording.
    far = (entry.expires_at + dt.timedelta(days=2)).astimezone(config.zone)
    assert run(cfg, "retention", "plan", "--until", f"{far:%Y-%m-%d}") == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if "destroy copy" in x]
    assert line.startswith(f"{entry.expires_at.astimezone(config.zone):%Y-%m-%d}") and "medium USB-01" in line
    assert "5 years from the preservation, its day not counted" in line, line


def test_plan_says_what_goes_when_and_why(
    site: tuple[Path, Config, list[Seeded]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, config, calls = site
    assert (
        run(
            cfg,
            "holds",
            "add",
            calls[2].id,
            "--kind",
            "manager_order",
            "--ref",
            "市長-1",
            "--reason",
            "特に必要",
        )
        == 0
    )
    capsys.readouterr()
    until = (NOW + dt.timedelta(days=10)).astimezone(config.zone)
    assert run(cfg, "retention", "plan", "--until", f"{until:%Y-%m-%d}", "--calls") == 0
    out = capsys.readouterr().out
    rule = "policy short: 10 days from the recording, its day not counted (民法第140条) (第5条)"
    # 民法第140条: day 1 is the day after the call, day 10 the call's day + 10; due at 00:00 the next day.
    due_days = {
        (c_start + dt.timedelta(days=11)).astimezone(config.zone).strftime("%Y-%m-%d")
        for c_start in (NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=3))
    }
    for day in due_days:
        assert any(line.startswith(day) and "delete" in line and rule in line for line in out.splitlines()), (
            out
        )
    assert "kept by holds although due: 1 call(s)" in out and "市長-1" in out
    assert calls[0].id[:8] in out


def test_confirm_clock_is_recorded(site: tuple[Path, Config, list[Seeded]]) -> None:
    cfg, config, _calls = site
    assert run(cfg, "retention", "confirm-clock") == 0
    with sessions_for(config)() as s:
        assert retention_log.get_time(s, "clock_confirmed_at") is not None
        [entry] = retention_log.entries(s, actions=["clock_confirmed"])
    assert entry.actor == "kacho"  # the signed-in person, never a name typed on the command line
