"""What every ``recorderctl`` command shares: the context, signing in, secrets, Tokyo dates, exit codes.

A command is a few lines: parse → ``app.service()`` → ``app.sign_in()`` → one call into the service
layer (recorderd/service/) → print. Permissions and the ledger are the service layer's alone.

Secrets come from a file option, else an environment variable (automation and tests), else the
terminal: the acting person's password from --password-file / $RECORDERD_PASSWORD, a new one from
--new-password-file / $RECORDERD_NEW_PASSWORD, a key holder's from --key-from-password-file /
$RECORDERD_KEY_PASSWORD, an identity file's passphrase from --identity-passphrase-file /
$RECORDERD_IDENTITY_PASSPHRASE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from announce import PromptError
from recorderd.config import Config, ConfigError, load_config
from recorderd.errors import AccessError
from recorderd.service import REFUSALS, Actor, Service, UserError
from recorderd.statusfile import StatusUnavailable
from storage import ledger
from storage.age import AgeDecryptError
from storage.db import SchemaNotCurrent, open_current, open_database

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "App",
    "Command",
    "exit_code",
    "local_date",
    "read_passphrase",
    "secret",
    "who",
]

# The one exit-code table of recorderctl.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a check found a problem (verify), a decryption failed, a request was refused
EXIT_REFUSED = 2  # usage, configuration, sign-in or permission: nothing was done

Command = Callable[["App"], int]


def exit_code(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) for an error a person can act on; None for a bug (it propagates)."""
    if isinstance(exc, AgeDecryptError):
        return EXIT_CHECK_FAILED, f"decryption failed: {exc}"
    expected = (
        *REFUSALS,
        ConfigError,
        PromptError,
        SchemaNotCurrent,
        StatusUnavailable,
        ledger.LedgerUnavailable,
    )
    if isinstance(exc, expected):
        return EXIT_REFUSED, str(exc)
    return None


def local_time(text: str) -> dt.datetime:
    """A local date and time, "YYYY-MM-DD HH:MM" (naive: the command puts it in the configured zone)."""
    try:
        return dt.datetime.fromisoformat(text.strip().replace("/", "-"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date and time (YYYY-MM-DD HH:MM): {text!r}") from exc


def local_date(text: str) -> dt.date:
    """A calendar date as people in Japan write it on the command line: YYYY-MM-DD (also YYYY/MM/DD).
    It names a day in the configured zone (Asia/Tokyo), never a UTC day."""
    try:
        return dt.date.fromisoformat(text.strip().replace("/", "-"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def secret(path: Path | None, env: str, prompt: str, *, confirm: bool = False) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise UserError(f"{path}: cannot read: {exc.strerror}") from exc
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise UserError(f"{prompt.rstrip(': ')}: no terminal; give a file option or ${env}")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def read_passphrase(prompt: str = "Passphrase: ", *, file: Path | None = None, confirm: bool = False) -> str:
    """An identity file's passphrase: --passphrase-file, else $RECORDERD_PASSPHRASE, else the terminal."""
    phrase = secret(file, "RECORDERD_PASSPHRASE", prompt, confirm=confirm)
    if not phrase:
        raise AccessError("an empty passphrase is not allowed")
    return phrase


def who(p: argparse.ArgumentParser) -> None:
    """The acting person: every command that reads or changes recordings or records needs one."""
    p.add_argument("--as", dest="as_", metavar="ID", required=True, help="your personal ID")
    p.add_argument("--password-file", type=Path, help="your password (else $RECORDERD_PASSWORD or a prompt)")


@dataclass
class App:
    """One recorderctl invocation: its arguments, the configuration, the service layer."""

    args: argparse.Namespace
    _config: Config | None = field(default=None, init=False)
    _service: Service | None = field(default=None, init=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(Path(self.args.config))
        return self._config

    def service(self, *, migrate: bool = False) -> Service:
        """The service layer on the catalogue. Only commands that may create the catalogue (the first
        person) migrate it; every other command needs it current and never changes its schema."""
        if self._service is None:
            url = self.config.db_url
            _engine, sessions = open_database(url, node=self.config.node) if migrate else open_current(url)
            self._service = Service(self.config, sessions)
        return self._service

    def sign_in(self) -> Actor:
        person = str(self.args.as_)
        password = secret(self.args.password_file, "RECORDERD_PASSWORD", f"Password for {person}: ")
        return self.service().sign_in(person, password)


def run(command: Command, app: App) -> int:
    try:
        return command(app)
    except Exception as exc:
        known = exit_code(exc)
        if known is None:
            raise
        status, message = known
        print(f"recorderctl: {message}", file=sys.stderr)
        return status
