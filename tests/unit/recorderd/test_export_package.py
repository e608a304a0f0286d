"""The export package format: written, verified offline, and one changed byte anywhere fails."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorderd.config.people import ExportPolicy
from recorderd.records import package
from recorderd.records.export import keep_until
from storage import ledger, signing


def _entry() -> ledger.Entry:
    at, detail = "2026-11-22T01:00:00.000000+00:00", {"calls": ["c1"]}
    digest = ledger.chain_hash(
        ledger.GENESIS, ledger.canonical(1, at, "exported", "kanri", None, "EX-1", detail)
    )
    return ledger.Entry(1, at, "exported", "kanri", None, "EX-1", detail, ledger.GENESIS, digest)


E1 = _entry()


def make(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    out = tmp_path / "pkg"
    package.write(
        out,
        manifest={"package": "EX-1", "ledger": {"export_entry": {"seq": 1, "hash": E1.hash}}},
        audio={"c1.wav": bytes(range(256)) * 8, "c2.wav.age": b"age-encryption.org/v1\n..."},
        notice="遵守事項\n",
        excerpt=[E1],
        key=key,
    )
    return out


def test_package_verifies_and_every_single_changed_byte_fails(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pkg = make(tmp_path, key)
    info = package.verify(pkg, trusted_key=signing.public_b64(key))
    assert info.problems == [] and info.files_checked == 4
    assert info.fingerprint == signing.fingerprint(signing.public_b64(key))
    files = sorted(p for p in pkg.rglob("*") if p.is_file())
    assert [str(p.relative_to(pkg)) for p in files] == [
        "NOTICE.txt",
        "audio/c1.wav",
        "audio/c2.wav.age",
        "ledger.jsonl",
        "manifest.json",
        "manifest.sig",
    ]
    for path in files:
        original = path.read_bytes()
        for offset in sorted({0, len(original) // 2, len(original) - 1}):
            changed = bytearray(original)
            changed[offset] ^= 0x01
            path.write_bytes(bytes(changed))
            problems = package.verify(pkg).problems
            assert problems, f"{path.name} byte {offset} changed but the package verified"
        path.write_bytes(original)
    assert package.verify(pkg).problems == []


def test_added_removed_and_foreign_signed(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pkg = make(tmp_path, key)
    (pkg / "audio" / "extra.wav").write_bytes(b"smuggled")
    assert package.verify(pkg).problems == ["audio/extra.wav: not listed in the manifest"]
    (pkg / "audio" / "extra.wav").unlink()
    (pkg / "NOTICE.txt").unlink()
    assert package.verify(pkg).problems == ["NOTICE.txt: missing"]
    other = make(tmp_path / "o", Ed25519PrivateKey.generate())
    assert (
        "not by the key you trust" in package.verify(other, trusted_key=signing.public_b64(key)).problems[0]
    )
    with pytest.raises(FileExistsError):  # never writes into an existing package
        make(tmp_path / "o", key)


SAITAMA = {"keep_unit": "fiscal_year_end", "keep_count": 1}


TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("policy", "made", "expected"),
    [
        # The copy's own clock, from the instant it is made (Asia/Tokyo), by the Civil Code.
        (
            SAITAMA,
            dt.datetime(2026, 11, 22, 10, tzinfo=TOKYO),
            dt.date(2028, 3, 31),
        ),  # FY2026 → end of FY2027
        (SAITAMA, dt.datetime(2027, 3, 31, 23, 59, tzinfo=TOKYO), dt.date(2028, 3, 31)),  # still FY2026
        (
            SAITAMA,
            dt.datetime(2027, 3, 31, 15, tzinfo=dt.UTC),
            dt.date(2029, 3, 31),
        ),  # 00:00 JST 1 Apr: FY2027
        # 90 days from 10:00 on 22 Nov 2026: day 1 = 23 Nov (民法第140条); day 90 = 20 Feb 2027
        # (8 days of November + 31 + 31 + 20).
        ({}, dt.datetime(2026, 11, 22, 10, tzinfo=TOKYO), dt.date(2027, 2, 20)),
    ],
)
def test_export_copy_retention(policy: dict[str, object], made: dt.datetime, expected: dt.date) -> None:
    assert keep_until(ExportPolicy.model_validate(policy), made, TOKYO) == expected
