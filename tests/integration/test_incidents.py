"""Incidents (Kawasaki 第7条; every profile), on the shipped Kawasaki profile, a real SQLite catalogue,
real recording files and a real Mosquitto: five wrong passwords lock an account and raise an incident
that is in the ledger, in ``recorderctl status``, on MQTT and on the printed 事故報告書 until a person
with the ``incidents`` permission acknowledges it (ledgered); tampering and losses found by the
scheduled check are incidents too; a leak is reported by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import tomllib
from pathlib import Path

import pytest
import tomli_w

from recorderd.cli.ctl import main as ctl
from recorderd.config import Config, MqttConfig
from recorderd.daemon.events import Events
from recorderd.daemon.incidentwatch import IncidentWatch
from recorderd.service import AuthError, NotPermitted, Service, people
from recorderd.service import incidents as service
from storage import ledger
from storage.age import generate_identity
from storage.db import open_database
from support.mosquitto import Mosquitto
from support.mqttsub import subscribe
from support.pdf import pdf_text
from support.people import FAST, Site, seed_call

PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"


def kawasaki(root: Path) -> tuple[Service, Site, Path]:
    identity, recipient = generate_identity()
    data = tomllib.loads((PROFILES / "kawasaki.toml").read_text(encoding="utf-8"))
    data |= {
        "data_dir": str(root / "data"),
        "ami": {"enabled": False},
        "encryption": {"recipients": [recipient]},
    }
    data.pop("announcements", None)
    for rule in data.get("lines", []):
        rule.pop("announcement", None)
    data.get("defaults", {}).pop("announcement", None)
    passwords = tomllib.loads(FAST)["people"]["passwords"] | {"max_failures": 5}
    data.setdefault("people", {})["passwords"] = passwords
    config = Config.model_validate(data)
    cfg = root / "recorderd.toml"
    cfg.write_text(tomli_w.dumps(config.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    svc = Service(config, open_database(config.db_url)[1])
    site = Site(root, cfg, identity, recipient)
    site.__dict__["config"] = config
    site.__dict__["sessions"] = svc.sessions
    people.add_first_person(
        svc, "kacho", "課長", "manager", "kacho-password", key=people.FreshKey([identity])
    )
    boss = svc.sign_in("kacho", "kacho-password")
    svc.people.add(boss, "tanto", "担当", "handler", "first-tanto-pw", key=[identity])
    svc.people.change_password("tanto", "first-tanto-pw", "tanto-password")
    (root / "pw-kacho").write_text("kacho-password\n", encoding="utf-8")
    (root / "pw-tanto").write_text("tanto-password\n", encoding="utf-8")
    return svc, site, cfg


def test_five_wrong_passwords_raise_an_incident_until_it_is_acknowledged(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    svc, _site, cfg = kawasaki(tmp_path)
    for _ in range(5):
        with pytest.raises(AuthError):
            svc.sign_in("tanto", "wrong-password")
    with pytest.raises(AuthError, match="locked"):
        svc.sign_in("tanto", "tanto-password")  # still locked: no second incident for the same cause
    with svc.sessions() as s:
        raised = ledger.entries(s, kinds=["incident_raised"])
    [entry] = raised
    assert entry.detail["kind"] == "account_locked" and "tanto" in entry.detail["summary"]
    incident = entry.subject
    assert incident is not None

    # recorderctl status (no sign-in) shows it, and fails, until it is acknowledged.
    assert ctl(["--config", str(cfg), "status"]) == 1
    out = capsys.readouterr().out
    assert "open incidents" in out and incident in out and "account_locked" in out

    # On MQTT: the daemon's watch publishes every incident in the ledger, whoever raised it.
    mqtt = MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix="recorderd/kawasaki")
    events = Events(mqtt, first_backoff_s=0.05)

    async def published() -> dict[str, object]:
        async with subscribe(mosquitto.host, mosquitto.port, "recorderd/kawasaki/alerts/#") as sub:
            task = asyncio.create_task(events.run())
            try:
                watch = IncidentWatch(svc.config, svc.sessions, events)
                assert watch.publish_new() == [incident]
                assert watch.publish_new() == []  # once
                got = await sub.expect(
                    "recorderd/kawasaki/alerts/incident", lambda b: b.get("id") == incident
                )
                return got.body
            finally:
                await events.aclose()
                task.cancel()

    body = asyncio.run(published())
    assert body["incident_kind"] == "account_locked" and body["state"] == "raised"

    # Only a role with "incidents" acknowledges; the handler (unlocked by the manager) may not.
    boss = svc.sign_in("kacho", "kacho-password")
    people.unlock(svc, boss, "tanto")
    handler = svc.sign_in("tanto", "tanto-password")
    with pytest.raises(NotPermitted):
        service.acknowledge(svc, handler, incident, "見た")
    pw = ["--as", "kacho", "--password-file", str(tmp_path / "pw-kacho")]
    assert (
        ctl(["--config", str(cfg), "incidents", "ack", incident, "--note", "本人の入力誤りと確認", *pw]) == 0
    )
    with svc.sessions() as s:
        [ack] = ledger.entries(s, kinds=["incident_acknowledged"])
    assert (ack.subject, ack.actor, ack.detail["note"]) == (incident, "kacho", "本人の入力誤りと確認")
    capsys.readouterr()
    ctl(["--config", str(cfg), "status"])  # exits 1 anyway: no daemon runs here
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.lstrip().startswith("open incidents")]
    assert line.split()[-1] == "none" and incident not in line
    assert service.open_incident_lines(svc.sessions, svc.config.zone) == []

    # The printed report: label and value on one line.
    pdf = tmp_path / "jiko.pdf"
    assert ctl(["--config", str(cfg), "incidents", "report", incident, "--out", str(pdf), *pw]) == 0
    lines = pdf_text(pdf).splitlines()

    def row(label: str) -> str:
        return next(line for line in lines if label in line)

    assert "事故報告書" in "\n".join(lines)
    assert incident in row("事故番号")
    assert "アカウントのロック" in row("事故の種別")
    assert row("発生・検知日時").split("発生・検知日時")[1].strip().startswith("令和")
    assert "システムによる自動検知" in row("検知の方法")
    assert "課長" in row("確認者") and "本人の入力誤りと確認" in row("措置の内容")


def test_the_scheduled_check_raises_incidents_for_missing_and_changed_files(tmp_path: Path) -> None:
    svc, site, _cfg = kawasaki(tmp_path)
    gone, _ = seed_call(site)
    changed, _ = seed_call(site, started=dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC))
    with svc.sessions() as s:
        from storage.models import Call

        paths = {c: svc.config.data_dir / str(s.get(Call, c).audio_path) for c in (gone, changed)}  # type: ignore[union-attr]
    watch = IncidentWatch(svc.config, svc.sessions, Events(None))
    assert watch.verify() == []  # all well: nothing raised
    paths[gone].unlink()
    with paths[changed].open("r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    assert watch.verify() == ["files"]
    assert watch.verify() == ["files"]  # still failing, but the open incident is not raised twice
    [found] = service.incidents(svc.sessions, open_only=True)
    assert found.kind == "verify_failed" and "欠落1件、改変1件" in found.summary
    assert found.raised.detail["facts"]["missing"] == [gone] and found.raised.detail["facts"]["changed"] == [
        changed
    ]
    assert watch.publish_new() == [found.id]
    assert watch.events.last["incident"]["id"] == found.id


def test_a_leak_is_opened_by_hand_and_only_by_hand_kinds(tmp_path: Path) -> None:
    svc, _site, cfg = kawasaki(tmp_path)
    pw = ["--as", "kacho", "--password-file", str(tmp_path / "pw-kacho")]
    assert (
        ctl(["--config", str(cfg), "incidents", "open", "--kind", "leak", "--what", "USBメモリの紛失", *pw])
        == 0
    )
    [found] = service.incidents(svc.sessions, open_only=True)
    assert (found.kind, found.raised.actor, found.summary) == ("leak", "kacho", "USBメモリの紛失")
    boss = svc.sign_in("kacho", "kacho-password")
    with pytest.raises(Exception, match="raised automatically"):
        service.open_incident(svc, boss, "account_locked", "x")
    with svc.sessions() as s:
        denied = ledger.entries(s, kinds=["access_denied"])
    assert denied and denied[-1].detail["operation"] == "incidents.open"


def test_repeated_refusals_and_a_tampered_ledger_are_incidents(tmp_path: Path) -> None:
    svc, _site, _cfg = kawasaki(tmp_path)
    handler = svc.sign_in("tanto", "tanto-password")
    for n in range(5):
        with pytest.raises(NotPermitted):
            service.acknowledge(svc, handler, f"IN-{n}", "x")  # a handler has no "incidents"
    [found] = service.incidents(svc.sessions, open_only=True)
    assert found.kind == "repeated_refusals" and found.raised.detail["facts"]["refusals"] == 5

    from sqlalchemy import update

    from storage.models import LedgerRow

    with svc.sessions.begin() as s:  # someone edits an old row behind the ledger's back
        s.execute(update(LedgerRow).where(LedgerRow.seq == 2).values(actor="someone-else"))
    watch = IncidentWatch(svc.config, svc.sessions, Events(None))
    assert watch.verify() == ["ledger"]
    kinds = sorted(i.kind for i in service.incidents(svc.sessions, open_only=True))
    assert kinds == ["ledger_verify_failed", "repeated_refusals"]


def test_a_clock_jump_that_stops_the_reaper_is_an_incident(tmp_path: Path) -> None:
    """The reaper stops deleting when the clock leaps far past what it knew (an RTC reset, a bad NTP
    answer) and alerts; the daemon's watch turns that alert into one incident, raised once."""
    from recorderd.retention.reaper import Reaper

    svc, site, _cfg = kawasaki(tmp_path)
    seed_call(site)
    events = Events(None)
    clock = [dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)]
    reaper = Reaper(svc.config, svc.sessions, clock=lambda: clock[0], events=events)
    watch = IncidentWatch(svc.config, svc.sessions, events, clock=lambda: clock[0])
    asyncio.run(reaper.run_pass())
    watch.check_clock()
    assert service.incidents(svc.sessions, open_only=True) == []  # a normal pass: nothing
    clock[0] += dt.timedelta(hours=svc.config.retention.max_clock_jump_h + 24)
    report = asyncio.run(reaper.run_pass())
    assert report.refused == "retention_clock_jump" and report.deleted == 0
    watch.check_clock()
    watch.check_clock()  # still jumped on the next round: the same incident, not a second
    [found] = service.incidents(svc.sessions, open_only=True)
    assert found.kind == "clock_jump" and found.raised.detail["automatic"]
    assert found.raised.actor == "recorderd"


async def test_a_stopping_daemon_ends_the_file_check_at_the_next_file(tmp_path: Path) -> None:
    """The check runs in a worker thread, which cancellation cannot stop: on a catalogue of millions
    it would hold the daemon's exit for hours. Cancelling the watch asks the walk to end at the next
    file, and the files it did not reach are not reported missing."""
    svc, site, _cfg = kawasaki(tmp_path)
    for hour in range(4):
        seed_call(site, started=dt.datetime(2026, 11, 22, hour, 0, tzinfo=dt.UTC))
    from storage.integrity import verify_catalogue

    asked: list[int] = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    with svc.sessions() as s:
        checked, problems = verify_catalogue(s, svc.config.data_dir, stop=stop_after_two)
        assert verify_catalogue(s, svc.config.data_dir)[0] == 4  # the whole walk, for comparison
    assert (checked, problems) == (2, [])

    import threading

    config = svc.config.model_copy(update={"monitoring": svc.config.monitoring.model_copy(
        update={"verify_interval_s": 0.001})})  # fmt: skip
    watch = IncidentWatch(config, svc.sessions, Events(None))
    inside, seen_stop = threading.Event(), threading.Event()

    def slow_verify() -> list[str]:  # stands for a walk over millions: it runs until told to stop
        inside.set()
        if watch.stopping.wait(timeout=30):
            seen_stop.set()
        return []

    watch.verify = slow_verify  # type: ignore[method-assign]
    task = asyncio.create_task(watch.run())
    assert await asyncio.to_thread(inside.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(seen_stop.wait, 30)

    del watch.verify  # the real check again
    watch.stopping.clear()
    next((svc.config.data_dir / "recordings").rglob("*.age")).unlink()
    watch.stopping.set()
    assert watch.verify() == []  # stopped: the missing file was not reached, and nothing is raised
    assert service.incidents(svc.sessions, open_only=True) == []
    watch.stopping.clear()
    assert watch.verify() == ["files"]  # a full check finds it
