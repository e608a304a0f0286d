"""事故報告書: the incident report for the director (Kawasaki 第7条: 漏えい、盗難、紛失その他の事故を
速やかに部長及び局長に報告). One page per incident, from its ledger entries (raised, acknowledged)."""

from __future__ import annotations

from recorderd.records.forms.data import FormData, when
from recorderd.records.forms.sheet import Sheet, wareki


def _summary(data: FormData, d: dict[str, object]) -> str:
    """The summary, with the account it names as a person the director knows (高橋 健太（取扱員、
    ID p-handler）), not the sign-in ID alone."""
    text = str(d.get("summary", ""))
    facts = d.get("facts")
    person = facts.get("person") if isinstance(facts, dict) else None
    if isinstance(person, str) and text.startswith(person + "："):
        name, role = data.people.get(person, (person, ""))
        text = f"{name}（{role + '、' if role else ''}ID {person}）\n" + text[len(person) + 1 :]
    return text


def incident_report(data: FormData, sheet: Sheet) -> int:
    done = 0
    for e in data.of("incident_raised"):
        ack = next((x for x in data.by_subject(e.subject) if x.kind == "incident_acknowledged"), None)
        d = e.detail
        sheet.page()
        sheet.right(wareki(data.day(ack or e)))
        sheet.left("所管部長　様")
        sheet.left("所管局長　様")
        sheet.right(f"管理責任者　{data.name(ack.actor) if ack else ''}")
        sheet.title("事故報告書")
        sheet.left("通話録音記録に関し、次のとおり事故が生じたので報告します。")
        sheet.gap()
        found_by = "システムによる自動検知" if d.get("automatic") else f"{data.name(e.actor)}からの届出"
        facts = d.get("facts") or {}
        calls = [*facts.get("missing", []), *facts.get("changed", [])]
        sheet.fields(
            [
                ("事故番号", str(e.subject)),
                ("事故の種別", str(d.get("label", d.get("kind", "")))),
                ("発生・検知日時", when(e.time, data.zone)),
                ("検知の方法", found_by),
                ("事故の内容", _summary(data, d)),
                ("関係する通話", "、".join(str(c)[:8] for c in calls) if calls else "なし"),
                ("確認者", data.name(ack.actor) if ack else "（未確認）"),
                ("確認日時", when(ack.time, data.zone) if ack else "（未確認）"),
                ("措置の内容", str(ack.detail.get("note", "")) if ack else ""),
            ],
            label_mm=40,
        )
        done += 1
    return done
