"""storage.age / storage.bech32: keys, header grammar, STREAM rules (c2sp.org/age)."""

from __future__ import annotations

import base64
import io
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import age, bech32
from storage.age import CHUNK_SIZE, ENC_CHUNK_SIZE, AgeDecryptError, AgeKeyError

SK, PK = age.generate_identity()
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _header_len(blob: bytes | bytearray) -> int:
    return blob.index(b"\n---") + len(b"\n--- ") + 43 + 1


# --- bech32 (BIP-173 test vectors) --------------------------------------------------------


@pytest.mark.parametrize(
    "s",
    [
        "A12UEL5L",
        "a12uel5l",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    ],
)
def test_bech32_bip173_valid(s: str) -> None:
    hrp, data = bech32.decode(s)
    assert bech32.encode(hrp, data) == s.lower()


@pytest.mark.parametrize("s", ["A1G7SGD8", "10a06t8", "1qzzfhee", "x1b4n0q5v", "li1dgmt3", "aBcDeF1qqqqqq"])
def test_bech32_bip173_invalid(s: str) -> None:
    with pytest.raises(bech32.Bech32Error):
        bech32.decode(s)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20), st.binary(max_size=200))
def test_bech32_round_trip_without_length_limit(hrp: str, data: bytes) -> None:
    assert bech32.decode(bech32.encode(hrp, data)) == (hrp, data)


# --- keys ---------------------------------------------------------------------------------


def test_spec_example_key_pair() -> None:
    assert age.recipient_of(SPEC_IDENTITY) == SPEC_RECIPIENT
    assert age.recipient_of(SPEC_IDENTITY.lower()) == SPEC_RECIPIENT


def test_generate_identity_shape() -> None:
    assert SK.startswith("AGE-SECRET-KEY-1")
    assert SK.upper() == SK
    assert len(SK) == 74
    assert PK.startswith("age1")
    assert len(PK) == 62
    assert age.recipient_of(SK) == PK
    assert age.recipient_of(f"  {SK}\n") == PK


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (SPEC_RECIPIENT[:-1] + "q", "checksum"),
        (SPEC_RECIPIENT.upper()[:10] + SPEC_RECIPIENT[10:], "case"),
        ("age1pq1" + SPEC_RECIPIENT[4:], "Bech32"),
        (bech32.encode("age1pq", bytes(32)), "only X25519"),
        (bech32.encode("bge", bytes(32)), "prefix"),
        (bech32.encode("age", bytes(31)), "31 bytes"),
        ("", "Bech32"),
    ],
)
def test_parse_recipient_errors(text: str, needle: str) -> None:
    with pytest.raises(AgeKeyError, match=needle):
        age.parse_recipient(text)


def test_key_errors_never_echo_secrets() -> None:
    typo = SK[:20] + ("Q" if SK[20] != "Q" else "P") + SK[21:]
    for bad, parse in [(SK, age.parse_recipient), (typo, age.parse_identity), (SK[:-3], age.parse_identity)]:
        with pytest.raises(AgeKeyError) as info:
            parse(bad)
        assert SK[16:40] not in str(info.value)
        assert typo[16:40] not in str(info.value)
    with pytest.raises(AgeKeyError, match="secret key"):
        age.parse_recipient(SK)
    with pytest.raises(AgeKeyError, match="prefix"):
        age.parse_identity(PK)


def test_parse_identity_file() -> None:
    sk2, _ = age.generate_identity()
    text = f"# created: now\n# public key: {PK}\n{SK}\n\n  {sk2.lower()}  \n"
    assert age.parse_identity_file(text) == [SK, sk2]
    with pytest.raises(AgeKeyError, match="line 2") as info:
        age.parse_identity_file(f"{SK}\n{SK[:-1]}\n")
    assert SK[16:40] not in str(info.value)


# --- round trips and STREAM chunking -------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
def test_round_trip_and_chunk_layout(size: int) -> None:
    data = _data(size)
    blob = age.encrypt_bytes(data, [PK])
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(blob) == _header_len(blob) + 16 + size + 16 * chunks  # §Payload: last chunk never empty
    assert age.decrypt_bytes(blob, [SK]) == data


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.integers(0, 3 * CHUNK_SIZE + 5), st.just(1_000_000)))
def test_round_trip_random_sizes(size: int) -> None:
    data = _data(size, size)
    assert age.decrypt_bytes(age.encrypt_bytes(data, [PK]), [SK]) == data


def test_multiple_recipients_and_identities() -> None:
    sk2, pk2 = age.generate_identity()
    sk3, _ = age.generate_identity()
    blob = age.encrypt_bytes(b"hello", [PK, age.parse_recipient(pk2)])
    assert blob.count(b"\n-> X25519 ") == 2
    assert age.decrypt_bytes(blob, [sk3, sk2]) == b"hello"
    assert age.decrypt_bytes(blob, [age.parse_identity(SK)]) == b"hello"
    with pytest.raises(AgeDecryptError, match="header: no identity") as info:
        age.decrypt_bytes(blob, [sk3])
    assert info.value.chunk_index is None
    with pytest.raises(ValueError, match="recipient"):
        age.encrypt_bytes(b"", [])


def test_stream_encryptor_enforces_spec_rules() -> None:
    enc = age.StreamEncryptor(os.urandom(16))
    with pytest.raises(ValueError, match="64 KiB"):
        enc.seal(b"x", last=False)
    enc.seal(bytes(CHUNK_SIZE), last=False)
    with pytest.raises(ValueError, match="empty"):
        enc.seal(b"", last=True)
    enc.seal(b"x", last=True)
    with pytest.raises(ValueError, match="final"):
        enc.seal(b"x", last=True)


def test_empty_final_chunk_after_data_is_rejected() -> None:
    file_key = os.urandom(16)
    header = age.encode_header(file_key, [age._wrap_x25519(file_key, age.parse_recipient(PK))])
    enc = age.StreamEncryptor(file_key)
    aead_nonce = (1).to_bytes(11, "big") + b"\x01"
    blob = header + enc.nonce + enc.seal(bytes(CHUNK_SIZE), last=False)
    blob += enc._aead.encrypt(aead_nonce, b"", None)  # hand-made empty final chunk 1
    with pytest.raises(AgeDecryptError, match="empty") as info:
        age.decrypt_bytes(blob, [SK])
    assert info.value.chunk_index == 1


# --- tamper detection at the byte level -------------------------------------------------


def test_every_header_bit_flip_is_a_header_error() -> None:
    blob = age.encrypt_bytes(_data(100), [PK])
    for pos in range(_header_len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 1 << (pos % 8)
        with pytest.raises(AgeDecryptError, match="header") as info:
            age.decrypt_bytes(bytes(bad), [SK])
        assert info.value.chunk_index is None


def test_nonce_flip_fails_chunk_zero() -> None:
    blob = bytearray(age.encrypt_bytes(_data(100), [PK]))
    blob[_header_len(blob) + 3] ^= 0x80
    with pytest.raises(AgeDecryptError) as info:
        age.decrypt_bytes(bytes(blob), [SK])
    assert info.value.chunk_index == 0


def test_full_final_chunk_plus_trailing_byte() -> None:
    blob = age.encrypt_bytes(_data(2 * CHUNK_SIZE), [PK])
    assert age.decrypt_bytes(blob, [SK]) == _data(2 * CHUNK_SIZE)
    with pytest.raises(AgeDecryptError, match="trailing data after final chunk 1") as info:
        age.decrypt_bytes(blob + b"\0", [SK])
    assert info.value.chunk_index == 2
    with pytest.raises(AgeDecryptError, match="truncated: no final chunk after chunk 0") as info:
        age.decrypt_bytes(blob[:-ENC_CHUNK_SIZE], [SK])
    assert info.value.chunk_index == 1


# --- header grammar (§ABNF definition of file header) -----------------------------------


def _valid() -> bytes:
    return age.encrypt_bytes(b"payload", [PK])


def _replace_line(blob: bytes, index: int, new: bytes) -> bytes:
    lines = blob[: _header_len(blob)].split(b"\n")
    lines[index] = new
    return b"\n".join(lines) + blob[_header_len(blob) :]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda b: b.replace(b"age-encryption.org/v1\n", b"age-encryption.org/v2\n", 1), "version"),
        (lambda b: b.replace(b"\n", b"\r\n", 1), "version"),
        (lambda b: b"-----BEGIN AGE ENCRYPTED FILE-----\n" + b, "armored"),
        (lambda b: b"", "not an age file"),
        (lambda b: b.replace(b"-> X25519 ", b"->  X25519 ", 1), "argument"),
        (lambda b: b.replace(b"-> X25519 ", b"-> X25519 \x01", 1), "argument"),
        (lambda b: _replace_line(b, 2, b""), "body length"),
        (lambda b: _replace_line(b, 2, b.split(b"\n")[2] + b"="), "base64"),
        (lambda b: _replace_line(b, 2, b"A" * 65), "64 columns"),
        (lambda b: _replace_line(b, 3, b"---" + b.split(b"\n")[3][4:]), "MAC line"),
        (lambda b: _replace_line(b, 3, b.split(b"\n")[3] + b" "), "MAC line"),
        (lambda b: _replace_line(b, 3, b"--- " + b"A" * 42 + b"B"), "non-canonical"),
        (lambda b: b[: _header_len(b) - 10], "truncated"),
        (lambda b: b[: _header_len(b)], "nonce"),
        (lambda b: b.replace(b"\n---", b"\n" + b"-> x\n\n" * 65 + b"---", 1), "more than 64 stanzas"),
    ],
)
def test_malformed_headers(mutate: object, needle: str) -> None:
    assert callable(mutate)
    with pytest.raises(AgeDecryptError, match=needle) as info:
        age.decrypt_bytes(mutate(_valid()), [SK])
    assert info.value.chunk_index is None


def _with_stanzas(stanzas: list[age.Stanza], file_key: bytes | None = None) -> bytes:
    file_key = file_key or os.urandom(16)
    enc = age.StreamEncryptor(file_key)
    return age._seal_all(age.encode_header(file_key, stanzas) + enc.nonce, enc, b"ok")


def test_unknown_stanzas_are_ignored_and_long_bodies_wrap() -> None:
    file_key = os.urandom(16)
    grease = age.Stanza(("example.com/grease", "a+b"), os.urandom(48))  # 64 base64 chars: empty final line
    blob = _with_stanzas([grease, age._wrap_x25519(file_key, age.parse_recipient(PK))], file_key)
    assert b"\n\n-> X25519" in blob
    assert age.decrypt_bytes(blob, [SK]) == b"ok"
    assert age.read_header(io.BytesIO(blob)).stanzas[0] == grease


@pytest.mark.parametrize(
    ("stanza", "needle"),
    [
        (age.Stanza(("X25519", base64.b64encode(bytes(32)).decode().rstrip("=")), bytes(32)), "low-order"),
        (age.Stanza(("X25519",), bytes(32)), "two arguments"),
        (age.Stanza(("X25519", "AAAA"), bytes(32)), "length"),
        (age.Stanza(("X25519", base64.b64encode(os.urandom(32)).decode().rstrip("=")), bytes(33)), "length"),
    ],
)
def test_malformed_x25519_stanzas(stanza: age.Stanza, needle: str) -> None:
    with pytest.raises(AgeDecryptError, match=needle):
        age.decrypt_bytes(_with_stanzas([stanza]), [SK])


# --- passphrase-protected identity files (scrypt stanza) ---------------------------------


def test_passphrase_identity_round_trip() -> None:
    text = f"# created by recorderctl\n# public key: {PK}\n{SK}\n"
    blob = age.encrypt_passphrase_identity(text, "correct horse", work_factor=10)
    assert blob.split(b"\n")[1].startswith(b"-> scrypt ")
    assert blob.split(b"\n")[1].endswith(b" 10")
    assert SK.encode() not in blob
    assert age.decrypt_passphrase_identity(blob, "correct horse") == [SK]
    with pytest.raises(AgeDecryptError, match="wrong passphrase"):
        age.decrypt_passphrase_identity(blob, "wrong horse")
    with pytest.raises(AgeDecryptError, match="passphrase-encrypted"):
        age.decrypt_bytes(blob, [SK])
    with pytest.raises(AgeDecryptError, match="scrypt stanza"):
        age.decrypt_passphrase_identity(age.encrypt_bytes(text.encode(), [PK]), "x")


def test_passphrase_identity_input_checks() -> None:
    with pytest.raises(AgeKeyError, match="no identities"):
        age.encrypt_passphrase_identity("# nothing\n", "pw", work_factor=10)
    with pytest.raises(ValueError, match="work_factor"):
        age.encrypt_passphrase_identity(SK, "pw", work_factor=23)
    with pytest.raises(ValueError, match="passphrase"):
        age.encrypt_passphrase_identity(SK, "", work_factor=10)


def _scrypt(work_factor: str, salt: bytes = bytes(16)) -> age.Stanza:
    return age.Stanza(("scrypt", base64.b64encode(salt).decode().rstrip("="), work_factor), os.urandom(32))


@pytest.mark.parametrize(
    ("stanzas", "needle"),
    [
        ([_scrypt("23")], "exceeds 22"),  # rejected before any scrypt work
        ([_scrypt("018")], "work factor"),
        ([_scrypt("0x10")], "work factor"),
        ([_scrypt("-1")], "work factor"),
        ([_scrypt("10", bytes(15))], "salt"),
        ([_scrypt("10"), _scrypt("10")], "exactly one scrypt"),
    ],
)
def test_malformed_scrypt_stanzas(stanzas: list[age.Stanza], needle: str) -> None:
    with pytest.raises(AgeDecryptError, match=needle):
        age.decrypt_passphrase_identity(_with_stanzas(stanzas), "pw")


def test_scrypt_mixed_with_x25519_is_rejected() -> None:
    file_key = os.urandom(16)
    blob = _with_stanzas([age._wrap_x25519(file_key, age.parse_recipient(PK)), _scrypt("10")], file_key)
    with pytest.raises(AgeDecryptError, match="mixed"):
        age.decrypt_bytes(blob, [SK])
    with pytest.raises(AgeDecryptError, match="exactly one scrypt"):
        age.decrypt_passphrase_identity(blob, "pw")


def test_oversized_header_is_rejected() -> None:
    huge = _valid().replace(b"\n---", b"\n-> big\n" + (b"A" * 64 + b"\n") * 20_000 + b"\n---", 1)
    with pytest.raises(AgeDecryptError, match="larger than 1 MiB"):
        age.decrypt_bytes(huge, [SK])
