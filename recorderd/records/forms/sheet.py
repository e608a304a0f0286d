"""A printable A4 sheet with an embedded Japanese font (fpdf2), and the few layouts the forms need.

The font is embedded (subset), so the PDF prints the same anywhere, without fonts on the printing
machine. IPAex Mincho (Debian fonts-ipaexfont-mincho) is the usual face of Japanese official
documents; Gothic is the fallback; $RECORDERD_FORM_FONT names any other TrueType file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

__all__ = ["FONT_CANDIDATES", "FormError", "Sheet", "find_font", "kinsoku_lines", "unit_lines", "wareki"]

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-mincho.ttf",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
)
_FACE = "jp"


class FormError(Exception):
    pass


def find_font() -> Path:
    override = os.environ.get("RECORDERD_FORM_FONT")
    for candidate in ([override] if override else []) + list(FONT_CANDIDATES):
        if Path(candidate).is_file():
            return Path(candidate)
    raise FormError(
        "no Japanese TrueType font: apt-get install fonts-ipaexfont-mincho (or set RECORDERD_FORM_FONT)"
    )


def wareki(day: dt.date) -> str:
    """令和 dates, as Japanese municipal forms write them (令和元年 = 2019)."""
    if day >= dt.date(2019, 5, 1):
        year = day.year - 2018
        return f"令和{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


# Characters a Japanese line must not begin with (行頭禁則).
NO_LINE_START = frozenset(
    "。、，．・：；？！）」』】〕｝〉》ー々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ)]},.～〜"
)


def kinsoku_lines(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break ``text`` into lines no wider than ``width``; a closing mark that would begin a line takes
    the character before it along (追い出し), so "…申請します。" never leaves "。" alone."""
    lines: list[str] = []
    line = ""
    for ch in text:
        if line and measure(line + ch) > width:
            if ch in NO_LINE_START and len(line) > 1:
                lines.append(line[:-1])
                line = line[-1]
            else:
                lines.append(line)
                line = ""
        line += ch
    lines.append(line)
    return lines


# What a clerk reads as one word and a line must not split: a date (令和8年11月16日（月）), a time
# (8時53分頃から), an article (第69条第2項第1号), a short bracketed word ((取扱員), （水）), a number
# or code (090-1234-5678, EX-20261207-6673de). Anything else breaks between any two characters, as
# Japanese text does, never before a closing mark (禁則).
_UNIT = re.compile(
    r"令和(?:元|\d+)年\d+月\d+日(?:（.）)?"
    r"|\d+時\d+分頃?(?:から|まで)?"
    r"|第\d+条(?:第\d+項)?(?:第\d+号)?"
    r"|[（(][^（）()\s]{1,6}[）)]"
    r"|[0-9A-Za-z][0-9A-Za-z\-_.:/@]*"
    r"|.",
    re.S,
)


def unit_lines(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` between the units above, at a space where
    there is one (a unit wider than the line is left whole, for the table to break); explicit line
    breaks are kept."""
    out: list[str] = []
    for para in text.split("\n"):
        lines: list[list[str]] = [[]]
        for unit in _UNIT.findall(para):
            line = lines[-1]
            if line and measure("".join(line) + unit) > width:
                if unit[0] in NO_LINE_START and len(line) > 1:
                    lines.append([line.pop(), unit])  # the closing mark takes its word along
                    continue
                if unit.isspace():
                    continue  # a line never begins with a space
                # Words a space separates (松本警察署 刑事第一課) break at the space when the rest fits.
                cut = max((i for i, u in enumerate(line) if u.isspace()), default=0)
                rest = line[cut + 1 :] if cut else []
                if rest and measure("".join(rest) + unit) <= width:
                    del line[cut:]
                    lines.append(rest)
                else:
                    lines.append([])
            lines[-1].append(unit)
        out.extend("".join(line).rstrip() for line in lines)
    return out


class Sheet:
    def __init__(self, *, landscape: bool = False) -> None:
        self.pdf = FPDF(orientation="L" if landscape else "P", unit="mm", format="A4")
        font = str(find_font())
        self.pdf.add_font(_FACE, fname=font)
        self.pdf.add_font(_FACE, style="B", fname=font)  # table headings ask for bold; same face
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.set_margins(18, 15, 18)

    def page(self, form_label: str = "") -> None:
        self.pdf.add_page()
        self.font(9)
        if form_label:
            self.pdf.cell(text=form_label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def font(self, size: float) -> None:
        self.pdf.set_font(_FACE, size=size)

    def right(self, text: str, size: float = 10.5) -> None:
        self.font(size)
        self.pdf.cell(w=0, h=7, text=text, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def left(self, text: str, size: float = 10.5) -> None:
        self.font(size)
        # Japanese has no spaces between words: wrap at any character, not at the few spaces there are,
        # but never begin a line with a closing mark (禁則: a lone "。" on the last line).
        width = self.pdf.w - self.pdf.l_margin - self.pdf.r_margin - 2 * self.pdf.c_margin
        lines = unit_lines(text, width, self.pdf.get_string_width)
        self.pdf.multi_cell(
            w=0, h=7, text="\n".join(lines), new_x=XPos.LMARGIN, new_y=YPos.NEXT, wrapmode=WrapMode.CHAR
        )

    def title(self, text: str) -> None:
        self.pdf.ln(4)
        self.font(16)
        self.pdf.cell(w=0, h=12, text=text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(3)

    def gap(self, mm: float = 4) -> None:
        self.pdf.ln(mm)

    def fields(self, rows: Sequence[tuple[str, str]], label_mm: float = 48) -> None:
        """Two-column boxed table: label | value."""
        self.font(10.5)
        cols = (label_mm, 180 - label_mm)
        with self.pdf.table(
            col_widths=cols,
            first_row_as_headings=False,
            line_height=7,
            text_align=("LEFT", "LEFT"),
            wrapmode=WrapMode.CHAR,
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(self._wrapped(label, cols, 0))
                row.cell(self._wrapped(value or "", cols, 1))

    def _wrapped(self, text: str, widths: Sequence[float], column: int) -> str:
        """The cell's text broken between units, for the column's width as the table will scale it."""
        epw = self.pdf.w - self.pdf.l_margin - self.pdf.r_margin
        usable = epw * widths[column] / sum(widths) - 2 * self.pdf.c_margin - 0.8  # the border, rounding
        return "\n".join(unit_lines(text, usable, self.pdf.get_string_width))

    def grid(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        size: float = 8.5,
    ) -> None:
        """A ledger-style table whose header row repeats on every page."""
        self.font(size)
        with self.pdf.table(
            col_widths=tuple(widths), line_height=5.5, repeat_headings=1, wrapmode=WrapMode.CHAR
        ) as table:
            head = table.row()
            for i, h in enumerate(headers):
                head.cell(self._wrapped(h, widths, i))
            for values in rows:
                row = table.row()
                for i, v in enumerate(values):
                    row.cell(self._wrapped(v, widths, i))

    def output(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # personal data
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(self.pdf.output()))
