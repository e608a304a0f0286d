"""Small durable-file primitives shared by the recording writer, retention, key copies and exports."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new, renamed or removed file) survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(directory: Path) -> Path:
    """mkdir -p where every directory created is 0700, set explicitly: recordings and the catalogue are
    personal information, and a umask of 022 (outside systemd) must not open them to other users."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)
    return directory


def make_private(path: Path) -> None:
    """Mode 0600 for a file we own (SQLite creates its database with 0644 under umask 022, and its
    journal copies the database's mode). Best effort: a file that cannot be changed now (a sick
    disk) must not stop the database from being opened; the next connection tries again."""
    with contextlib.suppress(OSError):
        st = path.stat()
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o600:
            os.chmod(path, 0o600)


def write_exclusive(path: Path, data: bytes) -> None:
    """Create ``path`` (0600; FileExistsError if it exists) with ``data``, fsynced; parents 0700."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def disk_usage(path: Path) -> tuple[int | None, int | None]:
    """(free, total) bytes of the file system holding ``path``; (None, None) if it cannot be read."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None, None
    return usage.free, usage.total
