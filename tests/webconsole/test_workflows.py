"""The regulations' workflows through the console over real HTTP: disclosure requests, export
instructions and their follow-ups, deletion on request, forms as PDF. The service layer acts and
ledgers; these tests check that the console's forms reach it, with their CSRF token, and no further."""

from __future__ import annotations

import re

from webconsole.test_http import csrf_of, entries, signed_in

from storage import ledger
from support.console_site import Running
from support.people import seed_call


def test_disclosure_request_opened_and_closed(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    token = csrf_of(client, console.call)
    form = {"csrf": token, "number": "03-1111-2222", "from": "2026-11-22", "to": "2026-11-22",
            "requester": "山田太郎", "contact": "090-0000-0000", "id_document": "運転免許証",
            "id_number": "第123456789012号", "matched_1": "通話日時の申告"}  # fmt: skip
    assert client.post("/disclosures/open", data=form).status_code == 303
    [opened] = [e for e in entries(console) if e.kind == "disclosure_opened"]
    check = opened.detail["identity_check"]
    assert (check["document"], check["number_last4"], check["checked_by"]) == ("運転免許証", "9012", "boss")
    assert check["matched_with"] == ["通話日時の申告"]
    page = client.get("/disclosures").text
    rid = re.search(r"<td>(DR-[0-9]+-[0-9a-f]+)</td>", page)
    assert rid and console.call[:8] in page
    r = client.post(f"/disclosures/{rid[1]}/close", data={"csrf": token, "outcome": "disclosed", "note": ""})
    assert r.status_code == 303
    kinds = [e.kind for e in entries(console) if e.subject == rid[1]]
    assert kinds == ["disclosure_opened", "held", "disclosure_closed", "hold_released"]


def test_export_instructed_provided_disposed(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    token = csrf_of(client, console.call)
    order = {"csrf": token, "calls": console.call, "purpose": "苦情対応の検証",
             "legal_basis": "法令に基づく場合", "recipient": "広聴課", "duties": "複製禁止、用済み後返却",
             "due": "2027-03-31", "medium": "DVD-R"}  # fmt: skip
    assert client.post("/exports/instruct", data=order).status_code == 303
    page = client.get("/exports").text
    rid = re.search(r"<td>(EX-[0-9]+-[0-9a-f]+)</td>", page)
    assert rid, page[-3000:]
    for step, form in (
        ("provide", {"to": "広聴課", "medium": "DVD-R"}),
        ("dispose", {"how": "returned", "note": ""}),
    ):
        r = client.post(f"/exports/{rid[1]}/{step}", data={"csrf": token, **form})
        assert r.status_code == 303, r.text[-2000:]
    kinds = [e.kind for e in entries(console) if e.subject == rid[1]]
    assert kinds[0] == "export_instructed" and kinds[-1] == "export_disposed", kinds


def test_deletion_on_request(console: Running) -> None:
    spare, _ = seed_call(console.site, remote="0377778888")
    client = signed_in(console, "boss", "boss-password-1")
    token = csrf_of(client, spare)
    page = client.get(f"/calls/{spare}").text
    assert 'name="requester"' in page and 'name="contact"' in page  # the form asks who asked
    form = {"csrf": token, "request": "D-1", "reason": "本人の申出"}
    r = client.post(f"/calls/{spare}/delete", data=form)
    assert r.status_code != 303  # nobody named as having asked: refused, nothing deleted
    assert 'id="delete-form"' in client.get(f"/calls/{spare}").text
    asked = {"requester": "山田花子", "contact": "0377778888", "relation": "代理人"}
    r = client.post(f"/calls/{spare}/delete", data=form | asked)
    assert r.status_code == 303, r.text[-2000:]
    with console.site.sessions() as s:
        [gone] = [e for e in ledger.entries(s, call_ids=[spare]) if e.kind == "deleted"]
    assert gone.detail["requester"] == {"name": "山田花子", "contact": "03-7777-8888", "relation": "代理人"}
    assert 'id="delete-form"' not in client.get(f"/calls/{spare}").text  # no audio left to delete


def test_form_as_pdf(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    r = client.get("/forms/matsumoto.pdf", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    auditor = signed_in(console, "audit", "audit-password-1")
    assert auditor.get("/forms").status_code == 200


def test_auditor_cannot_open_a_disclosure_request(console: Running) -> None:
    client = signed_in(console, "audit", "audit-password-1")
    token = csrf_of(client, console.call)
    form = {"csrf": token, "number": "03-1111-2222", "from": "2026-11-22", "to": "2026-11-22",
            "requester": "x", "contact": "", "id_document": "旅券", "id_number": "TR1234567"}  # fmt: skip
    assert client.post("/disclosures/open", data=form).status_code == 403
    assert entries(console)[-1].detail["operation"] == "disclosure.open"
