"""Saitama call centre 取扱要領 第5条: the instruction (様式第1号) and the submission (様式第2号).

The operations manager (運用責任者, 広聴課長) instructs the contractor (運営受託者) in writing; the
contractor makes the output data and submits it with form 2, whose fields the 要領 prints: the call's
date and time from–to, the city-side number and the counterpart's number. One page per request.
"""

from __future__ import annotations

from recorderd.records.forms.data import FormData, when
from recorderd.records.forms.sheet import Sheet, wareki
from storage import ledger

_RULES = "さいたまコールセンター通話録音装置等の運用に関する取扱要領"


def _call_items(data: FormData, e: ledger.Entry) -> list[tuple[str, str]]:
    """Items 1-3 as the 要領 numbers them, once each; several calls are listed (1), (2)… inside."""
    calls = [data.call(str(c)) for c in e.detail.get("calls", [])]

    def each(values: list[str]) -> str:
        if len(values) == 1:
            return values[0]
        return "\n".join(f"（{n}）{v}" for n, v in enumerate(values, 1))

    times = [
        f"{when(f.started, data.zone, approx=True)}から\n{when(f.ended, data.zone, approx=True)}まで"
        for f in calls
    ]
    return [
        ("1 通話日時", each(times)),
        ("2 市役所側電話番号", each([f.city_side or "-" for f in calls])),
        ("3 通話相手方電話番号", each([f.counterpart or "-" for f in calls])),
    ]


def instruction(data: FormData, sheet: Sheet) -> int:
    """通話出力データ作成指示書 (様式第1号, 第5条第1項: the article names it so)."""
    done = 0
    for e in data.of("export_instructed"):
        sheet.page("様式第1号（第5条関係）")
        sheet.right(wareki(data.day(e)))
        sheet.left("運営受託者　様")
        sheet.right(f"運用責任者（広聴課長）　{data.name(e.actor)}")
        sheet.title("通話出力データ作成指示書")
        sheet.left(f"{_RULES}第5条第1項の規定に基づき、次のとおり出力データの作成を指示します。")
        sheet.gap()
        d = e.detail
        sheet.fields(
            [
                *_call_items(data, e),
                ("4 利用目的", str(d.get("purpose", ""))),
                ("5 根拠", str(d.get("legal_basis", ""))),
                ("6 記録媒体", str(d.get("medium", ""))),
                ("7 受付番号", str(e.subject)),
            ]
        )
        done += 1
    return done


def submission(data: FormData, sheet: Sheet) -> int:
    """出力データ提出書 (様式第2号, 第5条第2項): the 要領's own wording and fields."""
    done = 0
    for e in data.of("exported"):
        ordered = next((x for x in data.by_subject(e.subject) if x.kind == "export_instructed"), None)
        sheet.page("様式第2号（第5条関係）")
        sheet.right(wareki(data.day(e)))
        sheet.left("運用責任者（広聴課長）　様")
        sheet.right(f"運営受託者　{data.name(e.actor)}")
        sheet.title("出力データ提出書")
        since = wareki(data.day(ordered)) if ordered else "　　年　月　日"
        sheet.left(
            f"{since}付けで指示のあった件について、{_RULES}第5条第2項の規定に基づき、次のとおり提出します。"
        )
        sheet.gap()
        sheet.fields(
            [
                *_call_items(data, e),
                ("記録媒体", str(e.detail.get("medium", ""))),
                ("受付番号", str(e.subject)),
            ]
        )
        done += 1
    return done
