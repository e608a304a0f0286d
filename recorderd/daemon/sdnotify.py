"""sd_notify(3) without libsystemd: one datagram per state change to ``$NOTIFY_SOCKET``.

The protocol is a newline-separated list of ``KEY=VALUE`` assignments sent as one datagram to an
AF_UNIX socket (a path, or an abstract name written with a leading ``@``). We use it for:

- ``READY=1`` once the database, the recipients and the listeners are up (Type=notify: systemd
  reports the unit started only then, and units ordered after us wait for it);
- ``STATUS=…`` a one-line summary shown by ``systemctl status``;
- ``WATCHDOG=1`` pings, sent by the caller only while the daemon is healthy (WatchdogSec=);
- ``RELOADING=1`` / ``READY=1`` around a SIGHUP reload, ``STOPPING=1`` at shutdown.

Without ``$NOTIFY_SOCKET`` (tests, a terminal, another supervisor) every call is a no-op. A send
never raises and never blocks: telling systemd how we are must not be able to stop a recording.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("recorderd.sdnotify")


def _address(raw: str) -> str | bytes:
    # "@name" is systemd's spelling of a Linux abstract socket: a leading NUL byte on the wire.
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds systemd waits between pings before it acts, or None when no watchdog applies to us.

    ``$WATCHDOG_PID`` names the process the watchdog is meant for; a child that inherited the
    environment (or a wrapper script) must not ping on the main process's behalf.
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """Sends sd_notify datagrams; every method is a no-op when there is no socket."""

    def __init__(self, address: str | None = None, *, watchdog_s: float | None = None) -> None:
        self.address = address or None
        self.watchdog_s = watchdog_s
        self._sock: socket.socket | None = None
        self._ready = False
        self._last_status: str | None = None
        self._warned = False
        if self.address is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)  # a full receive queue must cost a ping, never a stall
            self._sock = sock

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"), watchdog_s=watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """Send one datagram of ``KEY=value`` lines; True when the datagram left."""
        if self._sock is None or self.address is None:
            return False
        text = "\n".join(f"{k}={str(v).replace(chr(10), ' ')}" for k, v in fields.items())
        try:
            self._sock.sendto(text.encode(), _address(self.address))
        except OSError as exc:
            # EAGAIN: systemd is not reading; ECONNREFUSED/ENOENT: no listener (manager restarting).
            # Say it once: repeating every ping would flood the journal we report to.
            if not self._warned:
                self._warned = True
                log.warning("sd_notify_failed", socket=self.address,
                            error=errno.errorcode.get(exc.errno or 0, str(exc)))  # fmt: skip
            return False
        self._warned = False
        return True

    def ready(self, status: str | None = None) -> None:
        self._ready = True
        fields: dict[str, str | int] = {"READY": 1}
        if status is not None:
            fields["STATUS"] = status
            self._last_status = status
        self.send(**fields)

    def reloading(self) -> None:
        if self._ready:
            self.send(RELOADING=1)

    def reloaded(self) -> None:
        """A reload ended (applied or rejected): systemd waits for READY=1 after RELOADING=1."""
        if self._ready:
            self.send(READY=1)

    def status(self, text: str) -> None:
        """Send STATUS= only when it changed, so a ping-rate caller does not repeat itself."""
        if text != self._last_status:
            self._last_status = text
            self.send(STATUS=text)

    def watchdog(self) -> None:
        self.send(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> None:
        fields: dict[str, str | int] = {"STOPPING": 1}
        if status is not None:
            fields["STATUS"] = status
        self.send(**fields)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
