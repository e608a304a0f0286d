"""People: passwords, lockout, expiry, permissions and key copies, on a real SQLite file and keyring."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recorderd.people.keys import NoKeyCopy
from recorderd.people.users import AuthError, Forbidden, PasswordExpired, People, UserError
from recorderd.records.play import open_key
from recorderd.service import Service, calls
from storage import ledger
from storage.age import AgeDecryptError, decrypt_passphrase_identity
from storage.db import open_database
from support.people import make_site, person, seed_call

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")


def kinds(people: People) -> list[str]:
    with people._sessions() as s:
        return [e.kind for e in ledger.entries(s)]


def test_first_account_then_roles_and_key_copies(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    people = site.people()
    with pytest.raises(UserError, match="manage users"):
        people.add(None, "h1", "H", "handler", "handler-password", key=[site.identity])
    boss = person(people, None, "boss", "manager", "boss-password", key=[site.identity])
    with pytest.raises(UserError, match="--as"):
        people.add(None, "other", "O", "manager", "other-password", key=[site.identity])
    person(people, boss, "aud", "auditor", "auditor-pass")
    person(people, boss, "hand", "handler", "handler-pass")
    assert people.keyring.holders() == ["boss", "hand"]  # the auditor holds nothing
    with pytest.raises(UserError, match="at least 10"):
        people.add(boss, "short", "S", "auditor", "short")
    assert kinds(people)[:2] == ["user_added", "key_granted"]


def test_without_play_permission_there_is_nothing_to_decrypt_with(tmp_path: Path) -> None:
    """Done when: a handler without playback permission cannot decrypt, even with their password."""
    site = make_site(tmp_path, "[people.roles]\nhandler = []\n")  # this profile's handlers may not play
    call_id, _pcm = seed_call(site)
    people = site.people()
    boss = person(people, None, "boss", "manager", "boss-password", key=[site.identity])
    handler = person(people, boss, "tanaka", "handler", "tanaka-password")
    assert not people.keyring.has("tanaka")
    with pytest.raises(NoKeyCopy):
        people.keyring.unlock("tanaka", "tanaka-password")
    for copy in people.keyring.directory.iterdir():  # no key file in the keyring opens with their password
        with pytest.raises(AgeDecryptError):
            decrypt_passphrase_identity(copy.read_bytes(), "tanaka-password")
    with pytest.raises(Forbidden, match="lacks 'copy'"):
        calls.copy(Service(site.config, site.sessions), handler, call_id, "curiosity", tmp_path / "x.wav")
    with pytest.raises(Forbidden, match="holds no copy"):
        open_key(people, handler)
    assert not (tmp_path / "x.wav").exists()
    assert kinds(people)[-1] == "access_denied"


def test_wrong_password_is_refused_logged_and_locks_after_n(tmp_path: Path) -> None:
    site = make_site(tmp_path)  # max_failures = 3 in the test config
    people = site.people()
    person(people, None, "boss", "manager", "boss-password", key=[site.identity])
    for attempt in range(1, 4):
        with pytest.raises(AuthError) as err:
            people.authenticate("boss", "guess", action="play")
        assert ("locked" in str(err.value)) == (attempt == 3)
    with pytest.raises(AuthError, match="locked"):  # the right password no longer helps
        people.authenticate("boss", "boss-password", action="play")
    with pytest.raises(AuthError, match="unknown ID or wrong password"):
        people.authenticate("nobody", "x", action="play")
    got = kinds(people)
    assert got.count("login_failed") == 5 and got.count("account_locked") == 1
    with people._sessions() as s:
        failed = ledger.entries(s, kinds=["login_failed"])
    assert [e.detail["reason"] for e in failed] == ["wrong_password"] * 3 + ["locked", "unknown_id"]


def test_an_administrator_unlocks_and_a_timed_lock_runs_out(tmp_path: Path) -> None:
    site = make_site(tmp_path, "lockout_minutes = 15\n")  # appended under [people.passwords]
    clock = [dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)]
    config = site.config
    _e, sessions = open_database(config.db_url)
    people = People(sessions, config, clock=lambda: clock[0])
    person(people, None, "boss", "manager", "boss-password", key=[site.identity])
    for _ in range(3):
        with pytest.raises(AuthError):
            people.authenticate("boss", "guess", action="play")
    clock[0] += dt.timedelta(minutes=14)
    with pytest.raises(AuthError, match="locked"):
        people.authenticate("boss", "boss-password", action="play")
    clock[0] += dt.timedelta(minutes=2)
    assert people.authenticate("boss", "boss-password", action="play").id == "boss"


def test_expired_password_forces_a_change_that_rekeys_the_copy(tmp_path: Path) -> None:
    site = make_site(tmp_path, "max_age_days = 90\n")  # appended under [people.passwords]
    clock = [dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)]
    config = site.config
    assert config.people.passwords.max_age_days == 90
    _e, sessions = open_database(config.db_url)
    people = People(sessions, config, clock=lambda: clock[0])
    person(people, None, "boss", "manager", "boss-password", key=[site.identity])
    clock[0] += dt.timedelta(days=90)
    with pytest.raises(PasswordExpired, match="has expired"):
        people.authenticate("boss", "boss-password", action="play")
    with pytest.raises(UserError, match="differ"):
        people.change_password("boss", "boss-password", "boss-password")
    people.change_password("boss", "boss-password", "new-boss-password")
    assert people.authenticate("boss", "new-boss-password", action="play").id == "boss"
    assert people.keyring.unlock("boss", "new-boss-password") == [site.identity]
    with pytest.raises(AgeDecryptError):  # the old password no longer opens the key copy
        people.keyring.unlock("boss", "boss-password")


def test_reset_and_disable(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    people = site.people()
    boss = person(people, None, "boss", "manager", "boss-password", key=[site.identity])
    person(people, boss, "hand", "handler", "handler-pass")
    with pytest.raises(UserError, match="key-from"):
        people.reset_password(boss, "hand", "temporary-pw", key=None)
    people.reset_password(boss, "hand", "temporary-pw", key=people.keyring.unlock("boss", "boss-password"))
    with pytest.raises(PasswordExpired, match="set by an administrator"):
        people.authenticate("hand", "temporary-pw", action="play")
    assert people.keyring.unlock("hand", "temporary-pw") == [site.identity]
    assert people.disable(boss, "hand")
    assert not people.keyring.has("hand")
    with pytest.raises(AuthError, match="disabled"):
        people.authenticate("hand", "temporary-pw", action="play")
    assert "key_revoked" in kinds(people)
