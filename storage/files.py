"""Small durable-file primitives shared by the recording writer, retention, key copies and exports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new, renamed or removed file) survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_exclusive(path: Path, data: bytes) -> None:
    """Create ``path`` (0600; FileExistsError if it exists) with ``data``, fsynced; parents 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
