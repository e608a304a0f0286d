"""sd_notify over a real AF_UNIX datagram socket, as systemd's manager listens for it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorderd.daemon.sdnotify import Notifier, watchdog_interval


class Listener:
    """The manager's side: a bound datagram socket; recv() returns one datagram's assignments."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address

    def recv(self) -> dict[str, str]:
        data = self.sock.recv(4096)
        return dict(line.split("=", 1) for line in data.decode().splitlines())

    def pending(self) -> list[dict[str, str]]:
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.recv())
        except BlockingIOError:
            return out
        finally:
            self.sock.setblocking(True)


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[Listener]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    path = tmp_path / "notify"
    sock.bind(str(path))
    yield Listener(sock, str(path))
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[Listener]:
    name = f"recorderd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.bind(b"\0" + name.encode())
    yield Listener(sock, "@" + name)
    sock.close()


def test_ready_status_watchdog_stopping_arrive_as_datagrams(path_socket: Listener) -> None:
    n = Notifier(path_socket.address)
    assert n.enabled
    n.ready("0 calls in progress; PBX link up")
    assert path_socket.recv() == {"READY": "1", "STATUS": "0 calls in progress; PBX link up"}
    n.watchdog()
    assert path_socket.recv() == {"WATCHDOG": "1"}
    n.stopping("stopping: sealing 2 recordings")
    assert path_socket.recv() == {"STOPPING": "1", "STATUS": "stopping: sealing 2 recordings"}
    n.close()


def test_abstract_socket_address_with_at_sign(abstract_socket: Listener) -> None:
    n = Notifier(abstract_socket.address)
    n.ready()
    assert abstract_socket.recv() == {"READY": "1"}


def test_status_is_sent_only_when_it_changes(path_socket: Listener) -> None:
    n = Notifier(path_socket.address)
    n.status("a")
    n.status("a")
    n.status("b")
    assert path_socket.pending() == [{"STATUS": "a"}, {"STATUS": "b"}]


def test_status_newlines_cannot_inject_assignments(path_socket: Listener) -> None:
    Notifier(path_socket.address).send(STATUS="line one\nREADY=1")
    assert path_socket.recv() == {"STATUS": "line one READY=1"}


def test_reload_pair_only_after_ready(path_socket: Listener) -> None:
    n = Notifier(path_socket.address)
    n.reloading()
    n.reloaded()  # a SIGHUP during start-up must not announce READY early
    assert path_socket.pending() == []
    n.ready()
    n.reloading()
    n.reloaded()
    assert path_socket.pending() == [{"READY": "1"}, {"RELOADING": "1"}, {"READY": "1"}]


def test_without_notify_socket_everything_is_a_noop() -> None:
    n = Notifier.from_environment({})
    assert not n.enabled
    n.ready("x")
    n.watchdog()
    n.stopping()
    assert n.send(STATUS="x") is False


def test_a_vanished_manager_socket_never_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = Notifier(str(tmp_path / "nobody-listens"))
    assert n.send(WATCHDOG=1) is False
    n.watchdog()
    n.ready()


def test_a_full_receive_queue_does_not_block(path_socket: Listener) -> None:
    n = Notifier(path_socket.address)
    # Nobody reads: the kernel queue fills and sendto would block a blocking socket forever.
    sent = sum(n.send(STATUS="x" * 1000) for _ in range(5000))
    assert 0 < sent < 5000


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 2.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected


def test_from_environment_reads_socket_and_watchdog(path_socket: Listener) -> None:
    n = Notifier.from_environment({"NOTIFY_SOCKET": path_socket.address, "WATCHDOG_USEC": "4000000"})
    assert n.enabled and n.watchdog_s == 4.0
