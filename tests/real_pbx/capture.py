"""Capture what crosses the wire between the real Asterisk and the daemon, in the fixture pack's format.

A ``CaptureProxy`` listens on one loopback port and forwards each connection to another, keeping
every recv() as a chunk with its time (one thread per direction: the lane's traffic is a few calls).
``write_markers`` writes a connection as ``fixtures/asterisk-20/agi|ami/*.txt`` are written (see that
README): ``\\n#### t=<sec> <from> -> <to> (<n> bytes)\\n`` then exactly n verbatim bytes; a 0-byte
chunk is that side closing. ``tests/support/captures.py`` reads them back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKERS = (
    "#### markers: '#### t=<sec> <from> -> <to> (<n> bytes)'; exactly <n> verbatim bytes (\\r\\n kept) "
    "follow each marker line; one '\\n' precedes every marker line. One chunk = one recv()/send(). "
    "t = seconds on the capture clock (TCP connection opened at t={opened:.3f}). (0 bytes) = that side "
    "closed the TCP connection (FIN)."
)


@dataclass(frozen=True)
class Piece:
    t: float  # time.monotonic()
    src: str
    dst: str
    data: bytes


@dataclass(eq=False)
class Connection:
    opened: float
    pieces: list[Piece] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def sent_by(self, src: str) -> bytes:
        return b"".join(p.data for p in self.pieces if p.src == src)


class CaptureProxy:
    """``client`` connects to ``listen_port``; we connect on to ``target_port``. ``client_name`` and
    ``server_name`` label the two sides in the markers ("asterisk", "agi-server", ...)."""

    def __init__(self, listen_port: int, target_port: int, client_name: str, server_name: str) -> None:
        self.target_port = target_port
        self.names = (client_name, server_name)
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", listen_port))
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            conn = Connection(time.monotonic())
            with self._lock:
                self.connections.append(conn)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # as the real server would: nothing listens
                conn.done.set()
                continue
            left = threading.Thread(
                target=self._pump, args=(conn, client, upstream, *self.names), daemon=True
            )
            right = threading.Thread(target=self._pump, args=(conn, upstream, client, *self.names[::-1]),
                                     daemon=True)  # fmt: skip
            left.start()
            right.start()
            threading.Thread(target=self._join, args=(conn, left, right), daemon=True).start()

    def _pump(
        self, conn: Connection, src: socket.socket, dst: socket.socket, src_name: str, dst_name: str
    ) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with self._lock:
                conn.pieces.append(Piece(time.monotonic(), src_name, dst_name, data))
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    @staticmethod
    def _join(conn: Connection, *threads: threading.Thread) -> None:
        for t in threads:
            t.join()
        conn.done.set()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()


def write_markers(path: Path, title: str, conn: Connection, clock0: float) -> None:
    """One connection as a marker file; times are seconds since ``clock0``."""
    out = bytearray(f"{title}\n{MARKERS.format(opened=conn.opened - clock0)}\n".encode())
    for p in conn.pieces:
        out += f"\n#### t={p.t - clock0:.3f} {p.src} -> {p.dst} ({len(p.data)} bytes)\n".encode()
        out += p.data
    path.write_bytes(bytes(out))
