"""A console restart signs everyone out, and a form posted with a token from before it changes
nothing (docs/decisions.md: console sessions stay in memory). Real HTTP: the console, stopped, then
started again on the same installation."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from storage import holds
from support.console_site import CONSOLE, start
from support.people import make_site, person, seed_call


def test_a_restart_signs_everyone_out_and_a_stale_form_does_nothing(tmp_path: Path) -> None:
    site = make_site(tmp_path, CONSOLE)
    call, _pcm = seed_call(site)
    person(site.people(), None, "boss", "manager", "boss-password-1", key=[site.identity])
    server, url, thread = start(site)
    try:
        client = httpx.Client(base_url=url, timeout=10)
        sign_in = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
        assert sign_in
        form = {"csrf": sign_in[1], "person_id": "boss", "password": "boss-password-1"}
        assert client.post("/signin", data=form).status_code == 303
        page = client.get(f"/calls/{call}")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and token
    finally:
        server.stop()
        thread.join(10)
    server, url, thread = start(site)  # the console again, on the same catalogue
    try:
        again = httpx.Client(base_url=url, cookies=client.cookies, timeout=10)
        r = again.get("/calls")
        assert r.status_code == 303 and r.headers["location"].endswith("/signin")
        stale = {"csrf": token[1], "kind": "manager_order", "reference": "R-1", "reason": "stale"}
        r = again.post(f"/calls/{call}/hold", data=stale)
        assert r.status_code == 303 and r.headers["location"].endswith("/signin")
        with site.sessions() as s:
            assert holds.listing(s, include_released=True, call_id=call) == []
    finally:
        server.stop()
        thread.join(10)
