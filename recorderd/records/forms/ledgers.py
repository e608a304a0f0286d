"""Ledger-shaped forms: one row per event over a period.

- Toyonaka 様式第1号 通話録音データ取出管理台帳 (要綱 8-3: the handler records each extraction made on
  the operations manager's instruction).
- Matsumoto 通話記録管理簿 (要綱 10: copies, provision, disposal and other necessary matters).
"""

from __future__ import annotations

import datetime as dt

from recorderd.records.forms.data import FormData, when
from recorderd.records.forms.sheet import Sheet, wareki
from storage import ledger


def _calls(data: FormData, e: ledger.Entry) -> tuple[str, str]:
    """(times, counterpart numbers) of an entry's calls, one line per call."""
    ids = [str(c) for c in e.detail.get("calls", [])] or ([e.call_id] if e.call_id else [])
    facts = [data.call(c) for c in ids]
    times = "\n".join(when(f.started, data.zone).replace("）", "）\n", 1) for f in facts)
    numbers = "\n".join(f.counterpart or "-" for f in facts)
    return times, numbers


_HOW = {"returned": "返却", "deleted": "消去", "destroyed": "廃棄"}


def _span(data: FormData, relay: ledger.Entry) -> str:
    """The calls' date and time the handler was given: 対象 令和8年11月22日 9時55分～10時05分."""
    first, last = (
        dt.datetime.fromisoformat(str(relay.detail[k])).astimezone(data.zone)
        for k in ("calls_from", "calls_to")
    )
    start = f"{wareki(first.date())}\n{first.hour}時{first.minute:02d}分"
    end = f"{last.hour}時{last.minute:02d}分"
    if last.date() != first.date():
        end = f"{wareki(last.date())}\n{end}"
    return f"対象 {start}～{end}"


def _due(text: object) -> str:
    try:
        return wareki(dt.date.fromisoformat(str(text)))
    except ValueError:
        return str(text or "")


def _status(data: FormData, e: ledger.Entry) -> str:
    later = [x for x in data.by_subject(e.subject) if x.seq > e.seq]
    notes = []
    for x in later:
        if x.kind == "provided":
            notes.append(f"{wareki(data.day(x))} 提供（{x.detail.get('to', '')}）")
        elif x.kind == "export_disposed":
            how = {"returned": "返却", "deleted": "消去", "destroyed": "廃棄"}.get(
                str(x.detail.get("how")), ""
            )
            notes.append(f"{wareki(data.day(x))} {how}")
        elif x.kind == "export_failed":
            notes.append("作成失敗")
    return "\n".join(notes)


def toyonaka_extraction_ledger(data: FormData, sheet: Sheet) -> int:
    sheet.page("様式第1号（第8条関係）")
    sheet.title("通話録音データ取出管理台帳")
    sheet.right(data.site)
    headers = (
        "番号",
        "取出年月日",
        "対象データの日時",
        "相手方電話番号",
        "取出しの目的",
        "管理責任者の指示",
        "運用責任者の指示",
        "取扱員",
        "提供先・根拠",
        "返却・消去期限",
        "処理状況",
    )
    rows = []
    # Export packages, and copies to a file where the profile lets a role copy (ledgered "copied").
    for n, e in enumerate(data.of("exported", "copied"), 1):
        times, numbers = _calls(data, e)
        d = e.detail
        if e.kind == "copied":
            d = {**d, "recipient": "ファイルへの複製", "legal_basis": ""}
        # 第8条: each step of the chain, its person and its date (the relay also names the calls' time).
        first = data.entry(e.subject, d.get("instruction_seq"))
        relay = data.entry(e.subject, d.get("relay_seq"))
        ordered = f"{data.name(first.actor)}\n{wareki(data.day(first))}" if first else ""
        passed = ""
        if relay is not None:
            passed = f"{data.name(relay.actor)}\n{wareki(data.day(relay))}\n{_span(data, relay)}"
        rows.append(
            (
                str(n),
                wareki(data.day(e)),
                times,
                numbers,
                str(d.get("purpose", "")),
                ordered,
                passed,
                data.name(e.actor),
                f"{d.get('recipient', '')}\n{_basis(d.get('legal_basis'))}",
                _due(d.get("due")),
                _status(data, e),
            )
        )
    # Widths (mm, 261 across) fit a 令和 date (10 characters at 7 pt) and each heading on one line.
    sheet.grid(headers, rows, (9, 27, 30, 25, 22, 27, 27, 17, 31, 27, 19), size=7)
    return len(rows)


_DUTIES = (  # one duty a line, as the article lists them
    "(1)無断で複製しないこと\n(2)目的以外の利用及び第三者への無断提供を行わないこと\n"
    "(3)目的を達成したとき又は目的が達成されないことが判明したときは、速やかに返却、消去等"
)


def _basis(text: object) -> str:
    """A legal basis as a clerk writes it: the article, then what it says on the next line."""
    article, _, words = str(text or "").partition(" ")
    return f"{article}\n{words}" if words else article


_KIND_LABEL = {
    "exported": "複製",
    "copied": "複製",
    "provided": "提供",
    "export_disposed": "廃棄",
    "deleted": "廃棄",
}


def matsumoto_record_book(data: FormData, sheet: Sheet) -> int:
    sheet.page()
    sheet.title("通話記録管理簿")
    sheet.right(data.site)
    headers = (
        "番号",
        "年月日",
        "区分",
        "対象通話の日時",
        "電話番号",
        "事由（第8条第1項）",
        "提供先",
        "遵守事項（第8条第2項）",
        "取扱者",
        "備考",
    )
    rows = []
    # 第10条: 複製、提供、廃棄: every copy, every provision, every disposal of a copy and every deletion
    # of a recording, routine (保管期間の経過, by the reaper) or on request.
    events = data.of(*_KIND_LABEL)
    for n, e in enumerate(events, 1):
        origin = next((x for x in data.by_subject(e.subject) if x.kind == "exported"), e) if e.subject else e
        times, numbers = _calls(data, origin)
        d = origin.detail
        if e.kind == "copied":  # a copy to a file (a role with "copy"): its purpose is its ground
            d = {**d, "legal_basis": d.get("purpose", "")}
        to = e.detail.get("to") if e.kind == "provided" else d.get("recipient", "")
        if e.kind == "export_disposed":  # returned by (or destroyed at) whoever it was provided to
            given = [x for x in data.by_subject(e.subject) if x.kind == "provided" and x.seq < e.seq]
            to = given[-1].detail.get("to", to) if given else to
        duties = _DUTIES if e.kind in ("exported", "provided") else ""
        label = _KIND_LABEL[e.kind]
        note = str(e.detail.get("note") or "")
        if e.kind == "export_disposed":
            label = _HOW.get(str(e.detail.get("how")), label)  # a returned copy is 返却, not 廃棄
        elif e.kind == "deleted":
            routine = not e.subject and e.actor == "reaper"
            note = "保管期間経過による消去" if routine else f"消去の申出による消去 {e.subject or ''}".strip()
        rows.append(
            (
                str(n),
                wareki(data.day(e)),
                label,
                times,
                numbers,
                _basis(d.get("legal_basis")),
                str(to),
                duties,
                "自動消去" if e.actor == "reaper" else data.name(e.actor),
                note,
            )
        )
    sheet.grid(headers, rows, (9, 27, 12, 30, 25, 31, 24, 44, 21, 38), size=7)
    return len(rows)
