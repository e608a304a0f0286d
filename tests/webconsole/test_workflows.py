"""The regulations' workflows through the console over real HTTP: disclosure requests, export
instructions and their follow-ups, deletion on request, forms as PDF. The service layer acts and
ledgers; these tests check that the console's forms reach it, with their CSRF token, and no further."""

from __future__ import annotations

import io
import json
import re
import wave
import zipfile
from pathlib import Path

import httpx
from webconsole.test_http import csrf_of, entries, signed_in

from storage import ledger
from storage.age import decrypt_bytes, generate_identity
from support.console_site import CONSOLE, Running, start
from support.people import make_site, person, seed_call


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


def _instruct(client: httpx.Client, console: Running, token: str, **extra: str) -> str:
    order = {"csrf": token, "calls": console.call, "purpose": "苦情対応の検証",
             "legal_basis": "法令に基づく場合", "recipient": "広聴課", "duties": "複製禁止、用済み後返却",
             "due": "2027-03-31", "medium": "DVD-R", **extra}  # fmt: skip
    assert client.post("/exports/instruct", data=order).status_code == 303
    page = client.get("/exports").text
    rid = re.findall(r"<td>(EX-[0-9]+-[0-9a-f]+)</td>", page)
    assert rid, page[-3000:]
    return rid[0]  # newest first


def _actions(page: str, rid: str) -> list[str]:
    row = re.search(rf'<tr id="export-{rid}".*?</tr>', page, re.S)
    assert row
    return re.findall(r'action="/exports/[^/"]+/(\w+)"', row[0])


def test_export_instructed_created_provided_disposed(console: Running) -> None:
    """The whole flow in the console, each step offered only where the request stands; the copy is a
    zip whose audio only the recipient's key opens, and which is the recording's audio."""
    boss = signed_in(console, "boss", "boss-password-1")
    recipient_identity, recipient = generate_identity()
    rid = _instruct(boss, console, csrf_of(boss, console.call), recipient_key=recipient)
    assert _actions(boss.get("/exports").text, rid) == []  # the instructor may not carry it out
    person(console.site.people(), console.manager, "clerk", "handler", "clerk-password-1")
    client = signed_in(console, "clerk", "clerk-password-1")  # another person carries it out
    token = csrf_of(client, console.call)
    assert _actions(client.get("/exports").text, rid) == ["create"]
    wrong = client.post(f"/exports/{rid}/create", data={"csrf": token, "password": "not-mine"})
    assert wrong.status_code == 403 and not [e for e in entries(console) if e.kind == "exported"]
    r = client.post(f"/exports/{rid}/create", data={"csrf": token, "password": "clerk-password-1"})
    assert r.status_code == 200, r.text[-2000:]
    assert r.headers["content-type"] == "application/zip" and f"{rid}.zip" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        assert f"{rid}/audio/{console.call}.wav.age" in names and not [n for n in names if n.endswith(".wav")]
        wav = decrypt_bytes(z.read(f"{rid}/audio/{console.call}.wav.age"), [recipient_identity])
        manifest = json.loads(z.read(f"{rid}/manifest.json"))
    with wave.open(io.BytesIO(wav)) as w:
        assert w.readframes(w.getnframes()) == console.pcm  # the recording's audio, sample for sample
    assert manifest["package"] == rid
    assert _actions(client.get("/exports").text, rid) == ["provide", "dispose"]
    links = re.findall(r'class="form-pdf" href="([^"]+)"', boss.get("/exports").text)
    assert f"/forms/saitama-2.pdf?request={rid}" in links and "form-pdf" not in client.get("/exports").text
    for link in links:  # each export form of this request, as PDF
        pdf = boss.get(link)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    for step, form in (
        ("provide", {"to": "広聴課", "medium": "DVD-R"}),
        ("dispose", {"how": "returned", "note": ""}),
    ):
        r = client.post(f"/exports/{rid}/{step}", data={"csrf": token, **form})
        assert r.status_code == 303, r.text[-2000:]
    kinds = [e.kind for e in entries(console) if e.subject == rid]
    assert kinds[0] == "export_instructed" and "exported" in kinds and kinds[-1] == "export_disposed", kinds
    assert _actions(client.get("/exports").text, rid) == []


def test_a_plain_wav_export_is_not_made_in_the_console(console: Running) -> None:
    boss = signed_in(console, "boss", "boss-password-1")
    rid = _instruct(boss, console, csrf_of(boss, console.call))  # no recipient key: plain WAV audio
    person(console.site.people(), console.manager, "clerk", "handler", "clerk-password-1")
    client = signed_in(console, "clerk", "clerk-password-1")
    token = csrf_of(client, console.call)
    r = client.post(f"/exports/{rid}/create", data={"csrf": token, "password": "clerk-password-1"})
    assert r.status_code == 400 and "recorderctl export create" in r.text
    refused = entries(console)[-1]
    assert (refused.kind, refused.detail["operation"]) == ("access_denied", "export.create")
    assert not [e for e in entries(console) if e.kind == "exported"]


def test_a_role_without_export_sees_no_step_and_is_refused(console: Running) -> None:
    boss = signed_in(console, "boss", "boss-password-1")
    rid = _instruct(boss, console, csrf_of(boss, console.call), recipient_key=generate_identity()[1])
    auditor = signed_in(console, "audit", "audit-password-1")
    page = auditor.get("/exports").text
    assert _actions(page, rid) == [] and 'id="create"' not in page and 'id="instruct"' not in page
    token = csrf_of(auditor, console.call)
    r = auditor.post(f"/exports/{rid}/create", data={"csrf": token, "password": "audit-password-1"})
    assert r.status_code == 403
    assert entries(console)[-1].detail["operation"] == "export.create"


def test_a_copy_without_an_instruction_where_the_profile_allows_it(console: Running) -> None:
    client = signed_in(console, "boss", "boss-password-1")
    token = csrf_of(client, console.call)
    assert 'id="create"' in client.get("/exports").text
    order = {"csrf": token, "calls": console.call, "purpose": "苦情対応の検証",
             "legal_basis": "法令に基づく場合", "recipient": "広聴課", "duties": "複製禁止",
             "due": "2027-03-31", "medium": "USB", "recipient_key": generate_identity()[1],
             "password": "boss-password-1"}  # fmt: skip
    r = client.post("/exports/create", data=order)
    assert r.status_code == 200 and r.content.startswith(b"PK")
    assert [e.kind for e in entries(console)][-2:] == ["exported", "export_sealed"]


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


def test_toyonaka_chain_instruct_relay_create(tmp_path: Path) -> None:
    """管理責任者 instructs, 運用責任者 names the handler and the calls' time (relay), that handler alone
    is offered create, in the console."""
    site = make_site(
        tmp_path,
        CONSOLE + '[exports]\ntwo_person = true\nchain = ["manager", "operations_manager", "handler"]\n',
    )
    call, _pcm = seed_call(site)
    people = site.people()
    boss = person(people, None, "boss", "manager", "boss-password-1", key=[site.identity])
    person(people, boss, "ops", "operations_manager", "ops-password-1")
    person(people, boss, "hana", "handler", "hana-password-1")
    person(people, boss, "taro", "handler", "taro-password-1")
    server, url, thread = start(site)
    try:
        c = Running(site, server, url, call, b"", boss, boss)
        manager = signed_in(c, "boss", "boss-password-1")
        rid = _instruct(manager, c, csrf_of(manager, call), recipient_key=generate_identity()[1])
        hana = signed_in(c, "hana", "hana-password-1")
        assert _actions(hana.get("/exports").text, rid) == []  # not yet relayed to her
        ops = signed_in(c, "ops", "ops-password-1")
        assert _actions(ops.get("/exports").text, rid) == ["relay"]
        span = {"calls_from": "2026-11-22T00:00", "calls_to": "2026-11-22T23:59"}
        r = ops.post(f"/exports/{rid}/relay", data={"csrf": csrf_of(ops, call), "handler": "hana", **span})
        assert r.status_code == 303, r.text[-2000:]
        assert _actions(ops.get("/exports").text, rid) == []
        taro = signed_in(c, "taro", "taro-password-1")
        assert _actions(taro.get("/exports").text, rid) == []  # given to hana, not to him
        assert _actions(hana.get("/exports").text, rid) == ["create"]
        r = hana.post(
            f"/exports/{rid}/create", data={"csrf": csrf_of(hana, call), "password": "hana-password-1"}
        )
        assert r.status_code == 200 and r.content.startswith(b"PK")
        [relayed] = [e for e in entries(c) if e.kind == "export_relayed"]
        assert relayed.detail["to"] == "hana" and relayed.detail["calls_from"].startswith(
            "2026-11-22T00:00:00+09:00"
        )
    finally:
        server.stop()
        thread.join(10)
