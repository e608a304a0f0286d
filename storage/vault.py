"""Crash-safe encrypted recording files (age v1, see storage/age.py).

Writing: ``AgeWriter`` streams plaintext into ``<final>.part`` (0o600, O_EXCL).  The
header and payload nonce are written and fsynced at once; each 64 KiB chunk is sealed,
written and fsynced as soon as the next byte arrives (only then is it known not to be
the final chunk, c2sp.org/age §Payload).  So at any moment at most 64 KiB of
plaintext is only in memory, and nothing but ciphertext ever reaches the disk.
``close()`` seals the final chunk, fsyncs, renames ``.part`` -> final and fsyncs
the directory.

After a crash the ``.part`` is a valid age header plus non-final chunks with no final
chunk: standard readers (and ``open_reader``) reject it as truncated, as the spec
demands; ``salvage()`` returns its authenticated prefix.  Both need a secret key, so
salvage happens wherever the identities are, not on the recording host.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from storage import age
from storage.age import CHUNK_SIZE, ENC_CHUNK_SIZE, TAG_SIZE, AgeDecryptError, read_exact
from storage.files import fsync_dir

__all__ = [
    "PART_SUFFIX",
    "AgeDecryptError",
    "AgeWriter",
    "Salvaged",
    "SealedFile",
    "decrypt_file",
    "open_reader",
    "salvage",
    "sha256_file",
]

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class SealedFile:
    path: Path
    size: int  # ciphertext bytes
    sha256: str  # hex digest of the ciphertext file


@dataclass(frozen=True)
class Salvaged:
    data: bytes
    complete: bool  # a valid final chunk ended the file
    chunks: int  # authenticated chunks recovered
    error: str | None  # why it is incomplete


class AgeWriter:
    """Streaming age encryption to ``<final_path>.part``.  Not thread-safe; blocking I/O
    (a chunk write + fsync roughly every 64 KiB of input)."""

    def __init__(self, final_path: Path, recipients: Sequence[age.RecipientLike], *, fsync: bool = True):
        self.path = Path(final_path)
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self._fsync = fsync
        self._buf = bytearray()
        self._plain = 0
        self._size = 0
        self._hash = hashlib.sha256()
        self._state = "open"  # open -> sealed | aborted | discarded | failed
        self.sealed: SealedFile | None = None
        if self.path.exists():
            raise FileExistsError(f"{self.path} already exists")
        start, self._enc = age.new_stream(recipients)  # bad recipients fail before any file exists
        self._fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            self._write_out(start)
            if fsync:
                os.fsync(self._fd)
                fsync_dir(self.part_path.parent)  # the .part itself must survive a crash
        except BaseException:
            os.close(self._fd)
            self.part_path.unlink(missing_ok=True)
            raise

    @property
    def plaintext_bytes(self) -> int:
        return self._plain

    @property
    def chunks_written(self) -> int:
        return self._enc.chunks

    @property
    def ciphertext_bytes(self) -> int:
        return self._size

    @property
    def buffered_bytes(self) -> int:
        """Plaintext held only in memory; a write taking this past 64 KiB does disk I/O."""
        return len(self._buf)

    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"AgeWriter for {self.path.name} is {self._state}")

    def _write_out(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except BaseException:
            self._state = "failed"  # the .part stays, salvageable up to its last whole chunk
            raise
        self._hash.update(data)
        self._size += len(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data``; seal, write and fsync every chunk it shows is not the last.

        A chunk is sealed straight from ``data`` where it can be (no copy into the buffer), and
        the chunks one call completes share one fsync: a recorder that hands over 64 KiB at a
        time pays one encryption, one write and one fsync per chunk, nothing more."""
        self._check_open()
        view = memoryview(data).cast("B")
        size = view.nbytes
        self._plain += size
        buf = self._buf
        if len(buf) + size <= CHUNK_SIZE:  # nothing follows a full chunk yet
            buf += view
            return
        pos = 0
        if buf:  # complete the buffered chunk: the rest of ``data`` follows it
            pos = CHUNK_SIZE - len(buf)
            buf += view[:pos]
            self._write_out(self._seal(buf))
            buf.clear()
        while size - pos > CHUNK_SIZE:  # more data follows this chunk: it is not the last
            self._write_out(self._seal(view[pos : pos + CHUNK_SIZE]))
            pos += CHUNK_SIZE
        buf += view[pos:]
        if self._fsync:
            os.fsync(self._fd)

    def _seal(self, chunk: bytearray | memoryview) -> bytes:
        # The AEAD reads any buffer: sealing a view of the caller's data saves a 64 KiB copy.
        return self._enc.seal(cast(bytes, chunk), last=False)

    def close(self) -> SealedFile:
        """Seal the final chunk (empty only if nothing was written) and publish the file."""
        self._check_open()
        self._write_out(self._enc.seal(bytes(self._buf), last=True))
        self._buf.clear()
        if self._fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._state = "sealed"
        if self.path.exists():  # rename would silently replace it
            raise FileExistsError(
                f"{self.path} appeared while recording; ciphertext left in {self.part_path}"
            )
        os.rename(self.part_path, self.path)
        if self._fsync:
            fsync_dir(self.path.parent)
        self.sealed = SealedFile(self.path, self._size, self._hash.hexdigest())
        return self.sealed

    def abort(self) -> None:
        """Stop without sealing, leaving the ``.part`` exactly as a crash would."""
        if self._state in ("open", "failed"):
            os.close(self._fd)
            self._buf.clear()
            self._state = "aborted"

    def discard(self) -> None:
        """Stop and delete the ``.part``."""
        if self._state == "sealed":
            raise ValueError(f"{self.path.name} is already sealed")
        self.abort()
        self.part_path.unlink(missing_ok=True)
        self._state = "discarded"

    def __enter__(self) -> AgeWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Seal on success (result in ``.sealed``); on an exception behave like a crash."""
        if exc_type is not None:
            self.abort()
        elif self._state == "open":
            self.close()


def open_reader(path: Path, identities: Sequence[age.IdentityLike]) -> Iterator[bytes]:
    """Authenticate the header now, then yield plaintext chunks.  Raises AgeDecryptError
    (with chunk_index) on truncation, reordering, corruption or trailing data; chunks
    yielded before the error are authentic but the recording is incomplete."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    try:
        dec = age.open_stream(f, identities)
    except BaseException:
        f.close()
        raise
    return _chunks(f, dec)


def _chunks(f: BinaryIO, dec: age.StreamDecryptor) -> Iterator[bytes]:
    with f:
        yield from age.decrypt_payload(f, dec)


def decrypt_file(path: Path, identities: Sequence[age.IdentityLike], out: BinaryIO) -> int:
    """Decrypt into ``out``; returns plaintext bytes.  On error ``out`` holds a prefix: discard it."""
    total = 0
    for chunk in open_reader(path, identities):
        out.write(chunk)
        total += len(chunk)
    return total


def salvage(path: Path, identities: Sequence[age.IdentityLike]) -> Salvaged:
    """All plaintext up to the last authenticated chunk of a possibly crashed file.

    Each full chunk is tried as non-final, then as final; a trailing fragment only as
    final.  Header errors (wrong key, not an age file) raise AgeDecryptError."""
    parts: list[bytes] = []
    with open(path, "rb") as f:
        dec = age.open_stream(f, identities)
        index = 0
        sealed = read_exact(f, ENC_CHUNK_SIZE)
        while True:
            if not sealed:
                reason = f"no final chunk after {index} chunks (the writer did not finish)"
                return Salvaged(b"".join(parts), False, index, reason)
            following = read_exact(f, ENC_CHUNK_SIZE) if len(sealed) == ENC_CHUNK_SIZE else b""
            plain = dec.open(index, sealed, last=False) if len(sealed) == ENC_CHUNK_SIZE else None
            if plain is not None:
                parts.append(plain)
                sealed, index = following, index + 1
                continue
            final = dec.open(index, sealed, last=True) if len(sealed) >= TAG_SIZE else None
            if final is not None and (final or index == 0):
                parts.append(final)
                error = f"trailing data after final chunk {index}" if following else None
                return Salvaged(b"".join(parts), not following, index + 1, error)
            reason = f"chunk {index} is incomplete or corrupt; {len(sealed)}+ bytes from it on are lost"
            return Salvaged(b"".join(parts), False, index, reason)


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
