"""Every check a configuration must pass before the daemon uses it: at start-up, on reload (SIGHUP)
and in ``recorderd check-config``. One function, so the three can never disagree: a file that
``check-config`` calls OK starts, and a file that would not start is never applied by a reload.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from announce import PromptError, validate_prompt
from recorderd.config import Config, ConfigError
from storage.age import AgeKeyError, parse_recipient
from storage.files import private_dir


class StartupError(Exception):
    """The daemon cannot start (or reload) safely; the message tells the operator what to fix."""


@dataclass(frozen=True)
class Checked:
    recipients: list[str]
    not_checked: list[str] = field(default_factory=list)  # what only the running service can check


def check_config(config: Config, *, service: bool = True) -> Checked:
    """Recipients present and valid, secrets readable, announcement files valid prompts, data_dir
    usable; StartupError naming the first problem.

    ``service=False`` (``check-config`` from a shell): systemd credentials are checked only where
    ``$CREDENTIALS_DIRECTORY`` is set (systemd hands them to the service alone), and the data
    directory is probed, never created. What was left out is listed, never silently passed.
    """
    not_checked: list[str] = []
    try:
        recipients = config.encryption.resolved_recipients()
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    for r in recipients:
        try:
            parse_recipient(r)
        except AgeKeyError as exc:
            raise StartupError(f"encryption: bad age recipient {r[:12]}…: {exc}") from exc
    credentials = service or bool(os.environ.get("CREDENTIALS_DIRECTORY"))
    try:  # secrets now, not at first use: a missing credential must stop start-up before READY=1
        if config.ami.enabled:
            if config.ami.secret_credential is None or credentials:
                config.ami.resolved_secret()
            else:
                not_checked.append(f"ami.secret_credential {config.ami.secret_credential!r} (systemd only)")
        if config.mqtt is not None:
            if config.mqtt.password_credential is None or credentials:
                config.mqtt.resolved_password()
            else:
                not_checked.append(
                    f"mqtt.password_credential {config.mqtt.password_credential!r} (systemd only)"
                )
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    for key, ann in config.announcements.items():
        if ann.file is not None:
            try:
                validate_prompt(ann.file)
            except PromptError as exc:
                raise StartupError(f"announcements.{key}: {exc}") from exc
    if service:
        _probe_data_dir(config)
    elif config.data_dir.is_dir():
        if not os.access(config.data_dir, os.W_OK | os.X_OK):
            raise StartupError(f"data_dir {config.data_dir}: not writable by this user")
    else:
        not_checked.append(f"data_dir {config.data_dir} (does not exist yet; the daemon creates it)")
    return Checked(recipients, not_checked)


def _probe_data_dir(config: Config) -> None:
    try:
        private_dir(config.data_dir)
        probe = config.data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"data_dir {config.data_dir}: not writable: {exc.strerror}") from exc
