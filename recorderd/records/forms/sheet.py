"""A printable A4 sheet with an embedded Japanese font (fpdf2), and the few layouts the forms need.

The font is embedded (subset), so the PDF prints the same anywhere, without fonts on the printing
machine. IPAex Mincho (Debian fonts-ipaexfont-mincho) is the usual face of Japanese official
documents; Gothic is the fallback; $RECORDERD_FORM_FONT names any other TrueType file.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

__all__ = ["FONT_CANDIDATES", "FormError", "Sheet", "find_font", "kinsoku_lines", "wareki"]

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
    "。、，．・：；？！）」』】〕｝〉》ー々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ)]},."
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
        lines = [
            line
            for para in text.split("\n")
            for line in kinsoku_lines(para, width, self.pdf.get_string_width)
        ]
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
        with self.pdf.table(
            col_widths=(label_mm, 180 - label_mm),
            first_row_as_headings=False,
            line_height=7,
            text_align=("LEFT", "LEFT"),
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label)
                row.cell(value or "")

    def grid(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        size: float = 8.5,
    ) -> None:
        """A ledger-style table whose header row repeats on every page."""
        self.font(size)
        with self.pdf.table(col_widths=tuple(widths), line_height=5.5, repeat_headings=1) as table:
            head = table.row()
            for h in headers:
                head.cell(h)
            for values in rows:
                row = table.row()
                for v in values:
                    row.cell(v)

    def output(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # personal data
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(self.pdf.output()))
