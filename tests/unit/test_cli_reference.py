"""docs/cli.md is what the parsers say today (it is written from them; regenerate, never edit by hand)."""

from __future__ import annotations

from pathlib import Path

from recorderd.cli.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_cli_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: python -m recorderd.cli.reference > docs/cli.md"
    )


def test_the_reference_names_every_command_and_the_sign_in() -> None:
    text = render()
    commands = ("recorderctl calls list", "recorderctl holds release", "recorderctl play", "recorderd run")
    for command in commands:
        assert f"### `{command}`" in text
    assert "--as ID" in text and "--by" not in text
