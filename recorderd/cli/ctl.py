"""``recorderctl``: administration of a recorderd installation.

Reads the same TOML as the daemon (``--config`` or $RECORDERD_CONFIG) to find the data directory and
the database. Every command that reads or changes recordings or records signs in (``--as ID``) and
goes through the service layer, which checks the permission and writes the ledger first.
Exit status (recorderd/cli/common.py): 0 done, 1 a check failed or a request was refused for what
stands in its way, 2 usage, configuration, sign-in or permission: nothing was done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from announce import prepare
from recorderd.cli import calls, incidents, people, records, retention
from recorderd.cli.common import App, run
from recorderd.cli.status import report

DEFAULT_CONFIG = "/etc/recorderd/recorderd.toml"


def cmd_status(app: App) -> int:
    """The operator's view, free of sign-in: it shows no call and no number."""
    summary, lines, code = report(app.config)
    if app.args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    else:
        print("\n".join(lines))
    return code


def cmd_announce_prepare(app: App) -> int:
    a = app.args
    info = prepare(Path(a.input), Path(a.output))
    print(f"{a.output}: {info.sample_rate} Hz, {info.channels} channel, {info.duration_s:.2f} s, "
          f"peak {info.peak_dbfs:.1f} dBFS")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recorderctl", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--config", default=os.environ.get("RECORDERD_CONFIG", DEFAULT_CONFIG), help="daemon TOML")
    sub = p.add_subparsers(dest="command", required=True)
    calls.register(sub)  # calls list|show|export-audio|preserve|delete, play, verify
    people.register(sub)  # keys init, users, keyring
    records.register(sub)  # ledger, export, forms, disclosure
    retention.register(sub)  # retention, holds
    incidents.register(sub)  # incidents list|open|ack|report

    st = sub.add_parser("status", help="daemon up and healthy? PBX link, calls, disk, alerts (exit 1 if not)")
    st.add_argument("--json", action="store_true", help="the daemon's status file and the measured figures")
    st.set_defaults(func=cmd_status)
    ann = sub.add_parser("announce", help="announcement prompts").add_subparsers(
        dest="ann_command", required=True
    )
    pr = ann.add_parser("prepare", help="convert any WAV/FLAC to 8 kHz mono 16-bit WAV for Asterisk")
    pr.add_argument("input")
    pr.add_argument("output")
    pr.set_defaults(func=cmd_announce_prepare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.func, App(args))


if __name__ == "__main__":
    sys.exit(main())
