"""Bech32 (BIP-173) as age uses it for keys.

Follows the BIP-173 reference implementation, with the one difference the age
spec (c2sp.org/age, "Conventions") asks for: no 90-character length limit on
the data part.  Bech32 strings are either all-lowercase or all-uppercase; the
checksum is always computed over the lowercase form.  This is the original
Bech32 checksum constant (1), not Bech32m.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Bech32Error", "decode", "encode"]

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """Malformed Bech32 string.  Messages never include the string itself."""


def _polymod(values: Iterable[int]) -> int:
    # BIP-173, "Checksum": the BCH code over GF(32).
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    # BIP-173 reference "convertbits", including its strict padding rules on decode.
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        raise Bech32Error("invalid padding in data part")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` as lowercase Bech32 with human-readable part ``hrp``."""
    hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    poly = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[v] for v in values + checksum)


def decode(s: str) -> tuple[str, bytes]:
    """Decode a Bech32 string, returning (lowercase hrp, data bytes)."""
    if any(ord(c) < 33 or ord(c) > 126 for c in s):
        raise Bech32Error("contains whitespace or non-ASCII characters")
    if s.lower() != s and s.upper() != s:
        raise Bech32Error("mixes upper and lower case")
    s = s.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise Bech32Error("missing separator or too short")
    hrp = s[:pos]
    try:
        values = [_CHARSET_REV[c] for c in s[pos + 1 :]]
    except KeyError:
        raise Bech32Error("invalid character in data part") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise Bech32Error("checksum mismatch (typo or truncated key?)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))
