"""Turning a failed check into an incident: the same words whether a person ran ``recorderctl verify``
/ ``ledger verify`` or the daemon ran them on its schedule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recorderd.incidents.book import Incident, raise_incident
from storage import ledger
from storage.integrity import CHANGED, MISSING, VerifyProblem, verify_catalogue

__all__ = ["file_incident", "ledger_incident", "run_checks"]


def file_incident(
    sessions: sessionmaker[Session], problems: Sequence[VerifyProblem], *, at: dt.datetime | None = None
) -> Incident | None:
    missing = sorted(p.call_id for p in problems if p.problem == MISSING)
    changed = sorted(p.call_id for p in problems if p.problem == CHANGED)
    other = len(problems) - len(missing) - len(changed)
    summary = f"録音ファイル：欠落{len(missing)}件、改変{len(changed)}件" + (
        f"、その他{other}件" if other else ""
    )
    # One open incident per set of affected calls: a new loss raises a new incident.
    key = "files:" + ",".join(p.call_id[:8] + p.problem[:4] for p in problems)[:200]
    facts = {"missing": missing[:50], "changed": changed[:50], "problems": len(problems)}
    return raise_incident(sessions, "verify_failed", summary, key=key, at=at, facts=facts)


def ledger_incident(
    sessions: sessionmaker[Session], report: ledger.Report, *, at: dt.datetime | None = None
) -> Incident | None:
    first = report.problems[0]
    summary = f"操作記録：不整合{len(report.problems)}件（最初は第{first.seq}行：{first.message}）"
    facts = {"rows": [p.seq for p in report.problems[:50]], "checked": report.checked}
    return raise_incident(
        sessions, "ledger_verify_failed", summary, key=f"ledger:{first.seq}", at=at, facts=facts
    )


def run_checks(
    sessions: sessionmaker[Session],
    data_dir: Path,
    *,
    at: dt.datetime | None = None,
    node: str | None = None,
    chain: bool = True,
    stop: Callable[[], bool] = lambda: False,
) -> list[str]:
    """The daemon's scheduled check: verify the ledger and the files; returns what failed.

    ``node``: only that recorder's files (the others are on their own disks); ``chain``: the ledger
    too (one recorder of those sharing the catalogue checks it); ``stop``: see verify_catalogue."""
    failed = []
    with sessions() as s:
        report = ledger.verify(s) if chain else None
        _checked, problems = verify_catalogue(s, data_dir, node=node, stop=stop)
    if report is not None and not report.ok:
        ledger_incident(sessions, report, at=at)
        failed.append("ledger")
    if problems:
        file_incident(sessions, problems, at=at)
        failed.append("files")
    return failed
