"""The regulations' forms as PDF, generated from the ledger (R8): ``recorderctl forms render NAME``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.records.forms import incident, ledgers, osaka, saitama
from recorderd.records.forms.data import FormData, load
from recorderd.records.forms.sheet import FormError, Sheet

__all__ = ["FORMS", "Form", "FormError", "render"]


@dataclass(frozen=True)
class Form:
    title: str
    who: str
    build: Callable[[FormData, Sheet], int]
    landscape: bool = False


FORMS: dict[str, Form] = {
    "toyonaka-1": Form(
        "通話録音データ取出管理台帳（様式第1号）", "Toyonaka", ledgers.toyonaka_extraction_ledger, True
    ),
    "saitama-1": Form("通話出力データ作成指示書（様式第1号）", "Saitama", saitama.instruction),
    "saitama-2": Form("出力データ提出書（様式第2号）", "Saitama", saitama.submission),
    "matsumoto": Form("通話記録管理簿", "Matsumoto", ledgers.matsumoto_record_book, True),
    "osaka-1": Form("外部保存申請書（第1号様式）", "Osaka Waterworks", osaka.preservation_application),
    "osaka-2": Form("消去申請書（第2号様式）", "Osaka Waterworks", osaka.deletion_application),
    "osaka-3": Form("開示請求書（第3号様式）", "Osaka Waterworks", osaka.disclosure_request),
    "osaka-4": Form("外部記憶媒体保存目録（第4号様式）", "Osaka Waterworks", osaka.media_catalogue, True),
    "incident": Form("事故報告書", "every profile (Kawasaki 第7条)", incident.incident_report),
}


def render(
    name: str,
    sessions: sessionmaker[Session],
    config: Config,
    out: Path,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    subject: str | None = None,
) -> int:
    """Write the form to ``out``; returns how many items (rows or pages) it holds."""
    form = FORMS.get(name)
    if form is None:
        raise FormError(f"unknown form {name!r}; one of {', '.join(FORMS)}")
    data = load(sessions, config, since=since, until=until, subject=subject)
    sheet = Sheet(landscape=form.landscape)
    count = form.build(data, sheet)
    if count == 0 and not form.landscape:  # a per-request form with nothing to print: say so on paper
        sheet.page()
        sheet.title(form.title)
        sheet.left("該当する記録はありません。")
    sheet.output(out)
    return count
