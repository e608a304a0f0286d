"""The auditor's and administrator's pages over real HTTP: the ledger with its verification state, the
status page, accounts, releasing a hold. The service layer decides; refusals are 403 and ledgered."""

from __future__ import annotations

import re

import httpx
from webconsole.test_http import csrf_of, entries, signed_in

from storage import ledger
from storage.holds import listing
from support.console_site import Running


def test_ledger_page_verifies_and_filters(console: Running) -> None:
    client = signed_in(console, "audit", "audit-password-1")
    page = client.get("/ledger", params={"verify": "1"})
    assert page.status_code == 200
    assert 'id="verify-result" class="ok"' in page.text and 'id="nav-ledger"' in page.text
    only = client.get("/ledger", params={"kind": "login_failed"}).text
    body = only.split('<table id="ledger">', 1)[1]
    assert "user_added" not in body  # filtered by kind
    assert any(e.detail.get("what") == "ledger verification" for e in entries(console))


def test_ledger_page_refused_without_audit(console: Running) -> None:
    people = console.site.people()
    people.add(console.manager, "clerk", "窓口", "handler", "first-clerk-pw-1", key=[console.site.identity])
    people.change_password("clerk", "first-clerk-pw-1", "clerk-password-1")
    client = signed_in(console, "clerk", "clerk-password-1")
    assert 'id="nav-ledger"' not in client.get("/calls").text
    assert client.get("/ledger").status_code == 403
    last = entries(console)[-1]
    assert (last.kind, last.detail["operation"]) == ("access_denied", "ledger.show")


def test_status_page_refreshes_itself(console: Running) -> None:
    client = signed_in(console, "audit", "audit-password-1")
    page = client.get("/status").text
    assert '<meta http-equiv="refresh" content="10">' in page
    assert 'id="daemon-state" class="bad"' in page  # no daemon ran on this installation


def test_accounts_add_and_disable(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    assert "audit" in client.get("/users").text
    token = csrf_of(client, console.call)
    form = {"csrf": token, "person_id": "newclerk", "name": "新窓口", "role": "handler",
            "password": "first-pass-123", "my_password": "boss-password-1"}  # fmt: skip
    assert client.post("/users/new/add", data=form).status_code == 303
    assert console.site.people().keyring.has("newclerk")  # copied from the boss's own key copy
    assert client.post("/users/newclerk/disable", data={"csrf": token}).status_code == 303
    person = console.site.people().get("newclerk")
    assert person is not None and person.disabled_at is not None
    auditor = signed_in(console, "audit", "audit-password-1")
    assert auditor.get("/users").status_code == 403


def test_release_a_hold(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    token = csrf_of(client, console.call)
    client.post(f"/calls/{console.call}/hold", data={"csrf": token, "kind": "disclosure", "reference": "R-1",
                                                      "reason": "開示請求"})  # fmt: skip
    page = client.get(f"/calls/{console.call}").text
    hold = re.search(r'name="hold" value="(\d+)"', page)
    assert hold
    r = client.post(f"/calls/{console.call}/release", data={"csrf": token, "hold": hold[1], "reason": "終結"})
    assert r.status_code == 303
    with console.site.sessions() as s:
        assert listing(s, call_id=console.call) == []
        kinds = [e.kind for e in ledger.entries(s, call_ids=[console.call])]
    assert "hold_released" in kinds or any("release" in k for k in kinds), kinds


def test_anonymous_sees_no_admin_page(console: Running) -> None:
    anonymous = httpx.Client(base_url=console.url, timeout=10)
    for path in ("/ledger", "/status", "/users"):
        assert anonymous.get(path).status_code == 303
