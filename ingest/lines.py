"""The line model under structure recovery: a report's lines, the artifact mask over its original
characters, and the text helpers every structure step shares (markup stripping, normalisation, the
clean-text-with-offsets map that defines a chunk's text).

Nothing is deleted from the text: every artifact and Markdown marker becomes a
removed span in a mask over the original, so every offset stays an offset into
the file as it is on disk.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.numbering import parse_numbering
from ingest.records import Section

# ---------------------------------------------------------------- line model

_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")

_PAGE_NUMBER_LINE = re.compile(r"^\s*[-–—]?\s*(page\s+)?\d{1,4}(\s*(of|/)\s*\d{1,4})?\s*[-–—]?\s*$", re.I)
# A TOC entry carries a page number at the end, or (OCR) glued into the line as "Global14 -".
_TOC_PAGE_REF = re.compile(r"([A-Za-z)\].]\s*\.*\s*\d{1,4}\s*[-–—]?\s*$)|([A-Za-z]\s?\d{1,4}\s[-–—](\s|$))")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+][ \t]+)+")
_DASH_BULLET = re.compile(r"^(?:--|—|–|•)[ \t]*")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_MAX_PREFIX_WORDS = 24
TERMINAL = re.compile(r"[.!?:;…][\"'”’)\]*_]*\s*$")


@dataclass
class _Line:
    start: int  # offset of the first char
    end: int  # offset after the last content char (newline excluded)
    text: str
    heading: str | None = None  # heading text without markers, if the line is a heading
    md_level: int = 0  # number of '#', 0 when not a Markdown heading
    removed: bool = False
    numbering: object = None  # ingest.numbering.Numbering of a heading line
    stated_level: int = 0  # a level the document states (PDF bookmark nesting)
    heading_part: bool = False  # a continuation line of a heading that wraps (PDF margin headings)
    body_from: int = 0  # a run-in heading's line: where its body text starts (offset into ``text``)
    block: str = ""  # Markdown block kind: "code", "html", "table", "quote", "list", "" for paragraphs

    @property
    def blank(self) -> bool:
        return not self.text.strip()


@dataclass
class ParsedReport:
    """The outcome of structure recovery for one document."""

    title: str
    sections: list[Section]
    mask: bytearray  # 1 = removed (artifact or Markdown marker), per char of the original
    paragraphs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # section id -> joined paragraphs
    artifacts: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, start, end) for reporting
    tables: list[tuple[int, int, int]] = field(default_factory=list)  # (start, header end, end) of Markdown tables

    def artifact_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, _, _ in self.artifacts:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def _split_lines(text: str) -> list[_Line]:
    lines, pos = [], 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n")
        lines.append(_Line(pos, pos + len(content), content))
        pos += len(raw)
    return lines


def strip_markup(text: str) -> str:
    """Heading text as printed: emphasis markers removed, whitespace collapsed."""
    text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
    text = text.replace("**", "").strip(" \t*_")
    return re.sub(r"\s+", " ", text).strip()


def normalize_heading(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


# ----------------------------------------------------------- artifact finding


def find_heading_toc(lines: list[_Line], later_headings: list[str]) -> range | None:
    """The table of contents: a run of heading-like lines with page numbers before the body."""
    later = {normalize_heading(h) for h in later_headings if len(normalize_heading(h)) > 8}
    # Word prefixes of the headings (a wrapped entry is a heading's first words), bounded: linear, not
    # lines x headings.
    prefixes = {" ".join(h.split()[:n]) for h in later for n in range(1, min(len(h.split()), _MAX_PREFIX_WORDS) + 1)}

    def is_entry(line: _Line) -> bool:
        text = line.text.strip()
        if len(text) > 250 or not re.search(r"[^\W\d_]{3}", text):
            return False  # an entry names a section: a number alone is table data
        if _TOC_PAGE_REF.search(text):
            return True
        norm = normalize_heading(re.sub(r"\d+\s*[-–—]?\s*$", "", text))
        if not norm:
            return False
        words = norm.split()
        return norm in prefixes or any(" ".join(words[:n]) in later for n in range(1, min(len(words), _MAX_PREFIX_WORDS) + 1))

    best: range | None = None
    i = 0
    while i < len(lines):
        if lines[i].blank or not is_entry(lines[i]):
            i += 1
            continue
        j, refs, last = i, 0, i
        while j < len(lines) and (lines[j].blank or is_entry(lines[j])):
            if not lines[j].blank:
                last = j
                refs += bool(_TOC_PAGE_REF.search(lines[j].text.strip()))
            j += 1
        if refs >= 3:
            best = range(i, last + 1)
            break
        i = j
    if best is None:
        return None
    # A short unnumbered heading right above the entries ("Contents") belongs to the TOC.
    k = best.start - 1
    while k >= 0 and lines[k].blank:
        k -= 1
    if k >= 0 and lines[k].heading is not None and len(lines[k].heading.split()) <= 3 and not parse_numbering(lines[k].heading, explicit=True):
        return range(k, best.stop)
    return best


def mask_line_markup(text: str, line: _Line, mask: bytearray) -> None:
    """Mark list markers, dash bullets and emphasis markers of a body line as removed."""
    content = line.text
    offset = 0
    if m := _LIST_MARKER.match(content):
        offset = m.end()
    if m := _DASH_BULLET.match(content[offset:]):
        offset += m.end()
    for i in range(line.start, line.start + offset):
        mask[i] = 1
    for m in _EMPHASIS.finditer(content, offset):
        marker = m.group(1) or "*"
        for i in range(line.start + m.start(), line.start + m.start() + len(marker)):
            mask[i] = 1
        for i in range(line.start + m.end() - len(marker), line.start + m.end()):
            mask[i] = 1


# ----------------------------------------------------------------- the parser


class ReportLines:
    """The mutable state of one parse: lines, mask and the artifacts taken out."""

    def __init__(self, text: str, markdown: bool):
        self.text = text
        self.markdown = markdown
        self.lines = _split_lines(text)
        self.texts = [ln.text for ln in self.lines]
        self.mask = bytearray(len(text))
        self.artifacts: list[tuple[str, int, int]] = []
        self.tables: list[tuple[int, int, int]] = []

    def remove(self, idx: int, kind: str) -> None:
        line = self.lines[idx]
        if line.removed:
            return
        line.removed = True
        line.heading = None
        self.mask[line.start:line.end] = b"\x01" * (line.end - line.start)
        self.artifacts.append((kind, line.start, line.end))

    def mask_span(self, start: int, end: int) -> None:
        self.mask[start:end] = b"\x01" * (end - start)

    def removed(self) -> set[int]:
        return {i for i, ln in enumerate(self.lines) if ln.removed}


def trim_end(text: str, mask: bytearray, start: int, end: int) -> int:
    while end > start and (text[end - 1].isspace() or mask[end - 1]):
        end -= 1
    return end


def clean_with_map(text: str, mask: bytearray, start: int, end: int) -> tuple[str, list[int]]:
    """Kept chars of ``text[start:end]`` with whitespace runs collapsed to one space, plus each
    output char's offset in the original. This is the one definition of a chunk's text."""
    out: list[str] = []
    pos: list[int] = []
    pending_space = -1
    for i in range(start, end):
        if mask[i]:
            continue
        ch = text[i]
        if ch.isspace():
            if pending_space < 0:
                pending_space = i
            continue
        if pending_space >= 0 and out:
            out.append(" ")
            pos.append(pending_space)
        pending_space = -1
        out.append(ch)
        pos.append(i)
    return "".join(out), pos
