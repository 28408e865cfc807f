"""The grammar of printed section numbers: ``PART 2``, ``Chapter 3``, ``(IV)``, ``4.1.2.``, ``Appendix B``,
``B.3.1``, ``2.3.59-17``, and what each says about a heading's place in the tree.

A number is read from the start of a heading's text. Its *kind* decides which
other headings may be its parent (see :mod:`ingest.hierarchy`); its *parts*
give the depth and the prefix relation (``4.1`` is the parent of ``4.1.2``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Keywords that open a division above numbered sections, highest first.
DIVISION_KEYWORDS = {"part": "p", "book": "bk", "chapter": "ch"}
# Keywords that print a top-level number of their own ("Appendix B" is a sibling of "12").
SECTION_KEYWORDS = {"appendix": "", "annex": "", "section": "", "article": "art", "exhibit": ""}
_ROMAN = re.compile(r"^(?=[ivxlcdm]+$)m{0,3}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$", re.I)

_KEYWORD = re.compile(
    r"^(?P<kw>part|book|chapter|appendix|annex|section|article|exhibit)\s+"
    r"(?P<num>\d+(?:[.\-]\d+)*|[IVXLCDM]+|[ivxlcdm]+|[A-Z](?:\.\d+)*)(?![\w])\s*[:.\-–—]?\s*(?P<rest>.*)$",
    re.I,
)
_PAREN = re.compile(r"^\((?P<num>\d{1,3}|[ivxlcdm]{1,6}|[IVXLCDM]{1,6}|[a-z]|[A-Z])\)\s*(?P<rest>\S.*)$")
# 4.1.2.  / B.3.1. / 14.35.1 / 2.3.59.1 / A. — a letter only as the first part.
_DECIMAL = re.compile(r"^(?P<num>(?:\d{1,3}|[A-Z])(?:\.\d{1,3})+)\.?(?=\s)\s*(?P<rest>\S.*)$")
_SINGLE = re.compile(r"^(?P<num>\d{1,4}|[A-Z])\.(?=\s)\s*(?P<rest>\S.*)$")
# "II. Related Work": roman section numbers (IEEE style), above lettered subsections "A.".
_ROMAN_DOTTED = re.compile(r"^(?P<num>[IVXLC]{2,7})\.(?=\s)\s*(?P<rest>\S.*)$")
# "1 Introduction", "2 .Internal vs .Primitive" (explicit headings only)
_BARE = re.compile(r"^(?P<num>\d{1,3})\s+(?P<rest>[^\w\s]?[A-Z].*)$")
# Exhibit / figure style "2.3.59-17": a number of a series, never a parent of decimal sections.
_SERIES = re.compile(r"^(?P<num>\d{1,3}(?:\.\d{1,3})*-\d{1,4})(?=\s)\s*(?P<rest>\S.*)$")


@dataclass(frozen=True)
class Numbering:
    kind: str  # "division", "roman", "decimal", "paren", "series"
    label: str  # as printed, trailing dot dropped: "PART 2", "(IV)", "4.1.2", "Appendix B"
    parts: tuple[str, ...]  # ("4", "1", "2"), ("b",), ("iv",), ("p", "2") for divisions
    rank: int = 0  # divisions: 0 = part/book, 1 = chapter
    style: str = ""  # paren numbering style: "roman", "alpha", "arabic"
    rest: str = ""  # the heading text after the number

    @property
    def depth(self) -> int:
        return len(self.parts)

    def is_prefix_of(self, other: "Numbering") -> bool:
        return self.depth < other.depth and other.parts[: self.depth] == self.parts


def _paren_style(num: str) -> str:
    if num.isdigit():
        return "arabic"
    if _ROMAN.match(num) and (len(num) > 1 or num.lower() in "ivx"):
        return "roman"
    return "alpha"


def parse_numbering(heading: str, explicit: bool = False) -> Numbering | None:
    """The printed number that starts ``heading``, or None. ``explicit``: the line is known to be a heading
    (Markdown ``#``, a bookmark), so a bare ``1 Introduction`` counts too."""
    text = heading.strip()
    if m := _KEYWORD.match(text):
        kw, num = m["kw"].lower(), m["num"]
        label = f"{m['kw']} {num}"
        if kw in DIVISION_KEYWORDS:
            return Numbering("division", label, (DIVISION_KEYWORDS[kw], num.lower()),
                             rank=list(DIVISION_KEYWORDS).index(kw), rest=m["rest"])
        if "-" in num:
            return Numbering("series", label, tuple(re.split(r"[.\-]", num)), rest=m["rest"])
        return Numbering("decimal", label, tuple(p.lower() for p in num.split(".")), rest=m["rest"])
    if m := _PAREN.match(text):
        num = m["num"]
        return Numbering("paren", f"({num})", (num.lower(),), style=_paren_style(num), rest=m["rest"])
    if m := _SERIES.match(text):
        return Numbering("series", m["num"], tuple(re.split(r"[.\-]", m["num"])), rest=m["rest"])
    if (m := _ROMAN_DOTTED.match(text)) and _ROMAN.match(m["num"]):
        return Numbering("roman", m["num"], (m["num"].lower(),), rest=m["rest"])
    if m := _DECIMAL.match(text):
        return Numbering("decimal", m["num"], tuple(p.lower() for p in m["num"].split(".")), rest=m["rest"])
    if m := _SINGLE.match(text):
        return Numbering("decimal", m["num"], (m["num"].lower(),), rest=m["rest"])
    if explicit and (m := _BARE.match(text)):
        return Numbering("decimal", m["num"], (m["num"],), rest=m["rest"])
    return None


def order_key(numbering: Numbering) -> tuple:
    """Document order of decimal numbers: 1 < 1.1 < 2 < … < 12 < A < A.1 < B (appendices after the body)."""
    key = []
    for i, part in enumerate(numbering.parts):
        if part.isdigit():
            key.append((0, int(part), ""))
        else:
            key.append((1 if i == 0 else 0, 0, part))
    return tuple(key)


def split_merged(heading: str) -> tuple[str, str] | None:
    """``Chapter 1 Compilation 1.1 Compiled Languages`` -> (``Chapter 1 Compilation``, ``1.1 Compiled Languages``):
    a division heading that runs on into its own first numbered section."""
    numbering = parse_numbering(heading)
    if numbering is None or numbering.kind != "division":
        return None
    number = numbering.parts[1]
    m = re.search(rf"\s({re.escape(number)}\.\d+\.?\s+[A-Z]\S*.*)$", heading)
    if not m or m.start() <= len(numbering.label):
        return None
    return heading[: m.start()].rstrip(), m.group(1)
