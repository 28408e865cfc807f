"""From classified lines to Sections: group body paragraphs under their heading, join paragraphs that
page furniture cut in two, and place every heading in the tree with the one hierarchy rule."""
from __future__ import annotations

import re
from dataclasses import replace

from ingest.hierarchy import Heading, build_tree, title_style
from ingest.numbering import parse_numbering, split_merged
from ingest.records import Section
from ingest.lines import TERMINAL, trim_end, strip_markup


_ATX = re.compile(r"^\s{0,3}#{1,6}\s+(?P<body>.*?)\s*#*\s*$")
_HTML_TAG = re.compile(r"<[^>]+>")
_WHOLE_BOLD = re.compile(r"^(\*\*|__)[^*_].*[^*_]\1$")
_WHOLE_ITALIC = re.compile(r"^([*_])[^*_](?:[^*_]*[^*_])?\1$")


def _emphasis(line_text: str) -> str:
    """The emphasis a whole Markdown heading is set in (``bold``, ``italic``), as the converter left it."""
    m = _ATX.match(line_text)
    body = _HTML_TAG.sub("", m.group("body")).strip() if m else ""
    if _WHOLE_BOLD.match(body) and body.count(body[:2]) == 2:
        return "bold"
    if _WHOLE_ITALIC.match(body):
        return "italic"
    return ""


def _headings(doc) -> tuple[list[Heading], dict[int, list[int]]]:
    """Headings in reading order, and for each heading line the indices of the Headings it opens."""
    heads: list[Heading] = []
    opens: dict[int, list[int]] = {}
    last: Heading | None = None
    for idx, line in enumerate(doc.lines):
        if line.heading is not None and not line.removed:
            title = line.heading
            merged = split_merged(title) if line.numbering is not None else None
            parts = [merged[0], merged[1]] if merged else [title]
            opens[idx] = []
            for n, part in enumerate(parts):
                offset = line.text.find(part.split()[0], len(parts[0]) if n else 0) if n else 0
                numbering = line.numbering if n == 0 and not merged else parse_numbering(part, explicit=True)
                h = Heading(part, line.start + max(0, offset), numbering, line.md_level, line.stated_level,
                            has_body_before_next=False,
                            style=title_style(part, _emphasis(line.text) if line.md_level else ""))
                opens[idx].append(len(heads))
                heads.append(h)
            last = heads[-1]
            last.has_body_before_next = bool(line.body_from)
            for h in heads[-len(parts):-1]:
                h.has_body_before_next = False
        elif last is not None and not line.removed and not line.blank and not line.heading_part:
            last.has_body_before_next = True
    return build_tree(heads), opens


class _Grouper:
    """Paragraphs (runs of body lines) per section; a paragraph cut by a page break is joined again."""

    def __init__(self, text: str):
        self.text = text
        self.paragraphs: dict[int, list[tuple[int, int]]] = {}  # heading index (-1 opening) -> spans
        self.current = -1
        self.para: list = []
        self.gap_blank, self.gap_removed = 0, False
        self.last_owner: int | None = None

    def open(self, heading: int) -> None:
        self.flush()
        self.current, self.last_owner = heading, None
        self.gap_blank, self.gap_removed = 0, False

    def flush(self) -> None:
        if not self.para:
            return
        start, end = self.para[0].start, self.para[-1].end
        spans = self.paragraphs.setdefault(self.current, [])
        prev = spans[-1] if spans and self.last_owner == self.current else None
        if prev is not None:
            prev_text = self.text[prev[0]:prev[1]]
            next_text = strip_markup(self.para[0].text).lstrip("-—–• ")
            if not TERMINAL.search(prev_text) and (next_text[:1].islower() or self.gap_blank >= 2 or self.gap_removed):
                spans[-1] = (prev[0], end)
                self.last_owner = self.current
                self.para, self.gap_blank, self.gap_removed = [], 0, False
                return
        spans.append((start, end))
        self.last_owner = self.current
        self.para, self.gap_blank, self.gap_removed = [], 0, False

    def removed_line(self) -> None:
        self.flush()
        self.gap_removed = self.gap_removed or self.last_owner is not None

    def blank_line(self) -> None:
        self.flush()
        self.gap_blank += 1


def build_sections(doc) -> tuple[list[Section], dict[str, list[tuple[int, int]]]]:
    heads, opens = _headings(doc)
    grouper = _Grouper(doc.text)
    for idx, line in enumerate(doc.lines):
        if idx in opens:
            grouper.open(opens[idx][-1])
            if line.body_from:  # the rest of a run-in heading's line is the first of its body
                grouper.para.append(replace(line, start=line.start + line.body_from, text=line.text[line.body_from:],
                                            heading=None, body_from=0))
        elif line.heading_part:
            continue
        elif line.removed:
            grouper.removed_line()
        elif line.blank:
            grouper.blank_line()
        elif line.block == "table":
            grouper.flush()
            grouper.para.append(line)
            grouper.flush()  # a table row is a unit of its own: never joined to, never cut
        else:
            grouper.para.append(line)
    grouper.flush()
    return _sections(doc, heads, grouper.paragraphs)


def _sections(doc, heads: list[Heading], paragraphs: dict[int, list[tuple[int, int]]]):
    sections: list[Section] = []
    by_id: dict[str, list[tuple[int, int]]] = {}
    opening = paragraphs.get(-1, [])
    if opening:
        sections.append(Section(id="opening", document_id="", number="", title="", path=(), level=0, parent_id=None,
                                char_start=opening[0][0], char_end=opening[-1][1], body_spans=tuple(opening)))
        by_id["opening"] = opening
    paths: list[tuple[str, ...]] = []
    ends = _section_ends(heads, len(doc.text))
    for i, h in enumerate(heads):
        parent = heads[h.parent] if h.parent is not None else None
        path = (*paths[h.parent], h.title) if parent is not None else (h.title,)
        paths.append(path)
        spans = paragraphs.get(i, [])
        end = trim_end(doc.text, doc.mask, h.start, ends[i])
        sections.append(Section(
            id=h.id, document_id="", number=h.numbering.label if h.numbering else "", title=h.title, path=path,
            level=h.level, parent_id=parent.id if parent else None, char_start=h.start, char_end=max(end, h.start),
            body_spans=tuple(spans)))
        by_id[h.id] = spans
    return sections, by_id


def _section_ends(heads: list[Heading], doc_end: int) -> list[int]:
    """Each section ends where the next heading at its level or above starts (linear, with a stack)."""
    ends = [doc_end] * len(heads)
    open_: list[int] = []
    for i, h in enumerate(heads):
        while open_ and heads[open_[-1]].level >= h.level:
            ends[open_.pop()] = h.start
        open_.append(i)
    return ends
