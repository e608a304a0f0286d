"""Telephone numbers: one canonical spelling for matching, a masked one for logs.

Numbers reach us as 0668585050, 06-6858-5050, +81668585050, ０６－６８５８－５０５０ (full-width, typed
into a config by hand) or "unknown" (Asterisk's word for "not supplied"). Matching must not care.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

# Separators people write inside numbers. NFKC already folds full-width forms into these.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―ー().・/]")
_VALID = re.compile(r"[0-9*#]+")
_ABSENT = {"", "unknown", "anonymous", "restricted", "unavailable", "private"}


def normalise(raw: str | None) -> str | None:
    """Canonical national form (``0668585050``), or None when no usable number was supplied.

    ``+81`` (and ``0081``, the international prefix dialled from Japan) become the trunk prefix ``0``.
    Extensions (``201``) and feature codes (``*67``) pass through unchanged.
    """
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower() in _ABSENT:
        return None
    text = _SEPARATORS.sub("", text)
    if text.startswith("+81"):
        text = "0" + text[3:]
    elif text.startswith("0081"):
        text = "0" + text[4:]
    elif text.startswith("+"):
        text = "010" + text[1:]  # another country, as dialled from Japan
    if not _VALID.fullmatch(text):
        return None
    return text


def mask(number: str | None, *, full: bool = False) -> str | None:
    """What logs may show of a number: short extensions whole, others with the middle hidden."""
    if number is None or full or len(number) <= 4:
        return number
    keep_head = 3 if len(number) >= 9 else 2
    return number[:keep_head] + "*" * (len(number) - keep_head - 2) + number[-2:]


def display(number: str | None) -> str | None:
    """A number as a clerk writes it on a form: 03-1111-2222, 0263-34-3000, 090-1234-5678.

    Where the hyphens go depends on the area code's length, which only the numbering plan knows:
    libphonenumber's (the ``phonenumbers`` package) Japanese metadata. Extensions and anything it
    cannot parse are shown as they are.
    """
    canonical = normalise(number)
    if canonical is None or len(canonical) < 10 or not canonical.startswith("0"):
        return canonical if canonical is not None else number
    try:
        parsed = phonenumbers.parse(canonical, "JP")
    except phonenumbers.NumberParseException:
        return canonical
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
