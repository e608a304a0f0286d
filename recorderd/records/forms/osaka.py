"""Osaka City Waterworks お客さまセンター 取扱要綱: forms 1–4.

- 第1号様式 外部保存申請書 (6-1 ただし書: unreasonable demands, unresolved cases → external media, 5 years)
- 第2号様式 消去申請書 (6-3: deletion on request, unless such a case)
- 第3号様式 開示請求書 (8: the caller's disclosure request, answered by playing the recording to them)
- 第4号様式 目録 (6-2: catalogue of what each external medium holds, kept in the server room)
Preservation and deletion entries come from the retention side (issue 3) through storage/retention_log.
"""

from __future__ import annotations

import datetime as dt

from recorderd.numbers import display
from recorderd.records.disclosure import IdentityCheck
from recorderd.records.forms.data import FormData, when
from recorderd.records.forms.sheet import Sheet, wareki
from recorderd.retention.requester import Requester
from storage import ledger

_OUTCOMES = {
    "disclosed": "開示（再生により聴取）",
    "partly": "一部開示",
    "refused": "不開示",
    "withdrawn": "取下げ",
    "none_found": "該当記録なし",
}


def _head(sheet: Sheet, label: str, title: str, data: FormData, e: ledger.Entry) -> None:
    sheet.page(label)
    sheet.right(wareki(data.day(e)))
    sheet.left("お客さまサービス課長　様")
    sheet.title(title)


def _span(data: FormData, started: dt.datetime | None, ended: dt.datetime | None) -> str:
    """令和8年11月4日（水）8時53分〜9時05分: the day once when the call ended on it."""
    first, last = when(started, data.zone), when(ended, data.zone)
    if started and ended and started.astimezone(data.zone).date() == ended.astimezone(data.zone).date():
        last = last.split("）", 1)[1]
    return f"{first}〜{last}"


def _call_rows(data: FormData, e: ledger.Entry) -> list[tuple[str, str]]:
    ids = [e.call_id] if e.call_id else [str(c) for c in e.detail.get("calls", [])]
    rows = []
    for cid in ids:
        f = data.call(cid)
        rows.append(
            (
                "対象の通話",
                f"{_span(data, f.started, f.ended)}\n"
                f"相手方 {f.counterpart or '-'}／センター側 {f.city_side or '-'}",
            )
        )
    return rows


def _date(text: object) -> str:
    try:
        return wareki(dt.datetime.fromisoformat(str(text)).date())
    except ValueError:
        return str(text or "")


def _until(data: FormData, d: dict[str, object]) -> str:
    """The copy's 保存期限 as its last day kept: its expiry is the first instant it is no longer kept
    (00:00 Tokyo of the day after), counted from the preservation (6-2: 5年間)."""
    text = d.get("copy_expires_at") or d.get("expires_at")
    try:
        end = dt.datetime.fromisoformat(str(text)).astimezone(data.zone)
    except ValueError:
        return ""
    return wareki((end - dt.timedelta(microseconds=1)).date())


def _result(e: ledger.Entry) -> str:
    if e.kind != "deletion_refused":
        return "消去済み"
    refused = str(e.detail.get("refused", ""))
    if refused.startswith("held"):
        return "保存継続（保存停止の措置中の記録のため消去しない）"
    if refused.startswith("no audio"):
        return "消去対象の音声記録なし（消去済み）"
    return "保存継続（不当要求行為等に係る記録のため消去しない）"


def preservation_application(data: FormData, sheet: Sheet) -> int:
    items = data.of("preserved")
    for e in items:
        _head(sheet, "第1号様式", "外部保存申請書", data, e)
        sheet.left(
            "次の音声記録について、不当要求行為又は解決しない対応事案に係る記録として外部保存を申請します。"
        )
        d = e.detail
        sheet.fields(
            [
                *_call_rows(data, e),
                ("保存の理由", str(d.get("reason", ""))),
                ("外部記憶媒体", str(d.get("medium", ""))),
                ("保存期限", _until(data, d)),
                # 第6条第1項: the staff member applies to the 課長, who approves; the system knows the
                # one who preserved, so the applicant signs by hand.
                ("申請者（所属・氏名）", ""),
                ("承認・保存実施", f"{data.name(e.actor)}　{wareki(data.day(e))}"),
                ("整理番号", str(e.subject or d.get("entry", ""))),
            ]
        )
    return len(items)


def deletion_application(data: FormData, sheet: Sheet) -> int:
    items = [
        e
        for e in data.of("deleted", "deletion_refused")
        if e.detail.get("retention_action") in ("request_delete", "request_refused")
    ]
    for e in items:
        _head(sheet, "第2号様式", "消去申請書", data, e)
        sheet.left("次の音声記録について、消去を申請します。")
        sheet.fields(
            [
                *_call_rows(data, e),
                ("申請者（氏名・連絡先）", Requester.text(e.detail.get("requester"))),
                ("申出の受付番号", str(e.subject or "")),
                ("処理結果", _result(e)),
                ("理由・備考", str(e.detail.get("reason") or e.detail.get("rule") or "")),
                ("処理日", wareki(data.day(e))),
                ("処理者", data.name(e.actor)),
            ]
        )
    return len(items)


def disclosure_request(data: FormData, sheet: Sheet) -> int:
    items = data.of("disclosure_opened")
    for e in items:
        d = e.detail
        closed = next((x for x in data.by_subject(e.subject) if x.kind == "disclosure_closed"), None)
        _head(sheet, "第3号様式", "開示請求書", data, e)
        sheet.left(
            "個人情報の保護に関する法律第76条の趣旨を踏まえ、保存されている音声記録の開示を請求します。"
        )
        outcome = _OUTCOMES.get(str(closed.detail.get("outcome")), "") if closed else "（処理中）"
        sheet.fields(
            [
                ("請求者氏名", str(d.get("requester", ""))),
                ("連絡先", str(d.get("contact", ""))),
                ("対象の電話番号", display(str(d.get("number", ""))) or ""),
                ("対象期間", f"{_date(d.get('from'))}〜{_date(d.get('to'))}"),
                ("本人確認の方法", IdentityCheck.text(d.get("identity_check", ""))),
                ("確認者", data.name(str((d.get("identity_check") or {}).get("checked_by") or e.actor))),
                ("該当する記録", _found(len(d.get("calls", [])))),
                ("開示の方法", "再生可能なシステム端末から再生し、請求者が聴取する"),
                ("結果", outcome + (f"　{wareki(data.day(closed))}" if closed else "")),
                ("受付番号", str(e.subject)),
            ]
        )
    return len(items)


def _found(n: int) -> str:
    return f"{n}件（保存停止の措置済み）" if n else "該当する記録なし"


def media_catalogue(data: FormData, sheet: Sheet) -> int:
    sheet.page("第4号様式")
    sheet.title("外部記憶媒体保存目録")
    sheet.right(data.site)
    rows = []
    for n, e in enumerate(data.of("preserved"), 1):
        f = data.call(e.call_id or "")
        d = e.detail
        rows.append(
            (
                str(n),
                str(d.get("medium", "")),
                f"{when(f.started, data.zone)}\n{f.counterpart or '-'}",
                str(d.get("reason", "")),
                wareki(data.day(e)),
                _until(data, d),
                data.person(e.actor).replace("（", "\n（", 1),
                str(d.get("sha256", ""))[:16],
            )
        )
    sheet.grid(
        (
            "番号",
            "媒体",
            "内容（通話日時・電話番号）",
            "保存理由",
            "保存日",
            "保存期限",
            "保存者",
            "SHA-256（先頭）",
        ),
        rows,
        (10, 24, 46, 40, 26, 26, 26, 30),
    )
    return len(rows)
