"""Recover a report's true structure from PDF-converted Markdown or plain text.

Converters lie about structure: ``#`` counts do not follow the hierarchy, a
table of contents with page numbers precedes the body, page breaks cut
sentences, running headers and page numbers survive as lines or headings.
So the hierarchy is read from the heading *text* (its numbering style) and the
artifacts are recognised by shape, never by this or that report's strings.

Nothing is deleted from the text: every artifact and Markdown marker becomes a
removed span in a mask over the original, so every offset stays an offset into
the file as it is on disk.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.records import Document, Section

# ---------------------------------------------------------------- line model

_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_KEYWORDS = {"part": "p", "chapter": "ch", "section": "s", "annex": "annex", "appendix": "app", "article": "art"}
_KEYWORD_NUM = re.compile(
    r"^(?P<kw>part|chapter|section|annex|appendix|article)\s+(?P<num>\d+|[ivxlcdm]+|[a-z])\b\s*[:.\-–—]?\s*(?P<rest>.*)$",
    re.I,
)
_PAREN_NUM = re.compile(r"^\((?P<num>\d+|[ivxlcdm]+|[a-z])\)\s*(?P<rest>\S.*)$", re.I)
_DECIMAL_NUM = re.compile(r"^(?P<num>\d+(?:\.\d+)+)\.?\s+(?P<rest>\S.*)$")
_DOTTED_NUM = re.compile(r"^(?P<num>\d+|[IVXLCDM]+|[A-Z])[.)]\s+(?P<rest>\S.*)$")
_BARE_NUM = re.compile(r"^(?P<num>\d+)\s+(?P<rest>[A-Z].*)$")  # "1 Introduction", Markdown headings only

_PAGE_NUMBER_LINE = re.compile(r"^\s*[-–—]?\s*(page\s+)?\d{1,4}(\s*(of|/)\s*\d{1,4})?\s*[-–—]?\s*$", re.I)
# A TOC entry carries a page number at the end, or (OCR) glued into the line as "Global14 -".
_TOC_PAGE_REF = re.compile(r"([A-Za-z)\].]\s*\.*\s*\d{1,4}\s*[-–—]?\s*$)|([A-Za-z]\s?\d{1,4}\s[-–—](\s|$))")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+][ \t]+)+")
_DASH_BULLET = re.compile(r"^(?:--|—|–|•)[ \t]*")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_TERMINAL = re.compile(r"[.!?:;…][\"'”’)\]*_]*\s*$")
_ROMAN = set("ivxlcdm")


@dataclass
class _Line:
    start: int  # offset of the first char
    end: int  # offset after the last content char (newline excluded)
    text: str
    heading: str | None = None  # heading text without markers, if the line is a heading
    md_level: int = 0  # number of '#', 0 when not a Markdown heading
    removed: bool = False

    @property
    def blank(self) -> bool:
        return not self.text.strip()


@dataclass(frozen=True)
class Numbering:
    style: str  # e.g. "kw:part", "paren:roman", "decimal:2", "dotted:alpha"
    label: str  # as printed: "PART 2", "(IV)", "2.3"
    token: str  # id component: "p2", "iv", "3"


@dataclass
class ParsedReport:
    """The outcome of structure recovery for one document."""

    title: str
    sections: list[Section]
    mask: bytearray  # 1 = removed (artifact or Markdown marker), per char of the original
    paragraphs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # section id -> joined paragraphs
    artifacts: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, start, end) for reporting


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


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _alpha_or_roman(num: str) -> str:
    if num.isdigit():
        return "arabic"
    if len(num) == 1:
        return "roman" if num.lower() in "ivx" else "alpha"
    return "roman" if set(num.lower()) <= _ROMAN else "alpha"


def parse_numbering(heading: str, markdown: bool) -> Numbering | None:
    """The numbering style of a heading, read from its text."""
    if m := _KEYWORD_NUM.match(heading):
        kw, num = m["kw"].lower(), m["num"]
        return Numbering(f"kw:{kw}", f"{m['kw']} {num}", f"{_KEYWORDS[kw]}{num.lower()}")
    if m := _PAREN_NUM.match(heading):
        num = m["num"]
        return Numbering(f"paren:{_alpha_or_roman(num)}", f"({num})", num.lower())
    if m := _DECIMAL_NUM.match(heading):
        parts = m["num"].split(".")
        return Numbering(f"decimal:{len(parts)}", m["num"], parts[-1])
    if m := _DOTTED_NUM.match(heading):
        num = m["num"]
        return Numbering(f"dotted:{_alpha_or_roman(num)}", f"{num}.", num.lower())
    if markdown and (m := _BARE_NUM.match(heading)):
        return Numbering("decimal:1", m["num"], m["num"])
    return None


def _looks_like_plain_heading(line: _Line, prev_blank: bool, next_blank: bool) -> bool:
    """A standalone short line that starts with a numbering and does not read as a sentence."""
    text = line.text.strip()
    if len(text) > 160:
        return False
    if not (prev_blank and next_blank):
        # PDF text has no blank lines around headings; only an explicit "Chapter 2 ..." line counts there.
        numbering = parse_numbering(strip_markup(text), markdown=False)
        return bool(numbering and numbering.style.startswith("kw:") and len(text) <= 120 and not _TERMINAL.search(text))
    bold = text.startswith("**") and text.endswith("**")
    heading = strip_markup(text)
    numbering = parse_numbering(heading, markdown=False)
    if numbering is None:
        return bold and len(heading.split()) <= 12 and not _TERMINAL.search(heading)
    if numbering.style.startswith("kw:"):
        return True
    # "1. We recommend that ..." is a list item, not a heading.
    return not heading.endswith((".", ",", ";")) and len(heading.split()) <= 16


# ----------------------------------------------------------- artifact finding


def _find_toc(lines: list[_Line], later_headings: list[str]) -> range | None:
    """The table of contents: a run of heading-like lines with page numbers before the body."""
    later = [_norm(h) for h in later_headings]

    def is_entry(line: _Line) -> bool:
        text = line.text.strip()
        if len(text) > 250:
            return False
        if _TOC_PAGE_REF.search(text):
            return True
        norm = _norm(re.sub(r"\d+\s*[-–—]?\s*$", "", text))
        return bool(norm) and any(h == norm or h.startswith(norm) or norm.startswith(h) for h in later if len(h) > 8)

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
    if k >= 0 and lines[k].heading is not None and len(lines[k].heading.split()) <= 3 and not parse_numbering(lines[k].heading, True):
        return range(k, best.stop)
    return best


def _repeated_lines(lines: list[_Line]) -> set[str]:
    """Short lines that recur on many pages (running headers/footers), digits folded."""
    counts: dict[str, int] = {}
    for line in lines:
        text = line.text.strip()
        if text and len(text) < 100 and line.heading is None:
            key = re.sub(r"\d+", "#", text)
            counts[key] = counts.get(key, 0) + 1
    return {key for key, n in counts.items() if n >= 3}


def _mask_line_markup(text: str, line: _Line, mask: bytearray) -> None:
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


def parse_report(doc_text: str, markdown: bool = True) -> ParsedReport:
    """Recover title, sections and artifact mask from a report's original text."""
    lines = _split_lines(doc_text)
    mask = bytearray(len(doc_text))
    artifacts: list[tuple[str, int, int]] = []

    def remove(line: _Line, kind: str) -> None:
        line.removed = True
        for i in range(line.start, line.end):
            mask[i] = 1
        artifacts.append((kind, line.start, line.end))

    # 1. Headings: Markdown ones, then standalone numbered or bold lines.
    for idx, line in enumerate(lines):
        if markdown and (m := _MD_HEADING.match(line.text)):
            text = strip_markup(m.group(2))
            if text:
                line.heading, line.md_level = text, len(m.group(1))
        elif not line.blank:
            prev_blank = idx == 0 or lines[idx - 1].blank
            next_blank = idx + 1 == len(lines) or lines[idx + 1].blank
            if _looks_like_plain_heading(line, prev_blank, next_blank):
                line.heading = strip_markup(line.text)

    # 2. Title: the first heading, or a short first line.
    first = next((i for i, ln in enumerate(lines) if not ln.blank), None)
    title = ""
    if first is not None:
        cand = lines[first]
        if cand.heading is not None and not parse_numbering(cand.heading, markdown):
            title = cand.heading
            remove(cand, "title")
        elif cand.heading is None and len(cand.text.strip()) <= 160 and not _TERMINAL.search(cand.text):
            title = strip_markup(cand.text)
            remove(cand, "title")

    # 3. Table of contents.
    headings_idx = [i for i, ln in enumerate(lines) if ln.heading is not None and not ln.removed]
    toc = _find_toc(lines, [lines[i].heading for i in headings_idx])
    if toc is not None:
        for i in toc:
            if not lines[i].blank:
                remove(lines[i], "toc")
                lines[i].heading = None

    # 4. Page numbers, recurring header/footer lines, running headers that repeat the title.
    repeated = _repeated_lines([ln for ln in lines if not ln.removed])
    norm_title = _norm(title)
    for idx, line in enumerate(lines):
        if line.removed or line.blank:
            continue
        text = line.text.strip()
        if line.heading is None and _PAGE_NUMBER_LINE.match(text):
            remove(line, "page-number")
        elif line.heading is None and (re.sub(r"\d+", "#", text) in repeated or (norm_title and _norm(text) == norm_title)):
            remove(line, "running-header")
        elif line.heading is not None and not parse_numbering(line.heading, markdown):
            norm = _norm(line.heading)
            if norm_title and len(norm.split()) >= 3 and norm in norm_title:
                remove(line, "running-header")
                line.heading = None
            elif _interrupts_sentence(lines, idx):
                remove(line, "running-header")
                line.heading = None

    # 5. Body-line markup (list markers, dash bullets, emphasis).
    for line in lines:
        if not line.removed and line.heading is None and not line.blank:
            _mask_line_markup(doc_text, line, mask)

    sections, paragraphs = _build_sections(doc_text, lines, markdown, mask)
    return ParsedReport(title=title, sections=sections, mask=mask, paragraphs=paragraphs, artifacts=artifacts)


def _neighbour_text(lines: list[_Line], idx: int, step: int) -> _Line | None:
    i = idx + step
    while 0 <= i < len(lines):
        if not lines[i].blank and not lines[i].removed:
            return lines[i]
        i += step
    return None


def _interrupts_sentence(lines: list[_Line], idx: int) -> bool:
    before, after = _neighbour_text(lines, idx, -1), _neighbour_text(lines, idx, 1)
    if before is None or after is None or before.heading is not None or after.heading is not None:
        return False
    body = strip_markup(after.text)
    return not _TERMINAL.search(before.text) and body[:1].islower()


def _ends_sentence(text: str) -> bool:
    return bool(_TERMINAL.search(text))


def _build_sections(
    doc_text: str, lines: list[_Line], markdown: bool, mask: bytearray
) -> tuple[list[Section], dict[str, list[tuple[int, int]]]]:
    """Assign levels by numbering style, group paragraphs, join page-broken ones."""
    style_level: dict[str, int] = {}
    stack: list[dict] = []  # open sections, each {"id", "level", "md_level", ...}
    nodes: list[dict] = []
    used_ids: set[str] = set()

    def open_section(line: _Line) -> dict:
        numbering = parse_numbering(line.heading, markdown)
        if numbering is not None:
            if numbering.style not in style_level:
                deepest = stack[-1]["level"] if stack else 0
                style_level[numbering.style] = deepest + 1
            level = style_level[numbering.style]
            token = numbering.token
        else:
            # Unnumbered: a child if its Markdown level is deeper than the open section's, else top level.
            deeper = stack and line.md_level and stack[-1]["md_level"] and line.md_level > stack[-1]["md_level"]
            level = stack[-1]["level"] + 1 if deeper else 1
            token = "-".join(_norm(line.heading).split()[:4]) or "section"
        while stack and stack[-1]["level"] >= level:
            stack.pop()
        parent = stack[-1] if stack else None
        sid = f"{parent['id']}.{token}" if parent else token
        base, n = sid, 2
        while sid in used_ids:
            sid, n = f"{base}-{n}", n + 1
        used_ids.add(sid)
        node = {
            "id": sid,
            "number": numbering.label if numbering else "",
            "title": line.heading,
            "path": (*parent["path"], line.heading) if parent else (line.heading,),
            "level": level,
            "md_level": line.md_level,
            "parent_id": parent["id"] if parent else None,
            "start": line.start,
            "paragraphs": [],
        }
        stack.append(node)
        nodes.append(node)
        return node

    opening = {
        "id": "opening", "number": "", "title": "", "path": (), "level": 0, "md_level": 0,
        "parent_id": None, "start": None, "paragraphs": [],
    }
    current = opening
    para: list[_Line] = []
    gap_blank, gap_removed = 0, False
    last_para_owner: dict | None = None

    def flush() -> None:
        nonlocal para, gap_blank, gap_removed, last_para_owner
        if not para:
            return
        start, end = para[0].start, para[-1].end
        prev = current["paragraphs"][-1] if current["paragraphs"] and last_para_owner is current else None
        joined = False
        if prev is not None:
            prev_text = doc_text[prev[0]:prev[1]]
            next_text = strip_markup(para[0].text).lstrip("-—–• ")
            if not _ends_sentence(prev_text) and (next_text[:1].islower() or gap_blank >= 2 or gap_removed):
                current["paragraphs"][-1] = (prev[0], end)
                joined = True
        if not joined:
            current["paragraphs"].append((start, end))
        last_para_owner = current
        para, gap_blank, gap_removed = [], 0, False

    for line in lines:
        if line.heading is not None and not line.removed:
            flush()
            current = open_section(line)
            last_para_owner = None
            gap_blank, gap_removed = 0, False
            continue
        if line.removed:
            if para:
                flush()
            gap_removed = gap_removed or bool(last_para_owner)
            continue
        if line.blank:
            if para:
                flush()
            gap_blank += 1
            continue
        para.append(line)
    flush()

    doc_end = len(doc_text)
    sections: list[Section] = []
    paragraphs: dict[str, list[tuple[int, int]]] = {}
    if opening["paragraphs"]:
        spans = opening["paragraphs"]
        sections.append(Section(
            id="opening", document_id="", number="", title="", path=(), level=0, parent_id=None,
            char_start=spans[0][0], char_end=spans[-1][1], body_spans=tuple(spans),
        ))
        paragraphs["opening"] = spans
    for i, node in enumerate(nodes):
        end = doc_end
        for later in nodes[i + 1:]:
            if later["level"] <= node["level"]:
                end = later["start"]
                break
        end = _trim_end(doc_text, mask, node["start"], end)
        sections.append(Section(
            id=node["id"], document_id="", number=node["number"], title=node["title"], path=node["path"],
            level=node["level"], parent_id=node["parent_id"], char_start=node["start"], char_end=end,
            body_spans=tuple(node["paragraphs"]),
        ))
        paragraphs[node["id"]] = node["paragraphs"]
    return sections, paragraphs


def _trim_end(text: str, mask: bytearray, start: int, end: int) -> int:
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


def with_document_id(sections: list[Section], document: Document) -> list[Section]:
    from dataclasses import replace

    return [replace(s, document_id=document.id) for s in sections]
