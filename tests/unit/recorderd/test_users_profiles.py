"""Each municipality's profile gives its roles the permissions its regulation describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorderd.config import load_config
from recorderd.config.people import ROLES

PROFILES = Path(__file__).resolve().parents[3] / "config" / "profiles"


def may(profile: str, permission: str) -> set[str]:
    config = load_config(PROFILES / f"{profile}.toml")
    return {r for r in ROLES if permission in config.people.permissions(r)}


def test_saitama_nobody_hears_raw_recordings_and_the_contractor_acts_on_instruction() -> None:
    config = load_config(PROFILES / "saitama.toml")
    assert may("saitama", "play") == set()
    assert may("saitama", "export") == {"contractor"} and may("saitama", "instruct") == {"operations_manager"}
    assert [r for r in ROLES if config.people.holds_key(r)] == ["contractor"]
    assert config.exports.two_person and config.exports.keep_unit == "fiscal_year_end"


def test_toyonaka_changes_passwords_and_extracts_on_instruction() -> None:
    config = load_config(PROFILES / "toyonaka.toml")
    assert config.people.passwords.max_age_days == 90 and config.exports.two_person
    assert may("toyonaka", "export") == {"handler"}


@pytest.mark.parametrize("profile", ["toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto"])
def test_every_profile_keeps_auditors_away_from_keys(profile: str) -> None:
    config = load_config(PROFILES / f"{profile}.toml")
    assert not config.people.holds_key("auditor")
    assert may(profile, "manage_users")  # someone can manage people


def test_matsumoto_copies_only_on_the_named_grounds() -> None:
    bases = load_config(PROFILES / "matsumoto.toml").exports.legal_bases
    assert "第8条第1項第2号 捜査機関から犯罪捜査のため情報提供を求められた場合" in bases and len(bases) == 4


@pytest.mark.parametrize("profile", ["toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto"])
def test_no_shipped_profile_lets_anyone_copy_outside_the_export_flow(profile: str) -> None:
    """Each of the five regulations allows copies only on an instruction or a legal basis (Toyonaka 8,
    Saitama 4, Kawasaki 5-5, Matsumoto 7-4); Osaka's copies are external preservations."""
    assert may(profile, "copy") == set()


def test_who_may_delete_preserve_and_search() -> None:
    assert may("osaka-water", "preserve") == {"manager"} and may("osaka-water", "delete") == {"manager"}
    assert may("saitama", "search") == {"operations_manager", "auditor"}
    assert may("kawasaki", "search") == {"manager", "handler", "auditor"}
    for profile in ("toyonaka", "saitama", "osaka-water", "kawasaki", "matsumoto"):
        assert not may(profile, "preserve") - {"manager"}  # only a manager preserves, where anyone does
