"""Our age files against independent implementations: pyrage (rage) and the age CLI."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyrage
import pytest
import soundfile

from storage import age, audio, vault
from storage.age import CHUNK_SIZE

AGE = shutil.which("age") or "/usr/bin/age"
AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
SOX = shutil.which("sox")
needs_age_cli = pytest.mark.skipif(
    not (Path(AGE).exists() and Path(AGE_KEYGEN).exists()), reason="age CLI (age, age-keygen) not installed"
)
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 1_000_003]


def _data(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def _sealed(path: Path, data: bytes, recipients: list[str]) -> Path:
    w = vault.AgeWriter(path, recipients, fsync=False)
    for i in range(0, len(data), 320):
        w.write(data[i : i + 320])
    return w.close().path


@pytest.fixture(scope="module")
def cli_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(key file, identity, recipient) from age-keygen."""
    if not Path(AGE_KEYGEN).exists():
        pytest.skip("age-keygen not installed")
    keyfile = tmp_path_factory.mktemp("keys") / "key.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(keyfile)], check=True, capture_output=True)
    text = keyfile.read_text()
    (identity,) = age.parse_identity_file(text)
    recipient = next(line.split(": ")[1] for line in text.splitlines() if line.startswith("# public key: "))
    return keyfile, identity, recipient


# --- keys ---------------------------------------------------------------------------------


def test_pyrage_keys_and_ours_agree() -> None:
    theirs = pyrage.x25519.Identity.generate()
    assert age.recipient_of(str(theirs)) == str(theirs.to_public())
    sk, pk = age.generate_identity()
    assert str(pyrage.x25519.Identity.from_str(sk).to_public()) == pk
    pyrage.x25519.Recipient.from_str(pk)


@needs_age_cli
def test_age_keygen_keys_and_ours_agree(tmp_path: Path, cli_key: tuple[Path, str, str]) -> None:
    _, identity, recipient = cli_key
    assert age.recipient_of(identity) == recipient
    sk, pk = age.generate_identity()
    (tmp_path / "ours.txt").write_text(sk + "\n")
    out = subprocess.run([AGE_KEYGEN, "-y", str(tmp_path / "ours.txt")], check=True, capture_output=True)
    assert out.stdout.decode().strip() == pk


# --- payloads both ways -------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_pyrage_both_ways(tmp_path: Path, size: int) -> None:
    sk, pk = age.generate_identity()
    data = _data(size)
    ours = _sealed(tmp_path / "o.age", data, [pk]).read_bytes()
    assert pyrage.decrypt(ours, [pyrage.x25519.Identity.from_str(sk)]) == data
    theirs = pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(pk)])
    assert age.decrypt_bytes(theirs, [sk]) == data
    (tmp_path / "t.age").write_bytes(theirs)
    assert vault.salvage(tmp_path / "t.age", [sk]).complete


def test_pyrage_rejects_crashed_part_that_we_salvage(tmp_path: Path) -> None:
    sk, pk = age.generate_identity()
    w = vault.AgeWriter(tmp_path / "c.age", [pk], fsync=False)
    w.write(_data(3 * CHUNK_SIZE + 10))
    w.abort()
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(w.part_path.read_bytes(), [pyrage.x25519.Identity.from_str(sk)])
    assert vault.salvage(w.part_path, [sk]).data == _data(3 * CHUNK_SIZE + 10)[: 3 * CHUNK_SIZE]


@needs_age_cli
@pytest.mark.parametrize("size", SIZES)
def test_age_cli_both_ways(tmp_path: Path, cli_key: tuple[Path, str, str], size: int) -> None:
    keyfile, identity, recipient = cli_key
    data = _data(size)
    ours = _sealed(tmp_path / "o.age", data, [recipient])
    out = subprocess.run([AGE, "-d", "-i", str(keyfile), str(ours)], check=True, capture_output=True)
    assert out.stdout == data
    theirs = tmp_path / "t.age"
    subprocess.run([AGE, "-r", recipient, "-o", str(theirs)], input=data, check=True)
    assert b"".join(vault.open_reader(theirs, [identity])) == data


@needs_age_cli
def test_age_cli_multiple_recipients(tmp_path: Path, cli_key: tuple[Path, str, str]) -> None:
    keyfile, _identity, recipient = cli_key
    sk, pk = age.generate_identity()
    ours = _sealed(tmp_path / "o.age", b"two readers", [pk, recipient])
    out = subprocess.run([AGE, "-d", "-i", str(keyfile), str(ours)], check=True, capture_output=True)
    assert out.stdout == b"two readers"
    theirs = tmp_path / "t.age"
    subprocess.run([AGE, "-r", recipient, "-r", pk, "-o", str(theirs)], input=b"x", check=True)
    assert age.decrypt_bytes(theirs.read_bytes(), [sk]) == b"x"


@needs_age_cli
def test_age_cli_rejects_tampered_file(tmp_path: Path, cli_key: tuple[Path, str, str]) -> None:
    keyfile, _, recipient = cli_key
    blob = bytearray(_sealed(tmp_path / "o.age", _data(2 * CHUNK_SIZE + 5), [recipient]).read_bytes())
    blob[-CHUNK_SIZE] ^= 1
    (tmp_path / "bad.age").write_bytes(blob)
    result = subprocess.run([AGE, "-d", "-i", str(keyfile), str(tmp_path / "bad.age")], capture_output=True)
    assert result.returncode != 0


# --- passphrase-protected identity files ---------------------------------------------------


def test_our_passphrase_identity_opens_with_pyrage() -> None:
    sk, pk = age.generate_identity()
    text = f"# public key: {pk}\n{sk}\n"
    blob = age.encrypt_passphrase_identity(text, "kōhī ☕ passphrase", work_factor=10)
    assert pyrage.passphrase.decrypt(blob, "kōhī ☕ passphrase").decode() == text
    with pytest.raises(pyrage.DecryptError):
        pyrage.passphrase.decrypt(blob, "wrong")


@pytest.mark.slow
def test_pyrage_passphrase_identity_opens_with_ours() -> None:
    # rage picks its own scrypt work factor (~1 s of work; 19 here), hence "slow".
    sk, _ = age.generate_identity()
    blob = pyrage.passphrase.encrypt(f"# comment\n{sk}\n".encode(), "secret")
    assert age.decrypt_passphrase_identity(blob, "secret") == [sk]


# --- end to end: slin -> AU -> age -> age CLI -> sox ----------------------------------------


@needs_age_cli
@pytest.mark.skipif(SOX is None, reason="sox is not installed")
def test_recording_plays_after_cli_decrypt(tmp_path: Path, cli_key: tuple[Path, str, str]) -> None:
    assert SOX is not None
    keyfile, _, recipient = cli_key
    t = np.arange(8000 * 3) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2")
    w = vault.AgeWriter(tmp_path / "call.au.age", [recipient], fsync=False)
    w.write(audio.au_header())
    frames = pcm.tobytes()
    for i in range(0, len(frames), 320):
        w.write(audio.slin_to_au_payload(frames[i : i + 320]))
    sealed = w.close()
    plain = subprocess.run([AGE, "-d", "-i", str(keyfile), str(sealed.path)], check=True, capture_output=True)
    (tmp_path / "call.au").write_bytes(plain.stdout)
    wav = tmp_path / "call.wav"
    subprocess.run([SOX, "-t", "au", str(tmp_path / "call.au"), "-t", "wav", str(wav)], check=True)
    samples, rate = soundfile.read(wav, dtype="int16")
    assert rate == 8000
    assert np.array_equal(samples, pcm)
