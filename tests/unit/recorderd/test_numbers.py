import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorderd.numbers import mask, normalise


@pytest.mark.parametrize(
    "raw",
    ["0668585050", "06-6858-5050", "+81668585050", "+81 6 6858 5050", "０６－６８５８－５０５０",
     "(06) 6858-5050", "0081668585050", " 06.6858.5050 ", "＋８１６６８５８５０５０"],
)  # fmt: skip
def test_spellings_of_one_number_agree(raw: str) -> None:
    assert normalise(raw) == "0668585050"


@pytest.mark.parametrize("raw", [None, "", "unknown", "Anonymous", "abc", "06-6858-505x"])
def test_absent_or_garbage_is_none(raw: str | None) -> None:
    assert normalise(raw) is None


def test_extensions_and_foreign_numbers() -> None:
    assert normalise("201") == "201"
    assert normalise("+1 212 555 0100") == "0101212555" + "0100"


@given(st.from_regex(r"0[1-9][0-9]{8,9}", fullmatch=True))
def test_normalise_is_idempotent_and_hyphen_blind(num: str) -> None:
    hyphenated = f"{num[:2]}-{num[2:6]}-{num[6:]}"
    assert normalise(num) == num
    assert normalise(hyphenated) == num
    assert normalise("+81" + num[1:]) == num


def test_mask_hides_the_middle_keeps_extensions() -> None:
    assert mask("0668585050") == "066*****50"
    assert mask("201") == "201"
    assert mask(None) is None
    assert mask("0668585050", full=True) == "0668585050"
    masked = mask("09012345678")
    assert masked is not None and "12345" not in masked
