"""Who asked for a recording to be erased (Osaka 第6条第3項 "消去の申し出"; 第2号様式 消去申請書).

The 申請書 is filed in the applicant's name, so the request carries it: the name, how to reach them
(the form's 氏名・連絡先) and whether they are the caller themselves or acting for them. It is kept in
the ledger entry of the deletion (or of its refusal), which is what form 2 is printed from.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from recorderd.errors import AccessError
from recorderd.numbers import display, normalise

__all__ = ["RELATIONS", "Requester"]

# 本人: the person whose call it was; 代理人: someone acting for them (a family member, a lawyer).
RELATIONS = ("本人", "代理人")
_LONGEST = 100  # characters: a name or an address, not a letter


def _clean(text: str, what: str) -> str:
    value = " ".join(unicodedata.normalize("NFKC", text).split())  # no line breaks on the form
    if not value:
        raise AccessError(f"the requester's {what}")
    if len(value) > _LONGEST:
        raise AccessError(f"the requester's {what}: at most {_LONGEST} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise AccessError(f"the requester's {what}: control characters")
    return value


@dataclass(frozen=True)
class Requester:
    name: str
    contact: str
    relation: str = "本人"

    def validated(self) -> Requester:
        if self.relation not in RELATIONS:
            raise AccessError(f"the requester's relation to the caller: one of {', '.join(RELATIONS)}")
        contact = _clean(self.contact, "contact (telephone number or address)")
        number = normalise(contact)
        if number is not None and len(number) >= 10:
            contact = display(number) or contact  # a telephone number as a clerk writes it
        return Requester(_clean(self.name, "name"), contact, self.relation)

    def detail(self) -> dict[str, str]:
        return {"name": self.name, "contact": self.contact, "relation": self.relation}

    @staticmethod
    def text(d: Any) -> str:
        """As form 2 prints it: 山田花子（本人）　連絡先 06-1234-5678. Blank when not recorded."""
        if not isinstance(d, dict):
            return str(d or "")
        return f"{d.get('name', '')}（{d.get('relation', '本人')}）　連絡先 {d.get('contact', '')}"
