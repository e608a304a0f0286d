"""What the README says about keys and set-up matches the code (issue 12 item 11)."""

from __future__ import annotations

from pathlib import Path

from recorderd.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_says_where_the_keyring_and_signing_key_live_by_default() -> None:
    config = parse_config('data_dir = "/var/lib/recorderd"\n')
    # The defaults the README names are the code's.
    assert config.keyring_dir == config.data_dir / "keyring"
    assert config.signing_key_path == config.data_dir / "ledger-signing.key"
    assert "`data_dir/keyring` **on the recording\nhost**" in README
    assert "`data_dir/ledger-signing.key`" in README
    assert "[people] keyring_dir" in README  # and how to put it elsewhere
    # No claim that the recording host holds no key.
    for untrue in ("recording host holds none", "recorder holds public keys only"):
        assert untrue not in README.replace("\n", " ")


def test_check_config_runs_after_the_files_it_checks_are_installed() -> None:
    """check-config now checks the announcement files (as start-up does): the README's production
    steps must install them before running it, or the printed command fails."""
    installed = README.index("cp announce/prompts/announce-ja.wav")
    secret = README.index("> /etc/recorderd/ami-secret")
    checked = README.index("recorderd check-config /etc/recorderd/recorderd.toml   #")
    assert installed < checked and secret < checked
