"""``recorderd``: the daemon (``run``), a configuration check, and the demo.

Exit status: 0 clean stop, 2 configuration or start-up error (systemd must not restart-loop on a
typo without saying why: the message names the key or file).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from recorderd import logs
from recorderd.config import Config, ConfigError, load_config
from recorderd.daemon.checks import StartupError, check_config
from recorderd.daemon.lifecycle import Daemon
from recorderd.daemon.policy import describe
from recorderd.daemon.sdnotify import Notifier

DEFAULT_CONFIG = "/etc/recorderd/recorderd.toml"
log = structlog.get_logger("recorderd")


async def _serve(config_path: Path) -> None:
    config = load_config(config_path)
    notifier = Notifier.from_environment()  # a no-op outside systemd
    daemon = Daemon(config, notifier=notifier, on_ready=lambda _endpoints: freeze_startup_objects())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader(config_path, daemon, notifier))
    await daemon.run(stop)


def reloader(config_path: Path, daemon: Daemon, notifier: Notifier) -> Callable[[], None]:
    """SIGHUP: all or nothing. The new file must pass every check start-up makes (checks.py); if
    it does not, the old configuration stays whole, and the log and an alert say what is wrong."""

    def reload() -> None:
        notifier.reloading()
        try:
            new = load_config(config_path)
            checked = check_config(new)
        except (ConfigError, StartupError) as exc:
            daemon.reload_rejected(str(exc))
            notifier.reloaded()
            return
        restart = restart_needed(daemon.config, new)
        if restart:
            log.warning("reload_partial", needs_restart=restart, detail="these apply at the next restart")
        daemon.reload(new, checked.recipients)
        log.info("reloaded", lines=len(new.lines), recipients=len(checked.recipients))
        notifier.reloaded()

    return reload


# What a running daemon cannot take over without a restart (docs/configuration.md says the same):
# listeners are bound, links are open, the database is open, the status file is being written.
RESTART_SECTIONS = (
    "data_dir", "database_url", "node", "cluster", "agi", "audiosocket", "ami", "mqtt", "monitoring",
)  # fmt: skip


def restart_needed(old: Config, new: Config) -> list[str]:
    return [name for name in RESTART_SECTIONS if getattr(old, name) != getattr(new, name)]


def freeze_startup_objects() -> None:
    """Once READY: keep start-up's objects (modules, models, configuration) out of every later full
    garbage collection. A full collection stops the event loop; with 2,000 calls live it took
    ~3x longer with them (docs/PERFORMANCE.md). Only for the daemon's own process (not in tests)."""
    gc.collect()
    gc.freeze()


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run the daemon's event loop (one place, so benchmarks run exactly what ``run`` runs).

    asyncio's own loop by default; ``RECORDERD_EVENT_LOOP=uvloop`` picks uvloop (the optional
    ``uvloop`` extra; measured in docs/PERFORMANCE.md: no clear gain over asyncio's loop now).
    """
    choice = os.environ.get("RECORDERD_EVENT_LOOP", "asyncio")
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            raise ConfigError(
                "RECORDERD_EVENT_LOOP=uvloop, but uvloop is not installed (pip install 'recorderd[uvloop]')"
            ) from exc
        factory = uvloop.new_event_loop
    elif choice != "asyncio":
        raise ConfigError(f"RECORDERD_EVENT_LOOP={choice!r}: expected 'asyncio' or 'uvloop'")
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    logs.configure(json=True if args.json else None)
    try:
        run_event_loop(_serve(Path(args.config)))
    except (ConfigError, StartupError) as exc:
        log.error("startup_failed", error=str(exc))
        print(f"recorderd: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """The same checks as ``run`` and a reload (recorderd/daemon/checks.py), and the same refusal."""
    try:
        config = load_config(Path(args.file))
        checked = check_config(config, service=False)
    except (ConfigError, StartupError) as exc:
        print(f"recorderd: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: OK ({config.municipality or 'no municipality named'}, time zone {config.timezone})")
    for what in checked.not_checked:
        print(f"  not checked here: {what}")
    print("\n".join(describe(config)))
    for line in placeholders(Path(args.file).read_text(encoding="utf-8")):
        print(line)
    return 0


_PLACEHOLDER = re.compile(r"^\s*([A-Za-z0-9_.\-\"]+)\s*=.*#\s*placeholder\b:?\s*(.*)$", re.IGNORECASE)


def placeholders(text: str) -> list[str]:
    """Values the file marks "# placeholder: why" (the shipped profiles do): each must be replaced."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _PLACEHOLDER.match(line)
        if m:
            why = f" ({m.group(2).strip()})" if m.group(2).strip() else ""
            out.append(f"placeholder: replace before use: {m.group(1)} at line {n}{why}")
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    from recorderd.cli.demo import run_demo  # the simulator is only needed here

    # The demo's own output goes to stdout; the daemon's log lines only when asked for.
    logs.configure(json=False, stream=sys.stderr, level=20 if args.verbose else 40)
    return run_demo(
        Path(args.dir) if args.dir else None, speed=args.speed, verbose=args.verbose, console=args.console
    )


def cmd_console(args: argparse.Namespace) -> int:
    from recorderd.console.serve import serve  # the web stack is only needed here
    from storage.db import SchemaNotCurrent

    logs.configure(json=True if args.json else None)
    try:
        config = load_config(Path(args.config))
        serve(config, on_ready=lambda url: print(f"recorderd console: {url}", flush=True))
    except (ConfigError, SchemaNotCurrent) as exc:
        print(f"recorderd: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recorderd", description="Call-recording daemon for Asterisk")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the daemon (systemd ExecStart)")
    r.add_argument("--config", default=os.environ.get("RECORDERD_CONFIG", DEFAULT_CONFIG))
    r.add_argument("--json", action="store_true", help="JSON log lines even on a terminal")
    r.set_defaults(func=cmd_run)
    w = sub.add_parser("console", help="run the web console (its own process; [console] in the config)")
    w.add_argument("--config", default=os.environ.get("RECORDERD_CONFIG", DEFAULT_CONFIG))
    w.add_argument("--json", action="store_true", help="JSON log lines even on a terminal")
    w.set_defaults(func=cmd_console)
    c = sub.add_parser("check-config", help="validate a config file and print the decision per line")
    c.add_argument("file")
    c.set_defaults(func=cmd_check_config)
    d = sub.add_parser("demo", help="record simulated calls end to end, no PBX or network needed")
    d.add_argument("--dir", help="where to put the demo's data (default: a new temporary directory)")
    d.add_argument("--speed", type=float, default=8.0, help="simulated time runs this many times faster")
    d.add_argument("--verbose", action="store_true", help="show the daemon's log lines")
    d.add_argument(
        "--console", action="store_true", help="then keep the web console running on the demo data (Ctrl-C)"
    )
    d.set_defaults(func=cmd_demo)
    return p


def daemon_main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(daemon_main())
