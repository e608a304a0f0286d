"""Every form renders as a PDF with an embedded Japanese font, and its text carries the fields the
regulation names (read back with pdftotext, as a person's PDF viewer would)."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from recorderd.incidents import raise_incident
from recorderd.records import export, forms
from recorderd.records.forms.sheet import FormError, find_font, wareki
from recorderd.service import Service, records, retention
from storage import ledger
from support.people import T0, Site, make_site, person, seed_call

PDFTOTEXT = shutil.which("pdftotext")

try:
    find_font()
    HAVE_FONT = True
except FormError:
    HAVE_FONT = False
pytestmark = pytest.mark.skipif(
    not HAVE_FONT, reason="no Japanese font (apt-get install fonts-ipaexfont-mincho)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """One installation whose ledger holds every kind of event the forms print."""
    root = tmp_path_factory.mktemp("forms")
    site = make_site(root, "[exports]\ntwo_person = true\n", municipality="テスト市コールセンター")
    config, sessions = site.config, site.sessions
    call_id, _ = seed_call(site, started=T0, seconds=300, remote="0311112222", local="0668585050")
    other, _ = seed_call(site, started=T0 + dt.timedelta(days=1), remote="0455556666")
    people = site.people()
    boss = person(people, None, "kanri", "manager", "kanri-password", key=[site.identity])
    ops = person(people, boss, "unyo", "operations_manager", "unyo-password")
    order = export.Order(
        [call_id],
        "応対内容の確認",
        "個人情報保護法第69条第2項",
        "広聴課",
        "終了後消去",
        dt.date(2027, 3, 31),
        "DVD-R",
    )
    svc = Service(config, sessions)
    request = records.instruct_export(svc, boss, order)
    records.create_export(svc, ops, root / "pkg", instruction=request)
    records.provide_export(svc, ops, request, "広聴課", "DVD-R")
    records.dispose_export(svc, ops, request, "deleted", "目的達成")
    opened = records.open_disclosure(
        svc,
        boss,
        number="03-1111-2222",
        first=dt.date(2026, 11, 1),
        last=dt.date(2026, 11, 30),
        requester="山田太郎",
        contact="大阪市北区",
        identity=records.IdentityCheck("運転免許証", "123456789012", ("通話日時の申告",)),
    )
    records.close_disclosure(svc, boss, opened.id, "disclosed", "窓口で再生")
    # What the retention side ledgers (storage/retention_log → ledger): a preservation and a deletion request.
    preserved = {
        "retention_action": "preserve",
        "medium": "USB-01",
        "reason": "不当要求行為",
        "sha256": "ab" * 32,
        # 5 years from the preservation: no longer kept from 00:00 Tokyo on 24 Nov 2031, so its last
        # day (the form's 保存期限) is 23 November, 令和13年.
        "copy_expires_at": "2031-11-23T15:00:00+00:00",
    }
    ledger.append_committed(sessions, "preserved", "kanri", call_id=other, subject="P-1", detail=preserved)
    # A deletion on request through the service (Osaka form 2 names who asked), and a refused one.
    asked = retention.Requester("山田花子", "０６（１２３４）５６７８", "代理人")
    gone, _ = seed_call(site, started=T0 + dt.timedelta(days=2), remote="0299998888")
    assert retention.delete(svc, boss, gone, request="D-2", reason="本人の申出", requester=asked).done
    refused = {
        "retention_action": "request_refused",
        "reason": "不当要求行為に係る記録",
        "requester": retention.Requester("鈴木一郎", "大阪市北区中之島1-3-20").validated().detail(),
    }
    ledger.append_committed(
        sessions, "deletion_refused", "kanri", call_id=other, subject="D-1", detail=refused
    )
    raise_incident(sessions, "loss", "USBメモリの紛失", key="hand:1", actor="kanri")
    for _ in range(config.people.passwords.max_failures):  # an account locked: an incident
        with contextlib.suppress(Exception):
            svc.sign_in("unyo", "wrong-password")
    return site


EXPECTED = {
    "toyonaka-1": [
        "通話録音データ取出管理台帳",
        "様式第1号",
        "取出年月日",
        "管理責任者の指示",
        "運用責任者の指示",
        "取扱員",
        "03-1111-2222",
        "応対内容の確認",
        wareki(dt.date(2027, 3, 31)),
    ],
    "saitama-1": [
        "出力データ作成指示書",
        "運営受託者",
        "第5条第1項",
        "通話日時",
        "10時00分頃から",
        "10時05分頃まで",
        "市役所側電話番号",
        "06-6858-5050",
        "通話相手方電話番号",
        "03-1111-2222",
        "DVD-R",
    ],
    "saitama-2": [
        "出力データ提出書",
        "運用責任者（広聴課長）",
        "付けで指示のあった件について",
        "第5条第2項",
        "市役所側電話番号",
        "06-6858-5050",
        "通話相手方電話番号",
        "03-1111-2222",
    ],
    # A copy disposed of by deletion is filed as 消去 (廃棄 is for recordings and destroyed media).
    "matsumoto": [
        "通話記録管理簿",
        "複製",
        "提供",
        "消去",
        "個人情報保護法第69条第2項",
        "広聴課",
        "判明したとき",
    ],
    "incident": [
        "事故報告書",
        "紛失",
        "USBメモリの紛失",
        "からの届出",
        "（未確認）",
        "Unyo（運用責任者、ID unyo）パスワードの連続誤り",  # the locked account as a person, not an ID
    ],
    "osaka-1": [
        "外部保存申請書",
        "第1号様式",
        "不当要求行為",
        "USB-01",
        "045-555-6666",
        "令和8年11月23日（月）10時00分〜10時00分",  # the day once, for a call within one day
    ],
    "osaka-2": ["消去申請書", "第2号様式", "保存継続", "045-555-6666", "消去済み", "0299-99-8888"],
    "osaka-3": [
        "開示請求書",
        "第3号様式",
        "山田太郎",
        "運転免許証",
        "03-1111-2222",
        "開示（再生により聴取）",
    ],
    "osaka-4": ["外部記憶媒体保存目録", "第4号様式", "USB-01", "不当要求行為", "令和13年11月23日"],
}


@pytest.mark.parametrize("name", sorted(forms.FORMS))
def test_every_form_renders_with_its_fields(site: Site, tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.pdf"
    count = forms.render(name, site.sessions, site.config, out)
    assert count >= 1
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-") and b"/FontFile2" in pdf  # the font travels inside the file
    if PDFTOTEXT is None:
        pytest.skip("pdftotext not installed (apt-get install poppler-utils)")
    text = subprocess.run(
        [PDFTOTEXT, "-raw", str(out), "-"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    flat = "".join(text.split())  # table cells wrap; compare without the layout's spaces and breaks
    for field in EXPECTED[name]:
        assert "".join(field.split()) in flat, f"{name}: {field!r} not found in\n{text}"


def test_a_request_form_is_limited_to_that_request(site: Site, tmp_path: Path) -> None:
    with site.sessions() as s:
        request = ledger.entries(s, kinds=["exported"])[0].subject
    assert forms.render("saitama-2", site.sessions, site.config, tmp_path / "one.pdf", subject=request) == 1
    assert (
        forms.render("saitama-2", site.sessions, site.config, tmp_path / "none.pdf", subject="EX-none") == 0
    )
    with pytest.raises(FormError, match="unknown form"):
        forms.render("kyoto-9", site.sessions, site.config, tmp_path / "x.pdf")


# What a clerk checks on paper: each label with its value on one line, dates in 令和, numbers hyphenated,
# no line holding only a closing mark or a lone item number (read with pdftotext -layout).
ON_ONE_LINE = {
    "saitama-1": [
        ("2 市役所側電話番号", "06-6858-5050"),
        ("3 通話相手方電話番号", "03-1111-2222"),
        ("4 利用目的", "応対内容の確認"),
        ("5 根拠", "個人情報保護法第69条第2項"),
        ("運用責任者（広聴課長）", "Kanri"),
    ],
    "saitama-2": [
        ("2 市役所側電話番号", "06-6858-5050"),
        ("3 通話相手方電話番号", "03-1111-2222"),
        ("運営受託者", "Unyo"),
        ("記録媒体", "DVD-R"),
    ],
    "osaka-1": [
        ("保存の理由", "不当要求行為"),
        ("外部記憶媒体", "USB-01"),
        ("保存期限", "令和13年11月23日"),
        ("承認・保存実施", "Kanri"),
    ],
    "osaka-2": [
        ("申出の受付番号", "D-1"),
        ("申出の受付番号", "D-2"),
        ("処理者", "Kanri"),
        ("申請者（氏名・連絡先）", "山田花子（代理人）"),
        ("申請者（氏名・連絡先）", "連絡先 06-1234-5678"),
        ("申請者（氏名・連絡先）", "鈴木一郎（本人）"),
        ("申請者（氏名・連絡先）", "連絡先 大阪市北区中之島1-3-20"),
    ],
    "osaka-3": [
        ("対象の電話番号", "03-1111-2222"),
        ("本人確認の方法", "運転免許証（番号末尾9012）"),
        ("確認者", "Kanri"),
    ],
    "incident": [
        ("事故の種別", "紛失"),
        ("事故の内容", "USBメモリの紛失"),
        ("確認者", "（未確認）"),
    ],
    "toyonaka-1": [("1", "令和"), ("1", "03-1111-2222"), ("1", "令和9年3月31日")],
    "matsumoto": [("1", "複製"), ("1", "03-1111-2222")],
}


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext not installed (apt-get install poppler-utils)")
@pytest.mark.parametrize("name", sorted(ON_ONE_LINE))
def test_labels_and_values_share_a_line(site: Site, tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.pdf"
    forms.render(name, site.sessions, site.config, out)
    text = subprocess.run(
        [str(PDFTOTEXT), "-layout", str(out), "-"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    lines = text.splitlines()
    for label, value in ON_ONE_LINE[name]:
        assert any(x.lstrip().startswith(label) and value in x for x in lines), (name, label, value, text)
    for x in lines:
        bare = x.strip()
        assert bare == "" or (bare not in ("。", "、", "）") and not bare.isdigit()), (name, x, text)
    assert "2026年" not in text and "2027年" not in text  # 令和, not Western years
    assert "0311112222" not in text  # hyphenated


def test_kinsoku_never_starts_a_line_with_a_closing_mark() -> None:
    from recorderd.records.forms.sheet import kinsoku_lines

    lines = kinsoku_lines("あいうえお。", 5, len)  # five characters fit: "。" would be alone
    assert lines == ["あいうえ", "お。"]
    assert kinsoku_lines("あいう", 5, len) == ["あいう"]


def test_a_line_never_splits_a_date_a_time_an_article_or_a_number() -> None:
    from recorderd.records.forms.sheet import unit_lines

    text = (
        "対象 令和8年11月4日（水）8時00分～令和8年11月16日（月）14時00分 "
        "個人情報保護法第69条第2項第1号 090-1234-5678"
    )
    for width in range(8, 40):
        lines = unit_lines(text, width, len)
        assert "".join(lines).replace(" ", "") == text.replace(" ", ""), lines  # nothing lost
        flat = "|".join(lines)
        for unit in ("令和8年11月4日（水）", "令和8年11月16日（月）", "8時00分", "14時00分",
                     "第69条第2項第1号", "090-1234-5678"):  # fmt: skip
            assert unit in flat, (width, unit, lines)
        assert not any(line.startswith(("。", "）", "～", " ")) for line in lines[1:]), lines
    # Words a space separates break at the space; explicit breaks stay.
    assert unit_lines("松本警察署 刑事第一課", 8, len) == ["松本警察署", "刑事第一課"]
    assert unit_lines("市民局広聴課\n第8条第1項第1号", 40, len) == ["市民局広聴課", "第8条第1項第1号"]
