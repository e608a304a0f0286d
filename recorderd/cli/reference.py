"""The CLI reference (docs/cli.md), written from the parsers themselves so it cannot drift.

    python -m recorderd.cli.reference > docs/cli.md

A test compares the file with what this prints and fails, naming this command, when they differ.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

from recorderd.cli import ctl, daemon

HEADER = """# Command reference

Written from the commands' own parsers by `python -m recorderd.cli.reference > docs/cli.md`; a test
fails when this file and the code differ. Every `recorderctl` command that reads or changes recordings
or records signs in (`--as ID`; the password from `--password-file`, `$RECORDERD_PASSWORD` or the
terminal) and goes through the service layer, which checks the permission under the loaded profile and
writes the ledger first (docs/ARCHITECTURE.md). Dates are calendar days in the configured time zone
(Asia/Tokyo), never UTC days.

Exit status of `recorderctl`: 0 done; 1 a check found a problem, a decryption failed, or a request was
refused for what stands in its way (a hold); 2 usage, configuration, sign-in or permission: nothing was
done.
"""


Command = tuple[list[str], str, argparse.ArgumentParser]


def _commands(parser: argparse.ArgumentParser, path: list[str], text: str) -> Iterator[Command]:
    """Every leaf command under ``parser``: (its words, its one-line help, its parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, text, parser
        return
    helps = {c.dest: c.help or "" for c in subs[0]._choices_actions}
    for name, child in subs[0].choices.items():
        yield from _commands(child, [*path, name], helps.get(name, ""))


def render() -> str:
    """The reference, wrapped at 100 columns whatever the terminal (the file must not depend on it)."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        out = [HEADER]
        for top in (daemon.build_parser(), ctl.build_parser()):
            out.append(f"## `{top.prog}`\n\n```\n{top.format_help().rstrip()}\n```\n")
            for path, text, parser in _commands(top, [top.prog], ""):
                usage = parser.format_help().replace(parser.prog, " ".join(path))
                out.append(f"### `{' '.join(path)}`\n\n{text}\n\n```\n{usage.rstrip()}\n```\n")
        return "\n".join(out)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
