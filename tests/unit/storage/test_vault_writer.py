"""storage.vault: crash-safe AgeWriter, strict reader, salvage."""

from __future__ import annotations

import hashlib
import io
import random
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import age, vault
from storage.age import CHUNK_SIZE, ENC_CHUNK_SIZE, AgeDecryptError
from storage.vault import AgeWriter

SK, PK = age.generate_identity()
MARKER = b"\x00RECORDERD-KNOWN-PLAINTEXT-PATTERN\xff"


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _write(path: Path, data: bytes, step: int = 320, *, seal: bool = True) -> AgeWriter:
    w = AgeWriter(path, [PK], fsync=False)
    for i in range(0, len(data), step):
        w.write(data[i : i + step])
    if seal:
        w.close()
    return w


def _read(path: Path) -> bytes:
    out = io.BytesIO()
    n = vault.decrypt_file(path, [SK], out)
    assert n == len(out.getvalue())
    return out.getvalue()


def _payload_start(blob: bytes | bytearray) -> int:
    return blob.index(b"\n---") + len(b"\n--- ") + 43 + 1 + 16


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
def test_round_trip_sizes(tmp_path: Path, size: int) -> None:
    data = _data(size)
    w = _write(tmp_path / "r.age", data, step=4096)
    assert w.plaintext_bytes == size
    assert w.chunks_written == max(1, -(-size // CHUNK_SIZE))
    assert _read(tmp_path / "r.age") == data
    assert b"".join(vault.open_reader(tmp_path / "r.age", [SK])) == data


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.one_of(
        st.sampled_from([0, 1, 65535, 65536, 65537, 3 * 65536, 1_000_000]), st.integers(0, 300_000)
    ),
    splits=st.lists(st.integers(0, 70_000), min_size=1, max_size=8).filter(any),
)
def test_round_trip_any_write_pattern(tmp_path: Path, size: int, splits: list[int]) -> None:
    data = _data(size, size)
    path = tmp_path / f"h{size}-{len(splits)}.age"
    w = AgeWriter(path, [PK], fsync=False)
    offset = i = 0
    while offset < size:
        step = splits[i % len(splits)]
        w.write(data[offset : offset + step])
        offset += step
        i += 1
        # Only chunks already followed by more data are on disk.
        assert w.chunks_written == max(0, min(offset, size) - 1) // CHUNK_SIZE
    sealed = w.close()
    assert age.decrypt_bytes(path.read_bytes(), [SK]) == data
    path.unlink()
    assert sealed.path == path


def test_sealed_file_metadata_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "call.age"
    w = AgeWriter(path, [PK])  # fsync on
    assert stat.S_IMODE(w.part_path.stat().st_mode) == 0o600
    assert w.part_path.name == "call.age.part"
    assert not path.exists()
    assert w.part_path.stat().st_size > 0  # header written immediately
    w.write(_data(100_000))
    sealed = w.close()
    blob = path.read_bytes()
    assert sealed.size == len(blob) == w.ciphertext_bytes
    assert sealed.sha256 == hashlib.sha256(blob).hexdigest() == vault.sha256_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not w.part_path.exists()
    with pytest.raises(ValueError, match="sealed"):
        w.write(b"x")
    with pytest.raises(ValueError, match="sealed"):
        w.discard()


def test_refuses_to_clobber(tmp_path: Path) -> None:
    path = tmp_path / "c.age"
    w = AgeWriter(path, [PK], fsync=False)
    with pytest.raises(FileExistsError):
        AgeWriter(path, [PK], fsync=False)  # O_EXCL on the .part
    w.close()
    with pytest.raises(FileExistsError):
        AgeWriter(path, [PK], fsync=False)


def test_bad_recipient_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(age.AgeKeyError):
        AgeWriter(tmp_path / "x.age", ["age1nope"], fsync=False)
    assert list(tmp_path.iterdir()) == []


def test_discard_and_context_manager(tmp_path: Path) -> None:
    w = _write(tmp_path / "d.age", _data(200_000), seal=False)
    w.discard()
    assert list(tmp_path.iterdir()) == []
    with AgeWriter(tmp_path / "ok.age", [PK], fsync=False) as w:
        w.write(b"abc")
    assert w.sealed is not None
    assert _read(w.sealed.path) == b"abc"
    with pytest.raises(RuntimeError):
        _fail_inside_with(tmp_path / "boom.age")
    assert not (tmp_path / "boom.age").exists()
    assert vault.salvage(tmp_path / "boom.age.part", [SK]).chunks == 2


def _fail_inside_with(path: Path) -> None:
    with AgeWriter(path, [PK], fsync=False) as w:
        w.write(_data(3 * CHUNK_SIZE))
        raise RuntimeError


def test_no_plaintext_reaches_disk(tmp_path: Path) -> None:
    data = MARKER * (5 * CHUNK_SIZE // len(MARKER))
    w = _write(tmp_path / "p.age", data, seal=False)
    assert MARKER[:16] not in w.part_path.read_bytes()
    w.close()
    blob = (tmp_path / "p.age").read_bytes()
    assert all(MARKER[i : i + 12] not in blob for i in range(len(MARKER) - 12))
    assert [p.name for p in tmp_path.iterdir()] == ["p.age"]


# --- crash and salvage -----------------------------------------------------------------


def test_crash_after_three_and_a_half_chunks(tmp_path: Path) -> None:
    data = _data(7 * CHUNK_SIZE // 2)
    w = _write(tmp_path / "c.age", data, seal=False)
    # Chunk k reaches the disk when the first byte after it arrives: 3 full chunks are
    # on disk, the last half chunk (and the unsealed final chunk) only in memory.
    assert w.chunks_written == 3
    w.abort()
    part = w.part_path
    assert part.stat().st_size == _payload_start(part.read_bytes()) + 3 * ENC_CHUNK_SIZE
    got = vault.salvage(part, [SK])
    assert got.data == data[: 3 * CHUNK_SIZE]
    assert (got.complete, got.chunks) == (False, 3)
    assert got.error is not None
    assert "no final chunk" in got.error
    with pytest.raises(AgeDecryptError, match="truncated") as info:
        _read(part)
    assert info.value.chunk_index == 3


def test_flush_rule_at_exact_chunk_boundary(tmp_path: Path) -> None:
    w = AgeWriter(tmp_path / "b.age", [PK], fsync=False)
    w.write(_data(2 * CHUNK_SIZE))
    assert w.chunks_written == 1  # chunk 1 might still be the final one
    assert w.buffered_bytes == CHUNK_SIZE
    w.write(b"x")
    assert w.chunks_written == 2
    assert w.buffered_bytes == 1
    w.abort()
    assert vault.salvage(w.part_path, [SK]).data == _data(2 * CHUNK_SIZE)


def test_crash_before_any_chunk_and_torn_write(tmp_path: Path) -> None:
    w = _write(tmp_path / "e.age", b"x" * 1000, seal=False)
    w.abort()
    got = vault.salvage(w.part_path, [SK])
    assert (got.data, got.complete, got.chunks) == (b"", False, 0)
    # A torn write: half of a sealed chunk made it to disk before the crash.
    w = _write(tmp_path / "t.age", _data(3 * CHUNK_SIZE), seal=False)
    w.abort()
    with open(w.part_path, "ab") as f:
        f.write(_data(ENC_CHUNK_SIZE // 2, 7))
    got = vault.salvage(w.part_path, [SK])
    assert (got.data, got.complete, got.chunks) == (_data(3 * CHUNK_SIZE)[: 2 * CHUNK_SIZE], False, 2)
    assert got.error is not None
    assert "chunk 2" in got.error


@pytest.mark.parametrize("size", [0, 10, 2 * CHUNK_SIZE, 7 * CHUNK_SIZE // 2])
def test_salvage_sealed_file_is_complete(tmp_path: Path, size: int) -> None:
    _write(tmp_path / "s.age", _data(size))
    got = vault.salvage(tmp_path / "s.age", [SK])
    assert got == vault.Salvaged(_data(size), True, max(1, -(-size // CHUNK_SIZE)), None)


def test_salvage_stops_at_corruption_and_needs_the_key(tmp_path: Path) -> None:
    path = tmp_path / "m.age"
    _write(path, _data(7 * CHUNK_SIZE // 2))
    blob = bytearray(path.read_bytes())
    blob[_payload_start(blob) + 2 * ENC_CHUNK_SIZE + 99] ^= 4
    path.write_bytes(blob)
    got = vault.salvage(path, [SK])
    assert (got.data, got.complete, got.chunks) == (_data(7 * CHUNK_SIZE // 2)[: 2 * CHUNK_SIZE], False, 2)
    with pytest.raises(AgeDecryptError, match="header: no identity"):
        vault.salvage(path, [age.generate_identity()[0]])


# --- tamper detection by the strict reader -----------------------------------------------

SIZE = 7 * CHUNK_SIZE // 2  # chunks 0-2 full, final chunk 3 half full


@pytest.fixture(scope="module")
def sealed_blob(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("tamper") / "t.age"
    _write(path, _data(SIZE), step=8000)
    return path.read_bytes()


def _chunk_at(blob: bytes, i: int) -> int:
    return _payload_start(blob) + i * ENC_CHUNK_SIZE


def _flip(blob: bytes, pos: int) -> bytes:
    out = bytearray(blob)
    out[pos] ^= 0x10
    return bytes(out)


def _swap(blob: bytes, i: int, j: int) -> bytes:
    chunks = [blob[_chunk_at(blob, k) : _chunk_at(blob, k + 1)] for k in range(4)]
    chunks[i], chunks[j] = chunks[j], chunks[i]
    return blob[: _chunk_at(blob, 0)] + b"".join(chunks)


TAMPERS: dict[str, tuple[Callable[[bytes], bytes], int | None, str]] = {
    "flip header": (lambda b: _flip(b, 30), None, "header"),
    "flip header MAC": (lambda b: _flip(b, _payload_start(b) - 20), None, "header"),
    "flip nonce": (lambda b: _flip(b, _payload_start(b) - 5), 0, "chunk 0"),
    "flip chunk 1": (lambda b: _flip(b, _chunk_at(b, 1) + 1000), 1, "chunk 1"),
    "flip chunk 1 tag": (lambda b: _flip(b, _chunk_at(b, 2) - 1), 1, "chunk 1"),
    "flip final chunk": (lambda b: _flip(b, len(b) - 100), 3, "final chunk 3"),
    "truncate at boundary 3": (lambda b: b[: _chunk_at(b, 3)], 3, "truncated: no final chunk after chunk 2"),
    "truncate at boundary 1": (lambda b: b[: _chunk_at(b, 1)], 1, "truncated"),
    "truncate after nonce": (lambda b: b[: _chunk_at(b, 0)], 0, "truncated"),
    "truncate mid chunk 1": (lambda b: b[: _chunk_at(b, 1) + 5000], 1, "chunk 1"),
    "truncate mid final": (lambda b: b[:-1], 3, "final chunk 3"),
    "truncate to 10 bytes of chunk 3": (lambda b: b[: _chunk_at(b, 3) + 10], 3, "chunk 3"),
    "swap 0 and 1": (lambda b: _swap(b, 0, 1), 0, "chunk 0"),
    "swap 1 and 2": (lambda b: _swap(b, 1, 2), 1, "chunk 1"),
    "append a byte": (lambda b: b + b"\0", 3, "final chunk 3"),
    "append a chunk": (lambda b: b + b[_chunk_at(b, 1) : _chunk_at(b, 2)], 3, "chunk 3"),
}


def _drain_into(got: bytearray, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        got += chunk


@pytest.mark.parametrize("name", TAMPERS)
def test_tamper_is_detected(tmp_path: Path, sealed_blob: bytes, name: str) -> None:
    mutate, index, needle = TAMPERS[name]
    path = tmp_path / "x.age"
    path.write_bytes(mutate(sealed_blob))
    got = bytearray()
    with pytest.raises(AgeDecryptError, match=needle) as info:
        _drain_into(got, vault.open_reader(path, [SK]))
    assert info.value.chunk_index == index
    assert got == _data(SIZE)[: CHUNK_SIZE * (index or 0)]  # only authentic chunks were released


def test_untampered_fixture_reads(tmp_path: Path, sealed_blob: bytes) -> None:
    path = tmp_path / "ok.age"
    path.write_bytes(sealed_blob)
    assert _read(path) == _data(SIZE)
