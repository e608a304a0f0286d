"""The console over real HTTP on loopback, without a browser: sign-in, sessions, CSRF, the play door,
the headers. (tests/console/test_browser.py drives the same pages in Chromium.)"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx

from recorderd.console.sessions import SessionStore
from storage import ledger
from storage.holds import listing
from support.console_site import CONSOLE, Running, start
from support.people import make_site, person, seed_call


def signed_in(c: Running, pid: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=c.url, follow_redirects=False, timeout=10)
    page = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    r = client.post("/signin", data={"csrf": token[1], "person_id": pid, "password": password})
    assert r.status_code == 303, r.text
    return client


def csrf_of(client: httpx.Client, call: str) -> str:
    page = client.get(f"/calls/{call}")
    assert page.status_code == 200
    found = re.search(r'data-csrf="([^"]+)"', page.text) or re.search(
        r'name="csrf" value="([^"]+)"', page.text
    )
    assert found
    return found[1]


def entries(c: Running) -> list[ledger.Entry]:
    with c.site.sessions() as s:
        return ledger.entries(s)


def test_headers_and_cookie(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    cookie = next(h for h in client.cookies.jar if h.name == "recorderd_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    raw = client.get("/signin").headers
    csp = raw["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "http" not in csp
    page = client.get(f"/calls/{console.call}").text
    assert "<script>" not in page and '<script src="/static/console.js"' in page


def test_password_is_not_kept(console: Running) -> None:
    signed_in(console, "boss", "boss-password-1")
    store = console.server.app.state.console.store
    for ws in store._sessions.values():
        assert "boss-password-1" not in repr(vars(ws))


def test_wrong_password_is_ledgered(console: Running) -> None:
    client = httpx.Client(base_url=console.url, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    r = client.post("/signin", data={"csrf": token[1], "person_id": "boss", "password": "nope"})
    assert r.status_code == 403
    last = entries(console)[-1]
    assert (last.kind, last.detail["reason"]) == ("login_failed", "wrong_password")


def test_search_with_full_width_number_is_ledgered(console: Running) -> None:
    client = signed_in(console, "audit", "audit-password-1")
    r = client.get("/calls", params={"go": "1", "number": "０３－１１１１－２２２２"})
    assert r.status_code == 200
    assert r.text.count('class="call-link"') == 1 and console.call in r.text
    last = entries(console)[-1]
    assert (last.kind, last.actor, last.detail["number"]) == ("searched", "audit", "0311112222")


def test_role_without_play_gets_no_ciphertext(console: Running) -> None:
    client = signed_in(console, "audit", "audit-password-1")
    token = csrf_of(client, console.call)
    r = client.post(f"/calls/{console.call}/play", data={"purpose": "確認"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and "ticket" not in r.text and "key_copy" not in r.text
    last = entries(console)[-1]
    assert (last.kind, last.detail["operation"]) == ("access_denied", "calls.play_sealed")


def test_ledger_entry_before_the_first_ciphertext_byte(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    token = csrf_of(client, console.call)
    grant = client.post(
        f"/calls/{console.call}/play", data={"purpose": "苦情確認"}, headers={"X-CSRF-Token": token}
    )
    assert grant.status_code == 200
    body = grant.json()
    played = [e for e in entries(console) if e.kind == "played"]
    assert [(e.call_id, e.detail["to"], e.detail["purpose"]) for e in played] == [
        (console.call, "browser", "苦情確認")
    ]
    assert played[0].seq == body["entry"]
    with client.stream("GET", f"/sealed/{body['ticket']}") as r:
        first = next(r.iter_bytes())
        assert first.startswith(b"age-encryption.org/v1\n")  # ciphertext, never audio
    again = client.get(f"/sealed/{body['ticket']}")
    assert again.status_code == 403  # a ticket is good once


def test_no_csrf_token_changes_nothing(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    before = len(entries(console))
    r = client.post(
        f"/calls/{console.call}/hold", data={"kind": "harassment", "reference": "H-1", "reason": "x"}
    )
    assert r.status_code == 403
    r = client.post(f"/calls/{console.call}/play", data={"purpose": "確認"})
    assert r.status_code == 403
    with console.site.sessions() as s:
        assert listing(s, call_id=console.call) == []
    assert len(entries(console)) == before
    token = csrf_of(client, console.call)
    r = client.post(
        f"/calls/{console.call}/hold",
        data={"csrf": token, "kind": "harassment", "reference": "H-1", "reason": "x"},
    )
    assert r.status_code == 303
    with console.site.sessions() as s:
        assert [h.reference for h in listing(s, call_id=console.call)] == ["H-1"]


def test_signed_out_and_disabled(console: Running) -> None:
    anonymous = httpx.Client(base_url=console.url, timeout=10)
    assert anonymous.get("/calls").status_code == 303
    client = signed_in(console, "audit", "audit-password-1")
    assert client.get("/calls").status_code == 200
    console.site.people().disable(console.manager, "audit")
    assert client.get("/calls").status_code == 303  # the session ends with the account


def test_english_on_request(console: Running) -> None:
    client = httpx.Client(base_url=console.url, timeout=10)
    assert "サインイン" in client.get("/signin").text  # Japanese by default
    client.get("/language", params={"to": "en"})
    page = client.get("/signin").text
    assert "Sign in" in page and 'lang="en"' in page


def test_forced_password_change(console: Running) -> None:
    people = console.site.people()
    people.add(console.manager, "newbie", "新人", "auditor", "chosen-by-admin-1")
    client = httpx.Client(base_url=console.url, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    r = client.post(
        "/signin", data={"csrf": token[1], "person_id": "newbie", "password": "chosen-by-admin-1"}
    )
    assert 'action="/password"' in r.text and "recorderd_session" not in client.cookies
    token = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert token
    form = {"csrf": token[1], "person_id": "newbie", "password": "chosen-by-admin-1"}
    r = client.post(
        "/password", data=form | {"new_password": "my-own-pw-22", "new_password_again": "my-own-pw-22"}
    )
    assert r.status_code == 200
    people.authenticate("newbie", "my-own-pw-22", action="test")  # the new password works


def test_idle_and_absolute_timeouts() -> None:
    now = [0.0]
    store = SessionStore(idle_s=60, absolute_s=300, monotonic=lambda: now[0])
    ws = store.open("boss", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    now[0] = 59
    assert store.get(ws.token) is ws
    now[0] = 120
    assert store.get(ws.token) is None  # idle for 61 s
    ws = store.open("boss", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    for t in range(150, 450, 50):
        now[0] = t
        assert (store.get(ws.token) is ws) == (t - 120 <= 300)


def test_saitama_shows_no_raw_playback(tmp_path: Path) -> None:
    roles = (
        '[people.roles]\nmanager = ["manage_users", "search", "hold"]\n'
        'operations_manager = ["manage_users", "search", "instruct", "hold", "delete", "audit"]\n'
        'contractor = ["export"]\nhandler = []\nauditor = ["search", "audit"]\n'
    )
    site = make_site(tmp_path, CONSOLE + roles)
    call, _pcm = seed_call(site)
    person(site.people(), None, "boss", "manager", "boss-password-1")
    server, url, thread = start(site)
    try:
        boss = site.people().authenticate("boss", "boss-password-1", action="test")
        c = Running(site, server, url, call, b"", boss, boss)
        client = signed_in(c, "boss", "boss-password-1")
        page = client.get(f"/calls/{call}").text
        assert 'id="no-raw-play"' in page and 'id="play-form"' not in page
        r = client.post(f"/calls/{call}/play", data={"csrf": csrf_of(client, call), "purpose": "x"})
        assert r.status_code == 403 and "export" in r.json()["error"]
    finally:
        server.stop()
        thread.join(10)


def test_language_switch_is_no_open_redirect(console: Running) -> None:
    client = httpx.Client(base_url=console.url, timeout=10)
    for referer in ("https://evil.example/x", "//evil.example/x", f"{console.url}//evil.example"):
        r = client.get("/language", params={"to": "en"}, headers={"referer": referer})
        assert r.headers["location"] == "/", referer
    r = client.get("/language", params={"to": "ja"}, headers={"referer": f"{console.url}/calls?go=1"})
    assert r.headers["location"] == "/calls?go=1"
