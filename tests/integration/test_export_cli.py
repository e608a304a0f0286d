"""Export copies end to end through recorderctl, on the Saitama rules: nobody hears raw recordings;
the operations manager instructs, the contractor makes the output data; the package verifies offline."""

from __future__ import annotations

import io
import shlex
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from recorderd.cli.ctl import main as ctl_main
from recorderd.records import export
from storage import ledger
from storage.age import AgeDecryptError, decrypt_bytes, encrypt_passphrase_identity, generate_identity
from storage.models import Call
from support.people import Site, make_site, person, seed_call

# Each test runs on SQLite and on a real PostgreSQL server (tests/conftest.py: backend).
pytestmark = pytest.mark.usefixtures("backend")

SAITAMA = """
[people.roles]
operations_manager = ["manage_users", "search", "instruct", "hold", "delete", "audit"]
contractor = ["export"]
handler = []
manager = []
[exports]
two_person = true
keep_unit = "fiscal_year_end"
keep_count = 1
"""


@pytest.fixture
def ctl(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    def run(site: Site, command: str, password: str | None = None) -> int:
        """recorderctl with this site's config; ``password`` as the signed-in person would type it."""
        if password is not None:
            monkeypatch.setenv("RECORDERD_PASSWORD", password)
        return ctl_main([*site.args(), *shlex.split(command)])

    return run


def pcm_of(wav_bytes: bytes) -> bytes:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        return w.readframes(w.getnframes())


def test_saitama_output_data(
    tmp_path: Path,
    ctl: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = make_site(tmp_path, SAITAMA, municipality="さいたまコールセンター")
    call_id, pcm = seed_call(site)
    person(site.people(), None, "kocho", "operations_manager", "kocho-password")
    assert not site.people().keyring.holders()  # the operations manager holds no key
    # The contractor's key copy comes from the identity made at installation ('keys init').
    id_file = tmp_path / "identity.age"
    id_file.write_bytes(encrypt_passphrase_identity(site.identity + "\n", "install-pass", work_factor=4))
    (tmp_path / "pp").write_text("install-pass")
    monkeypatch.setenv("RECORDERD_NEW_PASSWORD", "itaku-first-pw")
    add = f"users add itaku --name 受託者 --role contractor --as kocho --import-identity {id_file}"
    assert ctl(site, f"{add} --identity-passphrase-file {tmp_path / 'pp'}", "kocho-password") == 0
    monkeypatch.setenv("RECORDERD_NEW_PASSWORD", "itaku-password")
    assert ctl(site, "users passwd itaku", "itaku-first-pw") == 0
    capsys.readouterr()

    # Nobody plays raw recordings; nobody exports without an instruction; nobody carries out their own.
    out = tmp_path / "raw.wav"
    assert ctl(site, f"play {call_id} --as itaku --purpose 確認 --out {out}", "itaku-password") == 2
    assert "no one hear raw recordings" in capsys.readouterr().err and not out.exists()
    order = (
        f"--call {call_id[:8]} --purpose 不当要求への対応の確認 --basis 取扱要領第4条第2項 --recipient 広聴課"
    )
    order += " --due 2027-03-31 --medium DVD-R"
    assert ctl(site, f"export create --as itaku {order} --out {tmp_path / 'x'}", "itaku-password") == 2
    assert "only on an instruction" in capsys.readouterr().err
    assert ctl(site, f"export instruct --as kocho {order}", "kocho-password") == 0
    request = capsys.readouterr().out.strip()
    assert request.startswith("EX-")
    assert (
        ctl(
            site, f"export create --as kocho --instruction {request} --out {tmp_path / 'y'}", "kocho-password"
        )
        == 2
    )

    pkg = tmp_path / "output-data"
    assert ctl(site, f"export create --as itaku --instruction {request} --out {pkg}", "itaku-password") == 0
    wav = pkg / "audio" / f"{call_id}.wav"
    assert pcm_of(wav.read_bytes()) == pcm
    capsys.readouterr()
    assert ctl_main(["export", "verify", str(pkg)]) == 0  # offline: no config, no database
    assert "0 problem(s)" in capsys.readouterr().out
    data = bytearray(wav.read_bytes())
    data[len(data) // 2] ^= 0x80
    wav.write_bytes(bytes(data))
    assert ctl_main(["export", "verify", str(pkg)]) == 1
    assert f"FAIL audio/{call_id}.wav: SHA-256 differs" in capsys.readouterr().out

    with site.sessions() as s:
        story = [(e.kind, e.actor) for e in ledger.entries(s, subject=request)]
        exported = ledger.entries(s, kinds=["exported"])[0]
    # kocho's own attempt to carry out the instruction is refused, and the refusal is in its story.
    assert story == [
        ("export_instructed", "kocho"),
        ("access_denied", "kocho"),
        ("exported", "itaku"),
        ("export_sealed", "itaku"),
    ]
    assert exported.detail["keep_until"] == "2028-03-31"  # to the end of the next fiscal year
    assert exported.detail["instructed_by"] == "kocho"

    assert ctl(site, f"export provide {request} --to 広聴課 --medium DVD-R --as itaku", "itaku-password") == 0
    assert ctl(site, "export list --as kocho", "kocho-password") == 0
    assert f"{request:22} provided" in capsys.readouterr().out


def test_export_reencrypted_to_the_recipient(tmp_path: Path, ctl: Callable[..., int]) -> None:
    site = make_site(tmp_path)  # a single-person profile: the exporter gives the details
    call_id, pcm = seed_call(site)
    person(site.people(), None, "boss", "manager", "boss-password", key=[site.identity])
    police_identity, police_key = generate_identity()
    pkg = tmp_path / "to-police"
    order = f"--call {call_id} --purpose 犯罪捜査 --basis 捜査機関からの照会 --recipient ○○警察署"
    order += f" --due 2027-01-31 --recipient-key {police_key} --out {pkg}"
    assert ctl(site, f"export create --as boss {order}", "boss-password") == 0
    sealed = (pkg / "audio" / f"{call_id}.wav.age").read_bytes()
    assert not (pkg / "audio" / f"{call_id}.wav").exists()
    assert pcm_of(decrypt_bytes(sealed, [police_identity])) == pcm
    with pytest.raises(AgeDecryptError, match="no identity matches"):
        decrypt_bytes(sealed, [site.identity])  # only the recipient can open it
    notice = (pkg / "NOTICE.txt").read_text()
    assert "無断で複製しないこと" in notice and "○○警察署" in notice
    assert ctl_main(["export", "verify", str(pkg)]) == 0


def test_a_swapped_recording_is_not_exported(
    tmp_path: Path, ctl: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Another valid recording put in place of the original decrypts fine; the catalogue hash stops it."""
    site = make_site(tmp_path)
    first, _ = seed_call(site)
    second, _ = seed_call(site, seconds=3)
    person(site.people(), None, "boss", "manager", "boss-password", key=[site.identity])
    with site.sessions() as s:
        rows = {r.id: r.audio_path for r in s.scalars(select(Call))}
    data = site.config.data_dir
    (data / str(rows[first])).write_bytes((data / str(rows[second])).read_bytes())
    pkg = tmp_path / "pkg"
    order = f"--call {first} --purpose 確認 --basis 法令 --recipient 課 --due 2027-01-31 --out {pkg}"
    assert ctl(site, f"export create --as boss {order}", "boss-password") == 2
    assert "differs from the catalogue" in capsys.readouterr().err and not pkg.exists()
    with site.sessions() as s:
        assert [e.kind for e in ledger.entries(s, kinds=export.LIFECYCLE)] == ["exported", "export_failed"]
