"""The age v1 file format (https://age-encryption.org/v1 = c2sp.org/age), X25519 and scrypt only.

Section names in comments ("§Header MAC", ...) refer to c2sp.org/age.  Only what
recorderd needs is implemented: X25519 recipients (recordings), one scrypt stanza
(passphrase-protected identity files, like ``age -p``), binary (not armored) files.

Layout of a file::

    age-encryption.org/v1\\n          version line
    -> X25519 <share>\\n<body>\\n       one stanza per recipient
    --- <HMAC>\\n                      header MAC
    <16-byte nonce><chunk 0>...<chunk n>   STREAM payload, 64 KiB chunks + 16-byte tags
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from storage import bech32

__all__ = [
    "CHUNK_SIZE",
    "ENC_CHUNK_SIZE",
    "TAG_SIZE",
    "AgeDecryptError",
    "AgeError",
    "AgeKeyError",
    "IdentityLike",
    "RecipientLike",
    "StreamDecryptor",
    "StreamEncryptor",
    "decrypt_bytes",
    "decrypt_passphrase_identity",
    "decrypt_payload",
    "encrypt_bytes",
    "encrypt_passphrase_identity",
    "generate_identity",
    "new_stream",
    "open_stream",
    "parse_identity",
    "parse_identity_file",
    "parse_recipient",
    "read_exact",
    "recipient_of",
]

CHUNK_SIZE = 64 * 1024  # §Payload: plaintext chunk size
TAG_SIZE = 16  # Poly1305 tag
ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
FILE_KEY_SIZE = 16  # §File key
NONCE_SIZE = 16  # §Payload: nonce prefixed to the payload
MAX_SCRYPT_WORK_FACTOR = 22  # §scrypt recipient stanza: "SHOULD apply an upper limit" (age uses 22 too)
# Our own bounds (the spec sets none): cheap rejection of hostile headers.
MAX_STANZAS = 64
MAX_HEADER_LINE = 8192
MAX_HEADER_SIZE = 1 << 20

VERSION_LINE = b"age-encryption.org/v1\n"
X25519_LABEL = b"age-encryption.org/v1/X25519"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)  # §X25519/§scrypt recipient stanza: fixed all-zero AEAD nonce
_SECRET_HRP = "age-secret-key-"
_PUBLIC_HRP = "age"
_B64_LINE = re.compile(rb"[A-Za-z0-9+/]*")
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")

IdentityLike = str | X25519PrivateKey
RecipientLike = str | X25519PublicKey


class AgeError(Exception):
    """Base class for age errors."""


class AgeKeyError(AgeError, ValueError):
    """A malformed recipient or identity.  The message never contains the key."""


class AgeDecryptError(AgeError):
    """A file that cannot be decrypted.

    ``chunk_index`` is None for header (and nonce) errors, otherwise the index of the
    first payload chunk that is corrupt or missing.
    """

    def __init__(self, message: str, *, chunk_index: int | None = None) -> None:
        super().__init__(message)
        self.chunk_index = chunk_index


# --- §Conventions: unpadded, canonical base64 -------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str | bytes, what: str) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    if not _B64_LINE.fullmatch(raw) or len(raw) % 4 == 1:
        raise AgeDecryptError(f"header: {what} is not unpadded base64")
    data = base64.b64decode(raw + b"=" * (-len(raw) % 4))
    if _b64encode(data).encode("ascii") != raw:  # decoders MUST reject non-canonical encodings
        raise AgeDecryptError(f"header: {what} is non-canonical base64")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    # §Conventions: HKDF-SHA-256, 32-byte output.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


# --- §The X25519 recipient type: keys ---------------------------------------------------


def _encode_recipient(public: X25519PublicKey) -> str:
    return bech32.encode(_PUBLIC_HRP, public.public_bytes_raw())


def generate_identity() -> tuple[str, str]:
    """A fresh (``AGE-SECRET-KEY-1…``, ``age1…``) pair."""
    private = X25519PrivateKey.generate()
    identity = bech32.encode(_SECRET_HRP, private.private_bytes_raw()).upper()
    return identity, _encode_recipient(private.public_key())


def _decode_key(text: str, hrp: str, kind: str) -> bytes:
    try:
        got_hrp, data = bech32.decode(text.strip())
    except bech32.Bech32Error as e:
        raise AgeKeyError(f"{kind}: invalid Bech32: {e}") from None
    if got_hrp != hrp:
        if kind == "recipient" and got_hrp.startswith("age1"):
            raise AgeKeyError(
                "recipient: only X25519 'age1…' recipients are supported, not age1pq/tag/plugins"
            )
        raise AgeKeyError(f"{kind}: wrong prefix, expected {hrp.upper() if kind == 'identity' else hrp}1…")
    if len(data) != 32:
        raise AgeKeyError(f"{kind}: key is {len(data)} bytes, expected 32")
    return data


def parse_recipient(text: str) -> X25519PublicKey:
    """Parse an ``age1…`` X25519 recipient."""
    if text.strip().upper().startswith("AGE-SECRET-KEY-"):
        raise AgeKeyError("recipient: this is a secret key (identity); give its public 'age1…' recipient")
    return X25519PublicKey.from_public_bytes(_decode_key(text, _PUBLIC_HRP, "recipient"))


def parse_identity(text: str) -> X25519PrivateKey:
    """Parse an ``AGE-SECRET-KEY-1…`` X25519 identity."""
    return X25519PrivateKey.from_private_bytes(_decode_key(text, _SECRET_HRP, "identity"))


def recipient_of(identity: str) -> str:
    return _encode_recipient(parse_identity(identity).public_key())


def parse_identity_file(text: str) -> list[str]:
    """Identities in an age identity file (one per line, ``#`` comments and blank lines ignored)."""
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parse_identity(line)
        except AgeKeyError as e:
            raise AgeKeyError(f"identity file line {number}: {e}") from None
        found.append(line.upper())
    return found


def _private(identity: IdentityLike) -> X25519PrivateKey:
    return parse_identity(identity) if isinstance(identity, str) else identity


def _public(recipient: RecipientLike) -> X25519PublicKey:
    return parse_recipient(recipient) if isinstance(recipient, str) else recipient


# --- §Recipient stanza ------------------------------------------------------------------


@dataclass(frozen=True)
class Stanza:
    args: tuple[str, ...]
    body: bytes


def _wrap_x25519(file_key: bytes, recipient: X25519PublicKey) -> Stanza:
    # §X25519 recipient stanza: fresh ephemeral secret per stanza and file.
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient)
    wrap_key = _hkdf(shared, share + recipient.public_bytes_raw(), X25519_LABEL)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza(("X25519", _b64encode(share)), body)


def _unwrap_x25519(stanza: Stanza, identity: X25519PrivateKey) -> bytes | None:
    # §X25519 recipient stanza: MUST reject malformed stanzas, check body length before decrypting.
    if len(stanza.args) != 2:
        raise AgeDecryptError("header: X25519 stanza must have exactly two arguments")
    share = _b64decode(stanza.args[1], "X25519 ephemeral share")
    if len(share) != 32 or len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise AgeDecryptError("header: X25519 stanza has a wrong share or body length")
    try:
        shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:  # cryptography refuses an all-zero shared secret
        shared = bytes(32)
    if shared == bytes(32):  # "If the shared secret is all 0x00 bytes, ... MUST abort."
        raise AgeDecryptError("header: X25519 stanza has a low-order ephemeral share")
    salt = share + identity.public_key().public_bytes_raw()
    try:
        return ChaCha20Poly1305(_hkdf(shared, salt, X25519_LABEL)).decrypt(_ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        return None  # addressed to someone else


def _scrypt_key(passphrase: str, salt: bytes, work_factor: int) -> bytes:
    # §scrypt recipient stanza: N = 2**work factor, r = 8, p = 1, S = label || salt.
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase.encode("utf-8"))


def _wrap_scrypt(file_key: bytes, passphrase: str, work_factor: int) -> Stanza:
    salt = os.urandom(16)
    body = ChaCha20Poly1305(_scrypt_key(passphrase, salt, work_factor)).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza(("scrypt", _b64encode(salt), str(work_factor)), body)


def _unwrap_scrypt(stanza: Stanza, passphrase: str) -> bytes:
    if len(stanza.args) != 3:
        raise AgeDecryptError("header: scrypt stanza must have exactly three arguments")
    salt = _b64decode(stanza.args[1], "scrypt salt")
    if len(salt) != 16 or not _WORK_FACTOR.fullmatch(stanza.args[2]):
        raise AgeDecryptError("header: scrypt stanza has a bad salt or work factor")
    work_factor = int(stanza.args[2])
    if work_factor > MAX_SCRYPT_WORK_FACTOR:
        raise AgeDecryptError(f"header: scrypt work factor {work_factor} exceeds {MAX_SCRYPT_WORK_FACTOR}")
    if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise AgeDecryptError("header: scrypt stanza body has the wrong length")
    try:
        key = _scrypt_key(passphrase, salt, work_factor)
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        raise AgeDecryptError("wrong passphrase (or corrupted header)") from None


# --- §Header ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    stanzas: tuple[Stanza, ...]
    mac_input: bytes  # everything up to and including "---"
    mac: bytes


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    # §Header MAC: HMAC-SHA-256 keyed with HKDF(ikm = file key, salt = empty, info = "header").
    return hmac.new(_hkdf(file_key, b"", b"header"), mac_input, hashlib.sha256).digest()


def encode_header(file_key: bytes, stanzas: Sequence[Stanza]) -> bytes:
    out = [VERSION_LINE]
    for stanza in stanzas:
        out.append(("-> " + " ".join(stanza.args) + "\n").encode("ascii"))
        body = _b64encode(stanza.body).encode("ascii")
        # Body wrapped at 64 columns; the last line MUST be shorter than 64 (possibly empty).
        out.extend(body[i : i + 64] + b"\n" for i in range(0, len(body), 64))
        if len(body) % 64 == 0:
            out.append(b"\n")
    out.append(b"---")
    mac_input = b"".join(out)
    return mac_input + b" " + _b64encode(_header_mac(file_key, mac_input)).encode("ascii") + b"\n"


def read_exact(f: BinaryIO, n: int) -> bytes:
    """Read ``n`` bytes, fewer only at end of file."""
    parts: list[bytes] = []
    while n > 0:
        part = f.read(n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _header_line(f: BinaryIO) -> bytes:
    line = f.readline(MAX_HEADER_LINE + 1)
    if not line.endswith(b"\n"):
        if len(line) > MAX_HEADER_LINE:
            raise AgeDecryptError("header: line too long")
        raise AgeDecryptError("header: truncated (file ends inside the header)")
    return line


def read_header(f: BinaryIO) -> Header:
    """Parse a header (§ABNF definition of file header), leaving ``f`` at the payload."""
    first = f.readline(MAX_HEADER_LINE)
    if first != VERSION_LINE:
        if first.startswith(b"age-encryption.org/"):
            raise AgeDecryptError("header: unsupported age format version")
        if first.startswith(b"-----BEGIN AGE ENCRYPTED FILE"):
            raise AgeDecryptError("header: ASCII-armored files are not supported")
        raise AgeDecryptError("header: not an age file (bad version line)")
    mac_input = bytearray(first)
    stanzas: list[Stanza] = []
    while len(mac_input) <= MAX_HEADER_SIZE:
        line = _header_line(f)
        if line.startswith(b"--- "):
            mac_b64 = line[4:-1]
            if not stanzas or len(mac_b64) != 43:  # end = "--- " 43base64char LF
                raise AgeDecryptError("header: no stanzas or malformed MAC line")
            return Header(tuple(stanzas), bytes(mac_input + b"---"), _b64decode(mac_b64, "MAC"))
        if not line.startswith(b"-> "):
            raise AgeDecryptError("header: expected a '-> ' stanza or the '--- ' MAC line")
        if len(stanzas) >= MAX_STANZAS:
            raise AgeDecryptError(f"header: more than {MAX_STANZAS} stanzas")
        args = line[3:-1].split(b" ")  # arg-line = "-> " argument *(SP argument) LF
        if any(not arg or min(arg) < 0x21 or max(arg) > 0x7E for arg in args):
            raise AgeDecryptError("header: empty or non-printable stanza argument")
        mac_input += line
        body = bytearray()
        while True:  # *full-line final-line: 64-column lines, ended by a shorter one
            line = _header_line(f)
            mac_input += line
            if len(line) > 65:
                raise AgeDecryptError("header: stanza body line longer than 64 columns")
            if len(mac_input) > MAX_HEADER_SIZE:
                raise AgeDecryptError("header: larger than 1 MiB")
            body += line[:-1]
            if len(line) < 65:
                break
        stanzas.append(Stanza(tuple(a.decode("ascii") for a in args), _b64decode(bytes(body), "stanza body")))
    raise AgeDecryptError("header: larger than 1 MiB")


def _verify_mac(header: Header, file_key: bytes) -> None:
    if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
        raise AgeDecryptError("header: MAC mismatch (header modified or corrupted)")


def _unwrap(header: Header, identities: Sequence[IdentityLike]) -> bytes:
    kinds = [s.args[0] if s.args else "" for s in header.stanzas]
    if "scrypt" in kinds:
        if len(kinds) > 1:  # §scrypt recipient stanza: MUST be the only stanza
            raise AgeDecryptError("header: scrypt stanza mixed with other stanzas")
        raise AgeDecryptError("header: file is passphrase-encrypted; X25519 identities cannot open it")
    for identity in map(_private, identities):
        for stanza in header.stanzas:
            if stanza.args[0] == "X25519" and (key := _unwrap_x25519(stanza, identity)) is not None:
                _verify_mac(header, key)
                return key
    raise AgeDecryptError("header: no identity matches any recipient stanza (wrong key?)")


# --- §Payload: STREAM -------------------------------------------------------------------


def _chunk_nonce(counter: int, last: bool) -> bytes:
    # 11-byte big-endian chunk counter || 0x01 for the final chunk, 0x00 otherwise.
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamEncryptor:
    """Seals consecutive chunks; the caller decides which one is last."""

    def __init__(self, file_key: bytes) -> None:
        self.nonce = os.urandom(NONCE_SIZE)  # a new CSPRNG nonce for each file
        self._aead = ChaCha20Poly1305(_hkdf(file_key, self.nonce, b"payload"))
        self.chunks = 0
        self.finished = False

    def seal(self, chunk: bytes, *, last: bool) -> bytes:
        if self.finished:
            raise ValueError("stream already has its final chunk")
        if len(chunk) > CHUNK_SIZE or (not last and len(chunk) != CHUNK_SIZE):
            raise ValueError("non-final chunks must be exactly 64 KiB")
        if last and not chunk and self.chunks:
            raise ValueError("the final chunk may be empty only if the whole payload is")
        sealed = self._aead.encrypt(_chunk_nonce(self.chunks, last), chunk, None)
        self.chunks += 1
        self.finished = last
        return sealed


class StreamDecryptor:
    def __init__(self, file_key: bytes, nonce: bytes) -> None:
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))

    def open(self, index: int, sealed: bytes, *, last: bool) -> bytes | None:
        """Plaintext of chunk ``index``, or None if it does not authenticate as such."""
        try:
            return self._aead.decrypt(_chunk_nonce(index, last), sealed, None)
        except InvalidTag:
            return None


def decrypt_payload(f: BinaryIO, dec: StreamDecryptor) -> Iterator[bytes]:
    """Yield plaintext chunks; raise AgeDecryptError (with chunk_index) unless a valid
    final chunk ends the file (§Payload: "MUST signal an error if the end of file is
    reached without successfully decrypting a final chunk").  Plaintext already yielded
    is authentic but may be incomplete: discard it if this raises."""
    index = 0
    sealed = read_exact(f, ENC_CHUNK_SIZE)
    while True:
        following = read_exact(f, ENC_CHUNK_SIZE) if len(sealed) == ENC_CHUNK_SIZE else b""
        if following:  # more data follows, so this must be a full non-final chunk
            plain = dec.open(index, sealed, last=False)
            if plain is None:
                if (plain := dec.open(index, sealed, last=True)) is not None:
                    yield plain  # authentic, but the file goes on past its final chunk
                    raise AgeDecryptError(f"trailing data after final chunk {index}", chunk_index=index + 1)
                raise AgeDecryptError(f"chunk {index} failed authentication", chunk_index=index)
            yield plain
            sealed, index = following, index + 1
            continue
        if len(sealed) < TAG_SIZE:
            raise AgeDecryptError(f"file truncated: chunk {index} missing or cut short", chunk_index=index)
        plain = dec.open(index, sealed, last=True)
        if plain is None:
            if len(sealed) == ENC_CHUNK_SIZE and (plain := dec.open(index, sealed, last=False)) is not None:
                yield plain  # authentic, but no final chunk follows it
                raise AgeDecryptError(
                    f"file truncated: no final chunk after chunk {index}", chunk_index=index + 1
                )
            raise AgeDecryptError(f"final chunk {index} failed authentication", chunk_index=index)
        if not plain and index:  # §Payload: final chunk MUST NOT be empty unless the payload is
            raise AgeDecryptError(f"final chunk {index} is empty", chunk_index=index)
        yield plain
        return


# --- whole files ------------------------------------------------------------------------


def new_stream(recipients: Sequence[RecipientLike]) -> tuple[bytes, StreamEncryptor]:
    """Start a file for X25519 recipients: (header || payload nonce, encryptor)."""
    if not recipients:
        raise ValueError("at least one recipient is required")
    file_key = os.urandom(FILE_KEY_SIZE)
    header = encode_header(file_key, [_wrap_x25519(file_key, _public(r)) for r in recipients])
    enc = StreamEncryptor(file_key)
    return header + enc.nonce, enc


def _seal_all(start: bytes, enc: StreamEncryptor, data: bytes) -> bytes:
    out = [start]
    for offset in range(0, max(len(data), 1), CHUNK_SIZE):
        out.append(enc.seal(data[offset : offset + CHUNK_SIZE], last=offset + CHUNK_SIZE >= len(data)))
    return b"".join(out)


def open_stream(f: BinaryIO, identities: Sequence[IdentityLike]) -> StreamDecryptor:
    """Read and authenticate the header and the payload nonce of an X25519 file."""
    file_key = _unwrap(read_header(f), identities)
    nonce = read_exact(f, NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise AgeDecryptError("file truncated after the header (payload nonce missing)")
    return StreamDecryptor(file_key, nonce)


def encrypt_bytes(data: bytes, recipients: Sequence[RecipientLike]) -> bytes:
    return _seal_all(*new_stream(recipients), data)


def decrypt_bytes(data: bytes, identities: Sequence[IdentityLike]) -> bytes:
    f = io.BytesIO(data)
    return b"".join(decrypt_payload(f, open_stream(f, identities)))


def encrypt_passphrase_identity(identity_text: str, passphrase: str, *, work_factor: int = 18) -> bytes:
    """Protect an identity file with a passphrase, like ``age -p`` (one scrypt stanza)."""
    if not parse_identity_file(identity_text):
        raise AgeKeyError("identity file contains no identities")
    if not passphrase or not 1 <= work_factor <= MAX_SCRYPT_WORK_FACTOR:
        raise ValueError(f"need a passphrase and 1 <= work_factor <= {MAX_SCRYPT_WORK_FACTOR}")
    file_key = os.urandom(FILE_KEY_SIZE)
    header = encode_header(file_key, [_wrap_scrypt(file_key, passphrase, work_factor)])
    enc = StreamEncryptor(file_key)
    return _seal_all(header + enc.nonce, enc, identity_text.encode("utf-8"))


def decrypt_passphrase_identity(data: bytes, passphrase: str) -> list[str]:
    f = io.BytesIO(data)
    header = read_header(f)
    if [s.args[0] for s in header.stanzas] != ["scrypt"]:  # §scrypt: MUST be the only stanza
        raise AgeDecryptError("header: expected exactly one scrypt stanza (not a passphrase file)")
    file_key = _unwrap_scrypt(header.stanzas[0], passphrase)
    _verify_mac(header, file_key)
    nonce = read_exact(f, NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise AgeDecryptError("file truncated after the header (payload nonce missing)")
    text = b"".join(decrypt_payload(f, StreamDecryptor(file_key, nonce)))
    try:
        return parse_identity_file(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise AgeKeyError("decrypted identity file is not UTF-8 text") from None
