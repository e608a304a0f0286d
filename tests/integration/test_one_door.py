"""The one door, row by row: every operation of the service layer, signed in as each role of each of the
five municipal profiles (config/profiles/), on a real SQLite catalogue, keyring and recordings.

A role the profile does not give the operation's permission is refused, with one ``access_denied``
ledger entry naming the operation and the missing permission; a role that has it is never refused for
want of a permission (it may still be refused for what the request lacks, and that refusal is ledgered
too). Then the front door: ``--by`` is gone, a release without the permission leaves the hold standing,
a Toyonaka handler's ``play --out`` is refused, and where a profile lets a role copy, the copy is on its
management ledger form.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from recorderd.cli.ctl import main as ctl
from recorderd.config import Config
from recorderd.config.people import ROLES
from recorderd.service import (
    OPERATIONS,
    Actor,
    Forbidden,
    NotPermitted,
    PasswordExpired,
    Service,
    calls,
    incidents,
    people,
    records,
    retention,
)
from storage import holds, ledger
from storage.age import AgeDecryptError, generate_identity
from storage.db import immediate, open_database
from storage.models import Call
from support import backend
from support.pdf import pdf_text
from support.people import FAST, Site, seed_call

PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"
NAMES = ("toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto")


def profile_config(
    name: str,
    root: Path,
    recipient: str,
    extra: dict[str, Any] | None = None,
    database_url: str | None = None,
) -> Config:
    """The shipped profile, with this machine's paths: data, stores and the preservation medium
    under ``root``, no AMI, one recipient, and password hashing at test cost."""
    data = tomllib.loads((PROFILES / f"{name}.toml").read_text(encoding="utf-8"))
    data["data_dir"] = str(root / "data")
    url = database_url or backend.current  # a PostgreSQL database (the ``backend`` fixture), if any
    if url:
        data["database_url"] = url
    data["ami"] = {"enabled": False}
    data["encryption"] = {"recipients": [recipient]}
    data.pop("announcements", None)
    for rule in data.get("lines", []):
        rule.pop("announcement", None)
    data.get("defaults", {}).pop("announcement", None)
    ret = data.get("retention", {})
    for store in ret.get("stores", {}):
        ret["stores"][store] = str(root / "stores" / store)
    if "preservation" in ret:
        ret["preservation"]["dir"] = str(root / "medium")
    data.setdefault("people", {})["passwords"] = tomllib.loads(FAST)["people"]["passwords"]
    data["people"].setdefault("roles", {}).update((extra or {}).get("roles", {}))
    return Config.model_validate(data)


@dataclass
class Installation:
    root: Path
    svc: Service
    staff: dict[str, Actor]  # role -> a signed-in person of that role
    call: str  # a recording every operation may name
    spare: str  # a recording for deletion requests


def install(
    name: str, root: Path, extra: dict[str, Any] | None = None, database_url: str | None = None
) -> Installation:
    identity, recipient = generate_identity()
    config = profile_config(name, root, recipient, extra, database_url)
    svc = Service(config, open_database(config.db_url)[1])
    site = Site(root, root / "unused.toml", identity, recipient)
    site.__dict__["config"] = config  # seed_call's cached properties, on this profile
    site.__dict__["sessions"] = svc.sessions
    call, _ = seed_call(site)
    spare, _ = seed_call(site, started=dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC))
    first = next(r for r in ROLES if "manage_users" in config.people.permissions(r))
    key = [identity]
    people.add_first_person(svc, f"p-{first}", first, first, f"{first}-password", key=people.FreshKey(key))
    boss = svc.sign_in(f"p-{first}", f"{first}-password")
    staff = {first: boss}
    for role in ROLES:
        if role == first:
            continue
        pid, pw = f"p-{role}", f"{role}-password"
        holds_key = config.people.holds_key(role)
        svc.people.add(boss, pid, role, role, "first-" + pw, key=key if holds_key else None)
        svc.people.change_password(pid, "first-" + pw, pw)
        staff[role] = svc.sign_in(pid, pw)
    return Installation(root, svc, staff, call, spare)


def _order(inst: Installation) -> records.Order:
    bases = inst.svc.config.exports.legal_bases
    return records.Order(
        [inst.call],
        "応対内容の確認",
        bases[0] if bases else "法令に基づく場合",
        "広聴課",
        "",
        dt.date(2027, 3, 31),
    )


# Each operation, invoked as a front end would, with plausible arguments.
Invoke = Callable[[Installation, Actor, str], object]
INVOKE: dict[str, Invoke] = {
    "calls.search": lambda i, who, r: calls.search(i.svc, who, calls.Query(number="03-1111-2222")),
    "calls.show": lambda i, who, r: calls.show(i.svc, who, i.call),
    "calls.play": lambda i, who, r: calls.play(i.svc, who, i.call, "確認", ["sh", "-c", "cat >/dev/null"]),
    "calls.copy": lambda i, who, r: calls.copy(i.svc, who, i.call, "確認", i.root / f"copy-{r}.wav"),
    "calls.play_sealed": lambda i, who, r: calls.play_sealed(i.svc, who, i.call, "確認"),
    "calls.delete": lambda i, who, r: retention.delete(
        i.svc, who, i.spare, request=f"D-{r}", reason="申出", requester=retention.Requester("山田", "06-1")
    ),
    "calls.preserve": lambda i, who, r: retention.preserve_call(
        i.svc, who, i.call, reason="不当要求", medium=r
    ),
    "files.verify": lambda i, who, r: calls.verify_files(i.svc, who),
    "holds.list": lambda i, who, r: retention.list_holds(i.svc, who),
    "holds.add": lambda i, who, r: retention.add_holds(
        i.svc, who, calls=[i.call], kind="manager_order", reference=f"H-{r}", reason="必要"
    ),
    "holds.release": lambda i, who, r: retention.release_holds(i.svc, who, reference=f"H-{r}", reason="解除"),
    "retention.plan": lambda i, who, r: retention.plan(i.svc, who),
    "retention.report": lambda i, who, r: retention.report(
        i.svc, who, dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    ),
    "retention.catalogue": lambda i, who, r: retention.catalogue(i.svc, who),
    "retention.confirm_clock": lambda i, who, r: retention.confirm_clock(i.svc, who),
    "export.instruct": lambda i, who, r: records.instruct_export(i.svc, who, _order(i)),
    "export.relay": lambda i, who, r: records.relay_export(
        i.svc,
        who,
        "EX-none",
        "p-handler",
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    ),
    "export.create": lambda i, who, r: records.create_export(
        i.svc, who, i.root / f"pkg-{r}", order=_order(i)
    ),
    "export.provide": lambda i, who, r: records.provide_export(i.svc, who, "EX-none", "広聴課", "DVD-R"),
    "export.dispose": lambda i, who, r: records.dispose_export(i.svc, who, "EX-none", "deleted", ""),
    "export.list": lambda i, who, r: records.list_exports(i.svc, who),
    "disclosure.open": lambda i, who, r: records.open_disclosure(
        i.svc,
        who,
        number="03-1111-2222",
        first=dt.date(2026, 11, 1),
        last=dt.date(2026, 11, 30),
        requester="山田太郎",
        contact="",
        identity=records.IdentityCheck("運転免許証", "123456789012", ("通話日時の申告",)),
    ),
    "disclosure.close": lambda i, who, r: records.close_disclosure(i.svc, who, "DR-none", "withdrawn", ""),
    "disclosure.list": lambda i, who, r: records.list_disclosures(i.svc, who),
    "forms.render": lambda i, who, r: records.render_form(i.svc, who, "no-such-form", i.root / "f.pdf"),
    "ledger.show": lambda i, who, r: records.show_ledger(i.svc, who),
    "ledger.verify": lambda i, who, r: records.verify_ledger(i.svc, who, []),
    "ledger.checkpoint": lambda i, who, r: records.checkpoint(i.svc, who),
    "users.list": lambda i, who, r: people.list_people(i.svc, who),
    "users.add": lambda i, who, r: people.add_person(
        i.svc, who, f"new-{r}"[:32], "新任", "auditor", "new-person-password", key=None
    ),
    "users.reset": lambda i, who, r: people.reset_password(i.svc, who, "nobody", "temporary-pw", holder=None),
    "users.disable": lambda i, who, r: people.disable(i.svc, who, "nobody"),
    "users.unlock": lambda i, who, r: people.unlock(i.svc, who, "nobody"),
    "keyring.list": lambda i, who, r: people.key_holders(i.svc, who),
    "keyring.destroy": lambda i, who, r: people.destroy_keyring(i.svc, who, confirm="not sure"),
    "incidents.list": lambda i, who, r: incidents.list_incidents(i.svc, who),
    "incidents.open": lambda i, who, r: incidents.open_incident(i.svc, who, "loss", f"紛失 {r}"),
    "incidents.ack": lambda i, who, r: incidents.acknowledge(i.svc, who, "IN-none", "確認"),
    "incidents.report": lambda i, who, r: incidents.report(i.svc, who, "IN-none", i.root / "jiko.pdf"),
}


def test_every_operation_of_the_service_layer_is_in_this_table() -> None:
    assert set(INVOKE) == set(OPERATIONS)


_INSTALLED: dict[tuple[str, str], Installation] = {}


@pytest.fixture
def installation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Installation:
    """One installation per profile and backend (SQLite, PostgreSQL), shared by its rows."""
    key = (str(request.param), backend)
    if key not in _INSTALLED:
        # Shared by the rows, so on PostgreSQL a database of its own: the backend fixture drops the
        # test's database when each test ends.
        own = request.getfixturevalue("postgres").new_database() if backend == "postgresql" else None
        _INSTALLED[key] = install(key[0], tmp_path_factory.mktemp(key[0]), database_url=own)
    return _INSTALLED[key]


def _last(inst: Installation) -> ledger.Entry:
    with inst.svc.sessions() as s:
        entry = ledger.head(s)
    assert entry is not None
    return entry


@pytest.mark.parametrize("installation", NAMES, indirect=True)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_role_is_refused_exactly_what_its_profile_withholds(
    installation: Installation, operation: str
) -> None:
    needs = OPERATIONS[operation].permission
    config = installation.svc.config
    for role, who in installation.staff.items():
        before = _last(installation).seq
        allowed = needs in config.people.permissions(role)
        outcome: Exception | None = None
        try:
            INVOKE[operation](installation, who, role)
        except Exception as exc:
            outcome = exc
        if isinstance(outcome, NotPermitted):
            assert not allowed, f"{role} may {operation} under this profile, yet: {outcome}"
            # One refusal, one entry (and perhaps an incident: a role refused again and again raises one).
            [entry] = _entries_since(installation, before, "access_denied")
            others = {e.kind for e in _entries_since(installation, before, "incident_raised")}
            assert _last(installation).seq - before == 1 + len(others)
            assert (entry.kind, entry.actor) == ("access_denied", who.id)
            assert entry.detail["operation"] == operation and f"lacks '{needs}'" in entry.detail["reason"]
        elif outcome is not None:  # refused for what the request lacks: allowed, and still ledgered
            assert allowed, f"{role} lacks '{needs}', yet {operation} went past the door: {outcome!r}"
            refusals = _entries_since(installation, before, "access_denied")
            assert refusals and all("lacks" not in e.detail["reason"] for e in refusals)
        else:
            assert allowed, f"{role} lacks '{needs}', yet {operation} was done"
            assert _last(installation).seq > before, f"{operation} by {role} left no ledger entry"


def _entries_since(inst: Installation, seq: int, kind: str) -> list[ledger.Entry]:
    with inst.svc.sessions() as s:
        return [e for e in ledger.entries(s, kinds=[kind]) if e.seq > seq]


# -- the front door ------------------------------------------------------------------------------
def _cli_site(name: str, root: Path, extra: dict[str, Any] | None = None) -> tuple[Installation, list[str]]:
    inst = install(name, root, extra)
    cfg = root / "recorderd.toml"
    config = inst.svc.config
    cfg.write_text(_toml(config), encoding="utf-8")
    for role in ROLES:
        (root / f"pw-{role}").write_text(f"{role}-password\n", encoding="utf-8")
    return inst, ["--config", str(cfg)]


def _toml(config: Config) -> str:
    """The effective configuration back as TOML (what an installer would have written)."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))


def me(root: Path, role: str) -> list[str]:
    return ["--as", f"p-{role}", "--password-file", str(root / f"pw-{role}")]


def test_by_no_longer_parses(tmp_path: Path) -> None:
    _inst, args = _cli_site("osaka-water", tmp_path)
    with pytest.raises(SystemExit) as exit_:
        ctl([*args, "holds", "release", "1", "--reason", "x", "--by", "nobody"])
    assert exit_.value.code == 2


def test_a_release_without_the_permission_is_refused_and_the_hold_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inst, args = _cli_site("osaka-water", tmp_path)
    held = [
        *args,
        "holds",
        "add",
        inst.call,
        "--kind",
        "manager_order",
        "--ref",
        "市長-1",
        "--reason",
        "必要",
    ]
    assert ctl([*held, *me(tmp_path, "manager")]) == 0
    capsys.readouterr()
    assert (
        ctl([*args, "holds", "release", "--ref", "市長-1", "--reason", "不要", *me(tmp_path, "handler")]) == 2
    )
    assert "lacks 'hold'" in capsys.readouterr().err
    with inst.svc.sessions() as s:
        assert [h.reference for h in holds.active(s, [inst.call])] == ["市長-1"]
    last = _last(inst)
    assert (last.kind, last.actor, last.detail["operation"]) == (
        "access_denied",
        "p-handler",
        "holds.release",
    )


def test_a_toyonaka_handler_may_not_copy_to_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inst, args = _cli_site("toyonaka", tmp_path)
    out = tmp_path / "h.wav"
    play = [*args, "play", inst.call, "--purpose", "確認", "--out", str(out), *me(tmp_path, "handler")]
    assert ctl(play) == 2
    err = capsys.readouterr().err
    assert "lacks 'copy'" in err and "export instruct" in err and not out.exists()
    last = _last(inst)
    assert (last.kind, last.detail["operation"]) == ("access_denied", "calls.copy")


def test_where_a_profile_lets_a_role_copy_the_copy_is_on_its_ledger_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A city on Matsumoto's rules whose mayor lets the manager copy (第7条第4項: 市長が特に必要と認めた場合).
    roles = {"manager": ["manage_users", "search", "play", "copy", "instruct", "hold", "delete", "audit"]}
    inst, args = _cli_site("matsumoto", tmp_path, {"roles": roles})
    out = tmp_path / "m.wav"
    copy = [*args, "calls", "export-audio", inst.call, "--purpose", "市長決裁による複製", "--out", str(out)]
    assert ctl([*copy, *me(tmp_path, "manager")]) == 0 and out.exists()
    pdf = tmp_path / "book.pdf"
    assert ctl([*args, "forms", "render", "matsumoto", "--out", str(pdf), *me(tmp_path, "manager")]) == 0
    text = pdf_text(pdf)
    assert "複製" in text and "市長決裁による複製" in text


# -- refusals for every cause ----------------------------------------------------------------------
def _denied(inst: Installation, before: int) -> list[ledger.Entry]:
    return _entries_since(inst, before, "access_denied") + _entries_since(inst, before, "login_failed")


def test_a_must_change_password_is_refused_and_ledgered(tmp_path: Path) -> None:
    inst = install("kawasaki", tmp_path)
    boss = inst.staff["manager"]
    people.reset_password(inst.svc, boss, "p-handler", "temporary-pw1", holder=None)
    before = _last(inst).seq
    with pytest.raises(PasswordExpired, match="set by an administrator"):
        inst.svc.sign_in("p-handler", "temporary-pw1")
    [entry] = _denied(inst, before)
    assert (entry.kind, entry.subject, entry.detail["reason"]) == ("login_failed", "p-handler", "must_change")


def test_no_key_copy_and_a_key_that_does_not_open_are_refusals_in_the_ledger(tmp_path: Path) -> None:
    inst = install("osaka-water", tmp_path)
    handler = inst.staff["handler"]
    inst.svc.people.keyring.revoke(handler.id)  # the copy is gone (a disk restored without it)
    before = _last(inst).seq
    with pytest.raises(Forbidden, match="holds no copy"):
        calls.play(inst.svc, handler, inst.call, "確認", ["sh", "-c", "cat >/dev/null"])
    [entry] = _denied(inst, before)
    assert entry.detail["operation"] == "calls.play" and "holds no copy" in entry.detail["reason"]

    boss = inst.staff["manager"]
    wrong = Actor(boss.id, boss.name, boss.role, boss.permissions, "not-the-password")  # a stale session
    before = _last(inst).seq
    with pytest.raises(AgeDecryptError):
        calls.play(inst.svc, wrong, inst.call, "確認", ["sh", "-c", "cat >/dev/null"])
    [entry] = _denied(inst, before)
    assert entry.detail["operation"] == "calls.play" and entry.actor == boss.id
    with inst.svc.sessions() as s:
        assert not [e for e in ledger.entries(s, kinds=["played"]) if e.seq > before]  # nothing was heard


def test_an_export_without_an_instruction_is_refused_and_ledgered(tmp_path: Path) -> None:
    inst = install("saitama", tmp_path)
    before = _last(inst).seq
    with pytest.raises(Forbidden, match="only on an instruction"):
        records.create_export(inst.svc, inst.staff["contractor"], tmp_path / "pkg", order=_order(inst))
    [entry] = _denied(inst, before)
    assert entry.detail["operation"] == "export.create" and not (tmp_path / "pkg").exists()


def test_read_commands_never_migrate_the_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic import command

    from storage.db import alembic_config, schema_problem

    inst, args = _cli_site("toyonaka", tmp_path)
    engine = open_database(inst.svc.config.db_url, migrate=False)[0]
    command.downgrade(alembic_config(engine), "-1")  # as if the package were upgraded, the daemon not yet
    assert ctl([*args, "calls", "list", *me(tmp_path, "handler")]) == 2
    assert "restart the daemon" in capsys.readouterr().err
    assert schema_problem(engine) is not None  # still the old revision: nothing migrated it


# -- legal bases (issue 11): every profile that restricts provision lists its bases, with the article --
@pytest.mark.parametrize(
    ("name", "article"),
    [
        ("toyonaka", "個人情報保護法第69条第2項第3号"),  # 第7条: 法律第69条第2項各号 only
        ("kawasaki", "個人情報保護法第69条第2項第3号"),  # 第5条第6項: the same, outside the city
        ("matsumoto", "第8条第1項第2号"),  # 第8条第1項各号
    ],
)
def test_a_provision_outside_the_profiles_legal_bases_is_refused_and_ledgered(
    name: str, article: str, tmp_path: Path
) -> None:
    inst = install(name, tmp_path)
    config = inst.svc.config
    assert config.exports.legal_bases and all(
        b.startswith(("第", "個人情報保護法第")) for b in config.exports.legal_bases
    )
    role = next(
        r for r in inst.staff if OPERATIONS["export.instruct"].permission in config.people.permissions(r)
    )
    who = inst.staff[role]
    order = records.Order([inst.call], "応対内容の確認", "適当な理由", "民間会社", "", dt.date(2027, 3, 31))
    before = _last(inst).seq
    with pytest.raises(Exception, match="legal basis not allowed"):
        records.instruct_export(inst.svc, who, order)
    [refusal] = _entries_since(inst, before, "access_denied")
    assert refusal.actor == who.id and refusal.detail["operation"] == "export.instruct"
    assert "legal basis not allowed" in refusal.detail["reason"]
    assert not _entries_since(inst, before, "export_instructed")
    # Cited by its article, the basis is allowed and written out in full on the instruction.
    request = records.instruct_export(inst.svc, who, replace(order, legal_basis=article))
    [given] = _entries_since(inst, before, "export_instructed")
    assert given.subject == request and given.detail["legal_basis"].startswith(article + " ")


# -- instruction chains (issue 11) ---------------------------------------------------------------------
def test_toyonaka_extracts_only_on_the_two_step_instruction_and_the_form_shows_both(tmp_path: Path) -> None:
    """第8条: 管理責任者 → 運用責任者 → a named 取扱員 (with the calls' date and time) → 様式第1号."""
    inst = install("toyonaka", tmp_path)
    svc, staff = inst.svc, inst.staff
    order = replace(_order(inst), legal_basis="個人情報保護法第69条第2項第3号")
    with svc.sessions() as s:
        started = s.get(Call, inst.call).started_at  # type: ignore[union-attr]
    span = (started - dt.timedelta(minutes=5), started + dt.timedelta(minutes=5))

    # The 運用責任者 cannot instruct alone.
    before = _last(inst).seq
    with pytest.raises(Forbidden, match="cannot instruct alone"):
        records.instruct_export(svc, staff["operations_manager"], order)
    [refused] = _entries_since(inst, before, "access_denied")
    assert refused.actor == "p-operations_manager" and "cannot instruct alone" in refused.detail["reason"]

    request = records.instruct_export(svc, staff["manager"], order)
    # Without the second step, the handler is refused, and the refusal is ledgered.
    before = _last(inst).seq
    with pytest.raises(Forbidden, match="two-step instruction"):
        records.create_export(svc, staff["handler"], tmp_path / "early", instruction=request)
    [refused] = _entries_since(inst, before, "access_denied")
    assert refused.actor == "p-handler" and refused.detail["operation"] == "export.create"
    assert not (tmp_path / "early").exists()
    # Only the 運用責任者 passes it on, to a handler, with a range that holds the calls.
    with pytest.raises(Forbidden, match="passes the instruction on"):
        records.relay_export(svc, staff["manager"], request, "p-handler", *span)
    with pytest.raises(Exception, match="not an active 取扱員"):
        records.relay_export(svc, staff["operations_manager"], request, "p-auditor", *span)
    with pytest.raises(Exception, match="outside the range"):
        records.relay_export(
            svc, staff["operations_manager"], request, "p-handler", span[1], span[1] + dt.timedelta(hours=1)
        )
    records.relay_export(svc, staff["operations_manager"], request, "p-handler", *span)
    records.create_export(svc, staff["handler"], tmp_path / "pkg", instruction=request)
    with svc.sessions() as s:
        [made] = ledger.entries(s, kinds=["exported"], subject=request)
    assert (made.detail["instructed_by"], made.detail["relayed_by"]) == ("p-manager", "p-operations_manager")

    pdf = tmp_path / "t1.pdf"
    records.render_form(svc, staff["manager"], "toyonaka-1", pdf)
    text = pdf_text(pdf)
    lines = text.splitlines()
    heading = next(line for line in lines if "取出年月日" in line)  # every heading on one line
    labels = (
        "番号",
        "取出年月日",
        "相手方電話番号",
        "管理責任者の指示",
        "運用責任者の指示",
        "取扱員",
        "提供先・根拠",
    )
    assert all(label in heading for label in labels), heading

    def column(word: str) -> int:
        [line] = [x for x in lines if re.search(rf"(^|\s){word}(\s|$)", x)]
        return re.search(rf"(^|\s){word}(\s|$)", line).start()  # type: ignore[union-attr]

    # Each instructor under their own heading, then the handler: (person IDs are the test's names)
    assert column("manager") < column("operations_manager") < column("handler")
    assert column("manager") < heading.index("運用責任者の指示") <= column("operations_manager") + 2
    # Labels and values on one line: the date of extraction, the number hyphenated, the due date.
    row = next(line for line in lines if line.lstrip().startswith("1 "))
    assert "03-1111-2222" in row and "応対内容の確認" in row and "令和9年3月31日" in row, row
    assert "令和8年11月22日" in text and "9時55分～10時05分" in text  # the range the handler was given


# -- Matsumoto (issue 11): every disposal on the 管理簿; counselling lines excluded both ways -------------
def test_matsumoto_record_book_lists_a_routine_disposal(tmp_path: Path) -> None:
    """第10条: 廃棄 is recorded, the reaper's routine deletion after 3 months (第7条第6項) too."""
    import asyncio

    from recorderd.retention.reaper import Reaper
    from storage import retention_log

    inst = install("matsumoto", tmp_path)
    svc = inst.svc
    with svc.sessions() as s:
        started = s.get(Call, inst.call).started_at  # type: ignore[union-attr]
    # 22 Nov 2026 10:00 JST: day 1 = 23 Nov, kept through 22 Feb 2027, due 00:00 JST 23 Feb.
    now = dt.datetime(2027, 2, 23, 1, 0, tzinfo=dt.UTC)
    assert started.astimezone(svc.config.zone).date() == dt.date(2026, 11, 22)
    clock = [dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)]  # the first pass: expiries, nothing due
    reaper = Reaper(svc.config, svc.sessions, clock=lambda: clock[0])
    assert asyncio.run(reaper.run_pass()).deleted == 0
    clock[0] = now
    with immediate(svc.sessions) as s:
        retention_log.set_time(s, "clock_confirmed_at", now)  # 3 months later: a person checked the clock
    assert asyncio.run(reaper.run_pass()).deleted >= 1
    with svc.sessions() as s:
        gone = s.get(Call, inst.call)  # the audio, and (metadata = 3 months too) the row itself
        assert gone is None or gone.audio_path is None
    pdf = tmp_path / "book.pdf"
    records.render_form(svc, inst.staff["manager"], "matsumoto", pdf)
    text = pdf_text(pdf)
    row = next(line for line in text.splitlines() if "保管期間経過による消去" in line)
    assert "廃棄" in row and "自動消去" in row and "令和9年2月23日" in row, row
    assert "deletion" not in text and "request" not in text  # no English on the clerk's form


@pytest.mark.parametrize("number", ["2999", "0263-00-0000"])
def test_matsumoto_counselling_calls_are_excluded_in_both_directions(number: str) -> None:
    """3(2) ※: inbound by the number called, outbound by the extension or trunk that places the call."""
    from recorderd.config import load_config
    from recorderd.daemon.policy import CallFacts, decide

    config = load_config(PROFILES / "matsumoto.toml")
    noon = dt.datetime(2026, 6, 10, 3, tzinfo=dt.UTC)
    out = decide(config, CallFacts("outbound", number, "0312345678"), noon)
    assert (out.action, out.keep_numbers, out.announcement) == ("exclude", False, None)
    if number.startswith("0"):
        inbound = decide(config, CallFacts("inbound", number, "0312345678"), noon)
        assert (inbound.action, inbound.keep_numbers) == ("exclude", False)
    # Another extension's outbound call is recorded (3(2): every external call).
    assert decide(config, CallFacts("outbound", "201", "0312345678"), noon).action == "record"


@pytest.mark.parametrize("name", NAMES)
def test_check_config_lists_every_placeholder(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from recorderd.cli.daemon import daemon_main
    from support.installed import as_installed

    # check-config runs every check `run` runs: the files the profile names must exist (as installed).
    assert daemon_main(["check-config", str(as_installed(PROFILES / f"{name}.toml", tmp_path))]) == 0
    listed = [
        x for x in capsys.readouterr().out.splitlines() if x.startswith("placeholder: replace before use")
    ]
    keys = {x.split(": ")[2].split(" at line")[0] for x in listed}
    assert {"data_dir", "secret_file", "recipients"} <= keys, listed
    text = (PROFILES / f"{name}.toml").read_text(encoding="utf-8")
    marked = [x for x in text.splitlines() if not x.lstrip().startswith("#") and "# placeholder:" in x]
    assert len(listed) == len(marked)  # each marked value, listed once


def test_the_notice_gives_duty_3_in_full_and_a_reiwa_date() -> None:
    from recorderd.records.export import notice_text

    order = records.Order(["c"], "確認", "第9条 開示請求", "本人", "", dt.date(2027, 3, 31))
    text = notice_text(order, "EX-1")
    assert "目的を達成したとき又は目的が達成されないことが判明したときは、速やかにデータの返却" in text
    assert "返却・消去期限: 令和9年3月31日" in text and "2027年" not in text


def test_saitama_export_copy_keeps_its_own_clock_and_the_raw_recording_its_own(tmp_path: Path) -> None:
    """第4条第6項: the raw recording goes at the end of the month after its month (第1号); the output
    data at the end of the fiscal year after the one it was made in (第2号), shown as such in the plan."""
    inst = install("saitama", tmp_path)
    made = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)  # 10:00 JST, FY2026
    inst.svc.clock = lambda: made
    ops, contractor = inst.staff["operations_manager"], inst.staff["contractor"]
    request = records.instruct_export(inst.svc, ops, _order(inst))
    records.create_export(inst.svc, contractor, tmp_path / "out", instruction=request)
    with inst.svc.sessions() as s:
        [entry] = ledger.entries(s, kinds=["exported"], subject=request)
    assert entry.detail["keep_until"] == "2028-03-31"  # made in FY2026 -> the end of FY2027
    lines = retention.plan(inst.svc, ops, until=dt.date(2028, 4, 2), calls=True)
    [copy] = [x for x in lines if "dispose export copy" in x]
    assert copy.startswith("2028-04-01") and request in copy
    assert "the end of the fiscal year after the fiscal year of the day the copy is made" in copy
    # The call (22 Nov 2026) is still deleted at the end of December, its own rule, export or not.
    raw = [x for x in lines if x.startswith("2027-01-01") and "delete" in x]
    assert raw and "policy raw" in raw[0], lines


def test_osaka_preserved_call_leaves_the_device_at_12_months_and_its_copy_at_5_years(tmp_path: Path) -> None:
    """第6条: the device copy moves at 6 months and leaves the system at 12, counted from the recording,
    preserved or not; the preserved copy (外部保存) is kept 5 years from its preservation (6-2)."""
    import asyncio

    from recorderd.retention.reaper import Reaper
    from storage import retention_log
    from storage.models import Preservation

    inst = install("osaka-water", tmp_path)
    (tmp_path / "medium").mkdir()  # the external medium, mounted
    svc, boss = inst.svc, inst.staff["manager"]
    # Recorded 10:00 JST 22 Nov 2026: day 1 = 23 Nov; 6 months end 22 May 2027, 12 months 22 Nov 2027.
    # Preserved 10:00 JST 7 Dec 2026: day 1 = 8 Dec; 5 years end 7 Dec 2031.
    preserved_at = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)
    move_due = dt.datetime(2027, 5, 22, 15, 0, tzinfo=dt.UTC)  # 00:00 JST 23 May 2027
    raw_due = dt.datetime(2027, 11, 22, 15, 0, tzinfo=dt.UTC)  # 00:00 JST 23 Nov 2027
    copy_due = dt.datetime(2031, 12, 7, 15, 0, tzinfo=dt.UTC)  # 00:00 JST 8 Dec 2031
    svc.clock = lambda: preserved_at
    kept = retention.preserve_call(svc, boss, inst.call, reason="不当要求行為", medium="USB-01")
    assert kept.until == copy_due
    copy = Path(kept.entry.path)
    assert copy.is_file()

    clock = [preserved_at]
    reaper = Reaper(svc.config, svc.sessions, clock=lambda: clock[0])

    def run_at(now: dt.datetime) -> None:
        clock[0] = now
        with immediate(svc.sessions) as s:
            retention_log.set_time(s, "clock_confirmed_at", now)  # a person checked the jumped clock
        asyncio.run(reaper.run_pass())

    def state() -> tuple[str | None, str | None, bool, dt.datetime | None]:
        with svc.sessions() as s:
            call = s.get(Call, inst.call)
            p = s.get(Preservation, kept.entry.id)
            assert p is not None
            return (
                call.audio_path if call else None,
                call.audio_store if call else None,
                copy.exists(),
                p.destroyed_at,
            )

    run_at(preserved_at)  # the reaper's first pass gives the call its dates: its own, not the copy's
    with svc.sessions() as s:
        row = s.get(Call, inst.call)
        assert row is not None and (row.move_at, row.expires_at) == (move_due, raw_due)
    run_at(raw_due - dt.timedelta(minutes=1))  # moved to the second store, still on the system
    audio, store, copy_there, destroyed = state()
    assert audio is not None and store == "secondary" and copy_there and destroyed is None
    run_at(raw_due + dt.timedelta(minutes=1))  # 12 months: gone from the system, preserved or not
    audio, _store, copy_there, destroyed = state()
    assert audio is None and copy_there and destroyed is None
    run_at(copy_due - dt.timedelta(minutes=1))
    assert state()[2]  # the copy to the last minute of its 5 years
    run_at(copy_due + dt.timedelta(minutes=1))
    _audio, _store, copy_there, destroyed = state()
    assert not copy_there and destroyed is not None
