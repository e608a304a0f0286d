"""Keyset paging over real HTTP: the search's and the ledger's pages follow the last row seen (a call
recorded or an entry written between two pages does not shift the next one, as OFFSET would), the
filters stay on every page, and each page is ledgered with its anchor."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from storage import ledger
from storage.models import Call
from support.console_site import CONSOLE, start
from support.people import Site, make_site, person

T0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)


def _calls(site: Site, n: int, *, first: int = 0, day: dt.datetime = T0) -> list[str]:
    rows = [
        {"id": str(uuid.uuid4()), "direction": "inbound", "line": "general", "status": "completed",
         "remote_number": "0311112222", "local_number": "0668585050",
         # two calls per minute share a start: the id breaks the tie, across a page boundary too
         "started_at": day + dt.timedelta(minutes=(first + i) // 2)}
        for i in range(n)
    ]  # fmt: skip
    with site.sessions.begin() as s:
        s.execute(insert(Call), rows)
    return [r["id"] for r in rows]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Site, str]]:
    site = make_site(tmp_path, CONSOLE + "page_size = 10\n")
    people = site.people()
    boss = person(people, None, "boss", "manager", "boss-password-1", key=[site.identity])
    person(people, boss, "audit", "auditor", "audit-password-1")
    server, url, thread = start(site)
    try:
        yield site, url
    finally:
        server.stop()
        thread.join(10)


def _client(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    form = {"csrf": token[1], "person_id": "audit", "password": "audit-password-1"}
    assert client.post("/signin", data=form).status_code == 303
    return client


def _ids(page: str) -> list[str]:
    return re.findall(r'class="call-link" href="/calls/([0-9a-f-]{36})"', page)


def _link(page: str, which: str) -> str | None:
    found = re.search(rf'href="([^"]+)" id="{which}"', page)
    return found[1].replace("&amp;", "&") if found else None


def test_search_pages_follow_the_last_call_seen(site: tuple[Site, str]) -> None:
    s, url = site
    ids = _calls(s, 25)
    newest_first = [
        c for _m, c in sorted(((i // 2, c) for i, c in enumerate(ids)), key=lambda x: (-x[0], x[1]))
    ]
    client = _client(url)
    first = client.get(
        "/calls", params={"go": "1", "from": "2026-11-02", "to": "2026-11-02", "line": "general"}
    )
    assert first.status_code == 200
    page1 = _ids(first.text)
    assert newest_first[:10] == page1
    assert _link(first.text, "prev-page") is None
    nxt = _link(first.text, "next-page")
    assert nxt and "after=" in nxt and "line=general" in nxt and "from=2026-11-02" in nxt
    _calls(s, 3, first=100)  # newer calls arrive between the two pages: OFFSET would repeat rows
    second = client.get(nxt)
    assert newest_first[10:20] == _ids(second.text)
    last = client.get(_link(second.text, "next-page") or "")
    assert newest_first[20:] == _ids(last.text)
    assert _link(last.text, "next-page") is None
    back = client.get(_link(last.text, "prev-page") or "")  # back from the last page: page 2 again
    assert newest_first[10:20] == _ids(back.text)
    assert "line=general" in (_link(back.text, "prev-page") or "")
    with s.sessions() as db:
        searched = [e for e in ledger.entries(db) if e.kind == "searched"]
    assert searched[1].detail["after"]["call"] == page1[-1] and searched[1].detail["line"] == "general"


def test_a_forged_anchor_is_a_clear_error(site: tuple[Site, str]) -> None:
    _s, url = site
    r = _client(url).get("/calls", params={"go": "1", "after": "yesterday~x"})
    assert r.status_code == 400 and "yesterday" in r.text


def _seqs(page: str) -> list[int]:
    return [int(s) for s in re.findall(r"<tr><td>(\d+)</td>", page)]


def test_ledger_pages_keep_their_filters_and_follow_the_last_entry(site: tuple[Site, str]) -> None:
    s, url = site
    for i in range(90):  # the entries looked for, between others
        ledger.append_committed(s.sessions, "searched", "clerk", detail={"n": i})
        ledger.append_committed(s.sessions, "viewed", "clerk", detail={"what": "call"})
    with s.sessions() as db:
        wanted = [e.seq for e in ledger.entries(db, kinds=["searched"], newest_first=True)]
    client = _client(url)
    first = client.get("/ledger", params={"kind": "searched"})
    assert first.status_code == 200
    assert _seqs(first.text) == wanted[:40]  # a page is 4 × page_size, newest first
    assert _link(first.text, "newer-page") is None
    older = _link(first.text, "older-page")
    assert older and "kind=searched" in older and f"before={wanted[39]}" in older
    for i in range(5):  # written meanwhile: the older page must not shift
        ledger.append_committed(s.sessions, "searched", "clerk", detail={"n": 100 + i})
    second = client.get(older)
    assert _seqs(second.text) == wanted[40:80]
    third = client.get(_link(second.text, "older-page") or "")
    assert _seqs(third.text) == wanted[80:] and _link(third.text, "older-page") is None
    back = client.get(_link(second.text, "newer-page") or "")
    assert _seqs(back.text) == wanted[:40] and "kind=searched" in (_link(back.text, "newer-page") or "")
    with s.sessions() as db:
        views = [
            e.detail for e in ledger.entries(db, kinds=["viewed"]) if e.detail.get("kinds") == ["searched"]
        ]
    assert [v.get("before") for v in views] == [None, wanted[39], wanted[79], None]  # each page ledgered
    assert views[-1]["after"] == wanted[40]
