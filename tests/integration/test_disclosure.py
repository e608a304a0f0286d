"""A disclosure request end to end: find the caller's calls, hold them (issue 3's holds), play one to
the requester, close; and every retention event (hold, release, refusal, deletion) lands in the ledger."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import pytest

from recorderd.cli.ctl import main as ctl_main
from storage import holds, ledger
from support.people import T0, make_site, person, seed_call

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")


def test_disclosure_holds_and_the_retention_side_is_ledgered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path)
    mine = [seed_call(site, started=T0 + dt.timedelta(days=d), remote="0311112222")[0] for d in (0, 3)]
    seed_call(site, started=T0 + dt.timedelta(days=1), remote="0399998888")  # someone else's call
    seed_call(site, started=T0 + dt.timedelta(days=40), remote="0311112222")  # outside the dates asked
    person(site.people(), None, "kanri", "manager", "kanri-password", key=[site.identity])
    monkeypatch.setenv("RECORDERD_PASSWORD", "kanri-password")

    def ctl(command: str) -> int:
        return ctl_main([*site.args(), *shlex.split(command)])

    assert (
        ctl(
            "disclosure open --as kanri --number +81-3-1111-2222 --from 2026-11-22 --to 2026-11-30 "
            "--requester 山田太郎 --id-document 運転免許証 --id-number 123456781234 "
            "--matched-with 通話日時の申告"
        )
        == 0
    )
    request, *held_lines = capsys.readouterr().out.split("\n")
    assert sorted(line.split()[-1] for line in held_lines if line) == sorted(mine)
    with site.sessions() as s:
        assert sorted(h.call_id for h in holds.active(s, mine)) == sorted(mine)
        opened = ledger.entries(s, subject=request)
    assert [e.kind for e in opened] == ["disclosure_opened", "held", "held"]
    # Kawasaki 第10条: the document, its number (last 4 only) and who checked; not free text.
    assert opened[0].detail["identity_check"] == {
        "document": "運転免許証",
        "number_last4": "1234",
        "matched_with": ["通話日時の申告"],
        "checked_by": "kanri",
    }
    bad = "disclosure open --as kanri --number 0311112222 --from 2026-11-22 --to 2026-11-30 --requester 山田"
    assert ctl(f"{bad} --id-document 運転免許証 --id-number x") == 2  # no number checked: refused

    # The requester hears it: a copy to play at the counter, with the request as its purpose.
    assert ctl(f"play {mine[0]} --as kanri --purpose '開示請求 {request}' --out {tmp_path / 'd.wav'}") == 0
    # A deletion request while the disclosure hold stands is refused (Osaka 6-3), and ledgered.
    asked = "--requester 山田太郎 --contact 03-1111-2222"  # who asked (Osaka form 2)
    assert ctl(f"calls delete {mine[0]} --request DEL-1 --reason 申出 {asked} --as kanri") == 1
    assert ctl(f"disclosure close {request} --as kanri --outcome disclosed --note 窓口で再生") == 0
    assert ctl(f"calls delete {mine[0]} --request DEL-2 --reason 申出 {asked} --as kanri") == 0
    capsys.readouterr()
    assert ctl("disclosure list --as kanri") == 0
    assert "closed: disclosed" in capsys.readouterr().out

    with site.sessions() as s:
        assert holds.active(s, mine) == []
        story = [(e.kind, e.subject) for e in ledger.entries(s, call_ids=[mine[0]])]
        assert ledger.verify(s).ok
    assert story == [
        ("held", request),
        ("copied", None),
        ("deletion_refused", "DEL-1"),
        ("hold_released", request),
        ("deleted", "DEL-2"),
    ]
