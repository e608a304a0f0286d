"""Who asked for a deletion (Osaka form 2): checked before anything is deleted, kept as typed."""

from __future__ import annotations

import pytest

from recorderd.errors import AccessError
from recorderd.retention.requester import Requester


def test_a_requester_is_kept_as_a_clerk_writes_it() -> None:
    r = Requester(" 山田　花子 ", "０６（１２３４）５６７８", "代理人").validated()
    assert r.detail() == {"name": "山田 花子", "contact": "06-1234-5678", "relation": "代理人"}
    assert Requester.text(r.detail()) == "山田 花子（代理人）　連絡先 06-1234-5678"
    assert Requester("山田", "大阪市北区中之島1-3-20").validated().contact == "大阪市北区中之島1-3-20"
    assert Requester.text(None) == ""  # entries from before the field existed: blank, filled by hand


@pytest.mark.parametrize(
    ("name", "contact", "relation", "message"),
    [
        ("", "06-1234-5678", "本人", "name"),
        ("山田", "  ", "本人", "contact"),
        ("山田", "06-1234-5678", "知人", "relation"),
        ("山田\x07", "06-1234-5678", "本人", "control"),
        ("山" * 101, "06-1234-5678", "本人", "at most"),
    ],
)
def test_bad_requesters_are_refused_with_the_reason(
    name: str, contact: str, relation: str, message: str
) -> None:
    with pytest.raises(AccessError, match=message):
        Requester(name, contact, relation).validated()
