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
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
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
    people,
    records,
    retention,
)
from storage import holds, ledger
from storage.age import AgeDecryptError, generate_identity
from storage.db import open_database
from support.people import FAST, Site, seed_call

PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"
NAMES = ("toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto")


def profile_config(name: str, root: Path, recipient: str, extra: dict[str, Any] | None = None) -> Config:
    """The shipped profile, with this machine's paths: data, stores and the preservation medium
    under ``root``, no AMI, one recipient, and password hashing at test cost."""
    data = tomllib.loads((PROFILES / f"{name}.toml").read_text(encoding="utf-8"))
    data["data_dir"] = str(root / "data")
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


def install(name: str, root: Path, extra: dict[str, Any] | None = None) -> Installation:
    identity, recipient = generate_identity()
    config = profile_config(name, root, recipient, extra)
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
    "calls.delete": lambda i, who, r: retention.delete(i.svc, who, i.spare, request=f"D-{r}", reason="申出"),
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
        identity_check="運転免許証",
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
}


def test_every_operation_of_the_service_layer_is_in_this_table() -> None:
    assert set(INVOKE) == set(OPERATIONS)


_INSTALLED: dict[str, Installation] = {}


@pytest.fixture
def installation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Installation:
    name = request.param
    if name not in _INSTALLED:  # one installation per profile, shared by its rows
        _INSTALLED[name] = install(name, tmp_path_factory.mktemp(name))
    return _INSTALLED[name]


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
            entry = _last(installation)
            assert entry.seq == before + 1, "one refusal, one entry"
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


@pytest.mark.skipif(not (PROFILES.parent.parent / "recorderd").exists(), reason="source tree")
def test_where_a_profile_lets_a_role_copy_the_copy_is_on_its_ledger_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("fpdf")
    from recorderd.records.forms.sheet import FormError, find_font

    try:
        find_font()
    except FormError:
        pytest.skip("no Japanese font (apt-get install fonts-ipaexfont-mincho)")
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not installed (apt-get install poppler-utils)")
    # A city on Matsumoto's rules whose mayor lets the manager copy (第7条第4項: 市長が特に必要と認めた場合).
    roles = {"manager": ["manage_users", "search", "play", "copy", "instruct", "hold", "delete", "audit"]}
    inst, args = _cli_site("matsumoto", tmp_path, {"roles": roles})
    out = tmp_path / "m.wav"
    copy = [*args, "calls", "export-audio", inst.call, "--purpose", "市長決裁による複製", "--out", str(out)]
    assert ctl([*copy, *me(tmp_path, "manager")]) == 0 and out.exists()
    pdf = tmp_path / "book.pdf"
    assert ctl([*args, "forms", "render", "matsumoto", "--out", str(pdf), *me(tmp_path, "manager")]) == 0
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert "複製" in text.stdout and "市長決裁による複製" in text.stdout


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
