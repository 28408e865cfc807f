"""Artifact steps of the parse: page furniture, tables of contents, the title, running headers that
became headings, and Markdown markup. Each step masks spans of the original; none deletes text."""
from __future__ import annotations

import re
from bisect import bisect_right

from ingest import furniture
from ingest.lines import TERMINAL, find_heading_toc, mask_line_markup, normalize_heading, strip_markup
from ingest.toc import DotLeaderToc, find_dot_leader_toc

MAX_TITLE_CHARS = 160
# Inline HTML in Markdown body text (<span id="page-2-0"></span>, <sup>1</sup>): markup, not text.
_INLINE_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")


def page_line_ranges(doc, page_starts: tuple[int, ...]) -> list[range]:
    """Line ranges of each PDF page."""
    starts = [ln.start for ln in doc.lines]
    bounds = [bisect_right(starts, s) - 1 for s in page_starts] + [len(doc.lines)]
    return [range(max(0, bounds[i]), bounds[i + 1]) for i in range(len(page_starts))]


def remove_page_furniture(doc, page_starts: tuple[int, ...], protected: set[int] = frozenset(),
                          code: set[int] = frozenset()) -> None:
    """Running headers, footers and page numbers. ``code``: lines of fenced code, which repeat like
    furniture ("// Prints: 0", a fence's "```c") and never are."""
    pages = page_line_ranges(doc, page_starts) if page_starts else furniture.form_feed_pages(doc.texts)
    if pages:
        found = furniture.by_page_edges(doc.texts, pages, protected)
    else:
        candidates = set(range(len(doc.texts))) - set(code) if code else None
        found = furniture.by_page_number_anchors(doc.texts, candidates)
    for idx, kind in found.kinds.items():
        doc.remove(idx, kind)


def remove_dot_leader_toc(doc, protected: set[int] = frozenset()) -> DotLeaderToc:
    """Mask a dot-leader table of contents (or index); ``protected`` lines stay: a line a bookmark points
    at is a heading, a line of fenced code is a program's text."""
    toc = find_dot_leader_toc(doc.texts, doc.removed())
    for idx in sorted(toc.lines - set(protected)):
        doc.remove(idx, "toc")
    return toc


def take_title(doc) -> str:
    """The first heading (unnumbered), or a short first line, is the document's title."""
    first = next((i for i, ln in enumerate(doc.lines) if not ln.blank and not ln.removed and not ln.heading_part),
                 None)  # a heading part: an overline over the title
    if first is None:
        return ""
    cand = doc.lines[first]
    if cand.heading is not None and cand.numbering is None:
        title = cand.heading
        doc.remove(first, "title")
        return title
    text = cand.text.strip()
    if not doc.markdown and _COLUMN_GAP.search(text):
        return _centred_title(doc, first)  # a two-column front page ("Internet Engineering …   A. Author")
    if cand.heading is None and len(text) <= MAX_TITLE_CHARS and not TERMINAL.search(text) and not cand.block:
        doc.remove(first, "title")
        return " ".join(strip_markup(text).lstrip("# ").split())
    return ""


_COLUMN_GAP = re.compile(r"\S {3,}\S")
MIN_CENTRE_INDENT = 4


def _centred_title(doc, first: int) -> str:
    """Plain text whose first lines are columns: the title is the first centred line before any heading."""
    for i in range(first, len(doc.lines)):
        line = doc.lines[i]
        if line.heading is not None:
            return ""
        text = line.text.strip()
        indent = len(line.text) - len(line.text.lstrip(" "))
        if (text and not line.removed and indent >= MIN_CENTRE_INDENT and not _COLUMN_GAP.search(text)
                and len(text) <= MAX_TITLE_CHARS and not TERMINAL.search(text)):
            doc.remove(i, "title")
            return text
    return ""


def remove_heading_toc(doc, code: set[int] = frozenset()) -> None:
    """A ToC without dot leaders: a run of heading-like lines with page numbers before the body (never
    inside fenced code: a program's output table is no ToC)."""
    later = [ln.heading for ln in doc.lines if ln.heading is not None and not ln.removed]
    toc = find_heading_toc(doc.lines, later)
    if toc is not None:
        for i in toc:
            if not doc.lines[i].blank and i not in code:
                doc.remove(i, "toc")


def _neighbour(doc, idx: int, step: int):
    i = idx + step
    while 0 <= i < len(doc.lines):
        if not doc.lines[i].blank and not doc.lines[i].removed:
            return doc.lines[i]
        i += step
    return None


def _interrupts_sentence(doc, idx: int) -> bool:
    before, after = _neighbour(doc, idx, -1), _neighbour(doc, idx, 1)
    if before is None or after is None or before.heading is not None or after.heading is not None:
        return False
    if before.block in PROSELESS_BLOCKS or after.block in PROSELESS_BLOCKS:
        return False  # a code fence or a table row ends no sentence
    return not TERMINAL.search(before.text) and strip_markup(after.text)[:1].islower()


PROSELESS_BLOCKS = {"code", "fence", "html", "table"}


_PAGE_AT_END = re.compile(r"^(?:\d{1,4}\s+(?P<a>\D.*)|(?P<b>.*\D)\s+\d{1,4})$")


def _without_page_number(heading: str) -> str | None:
    """"12 CHAPTER 1. COMPILATION" -> "chapter 1 compilation": a heading that carries a page number."""
    m = _PAGE_AT_END.match(heading.strip())
    key = normalize_heading(m["a"] or m["b"]) if m else ""
    return key if len(key.split()) >= 2 else None  # "Step 1", "Step 2" are a sequence, not a header


def remove_heading_furniture(doc, title: str) -> None:
    """Headings that are running headers: the title repeated, one that cuts a sentence in two, the same
    unnumbered text recurring on three or more pages, one that recurs with only a page number changed, or
    an earlier heading printed again with a page number ("1.1. COMPILED LANGUAGES 13", "12 CHAPTER 1.
    COMPILATION": a book's page header names the chapter or section the page is in)."""
    paged: dict[str, int] = {}
    for ln in doc.lines:
        if ln.heading is not None and (key := _without_page_number(ln.heading)):
            paged[key] = paged.get(key, 0) + 1
    earlier = {normalize_heading(title)} if title else set()
    for idx, line in enumerate(doc.lines):
        if line.heading is None or line.removed:
            continue
        key = _without_page_number(line.heading)
        if key and (paged[key] >= furniture.MIN_RECURRENCE or key in earlier):
            doc.remove(idx, "header")
        else:
            earlier.add(normalize_heading(line.heading))
    norm_title = normalize_heading(title)
    counts: dict[str, int] = {}
    for ln in doc.lines:
        if ln.heading is not None and ln.numbering is None:
            counts[normalize_heading(ln.heading)] = counts.get(normalize_heading(ln.heading), 0) + 1
    repeating = _repeated_subheadings(doc)
    for idx, line in enumerate(doc.lines):
        if line.heading is None or line.numbering is not None or line.removed:
            continue
        norm = normalize_heading(line.heading)
        if norm_title and len(norm.split()) >= 3 and norm in norm_title:
            doc.remove(idx, "header")
        elif counts.get(norm, 0) >= furniture.MIN_RECURRENCE and norm not in repeating:
            doc.remove(idx, "header")
        elif _interrupts_sentence(doc, idx):
            doc.remove(idx, "header")


def _repeated_subheadings(doc) -> set[str]:
    """Unnumbered titles that recur as a sub-heading of each of several parents ("### Commits" under
    every "## Version …"): each time one level below a different, shallower heading. A running header
    recurs on every page, so twice or more under one parent, or at the top level, and is not one of them."""
    parents: dict[str, list[int | None]] = {}
    stack: list[tuple[int, int]] = []  # (md_level, line) of the open headings
    for idx, line in enumerate(doc.lines):
        if line.heading is None or line.removed or not line.md_level:
            continue
        while stack and stack[-1][0] >= line.md_level:
            stack.pop()
        if line.numbering is None:
            parents.setdefault(normalize_heading(line.heading), []).append(stack[-1][1] if stack else None)
        stack.append((line.md_level, idx))
    return {norm for norm, above in parents.items() if None not in above and len(set(above)) == len(above)}


def mask_markdown_markup(doc) -> None:
    """List markers, emphasis, inline HTML, fence lines and table delimiter rows of body lines."""
    for idx, line in enumerate(doc.lines):
        if line.removed or line.heading is not None or line.blank or line.heading_part:
            continue
        if line.block == "fence":
            doc.mask_span(line.start, line.end)
            continue
        if line.block == "code":
            continue
        if line.block == "table" and _TABLE_DELIMITER.match(line.text):
            doc.mask_span(line.start, line.end)
            continue
        if line.block == "heading-rejected":
            m = re.match(r"^[ \t]{0,3}#{1,6}[ \t]*", line.text)
            if m:
                doc.mask_span(line.start, line.start + m.end())
        mask_line_markup(doc.text, line, doc.mask)
        for m in _INLINE_TAG.finditer(line.text):
            doc.mask_span(line.start + m.start(), line.start + m.end())


# A ToC without page leaders (a PDF's printed contents, a Markdown table): lines that name later headings.
OUTLINE_TOC_MIN = 3
OUTLINE_TOC_GAP = 2
MIN_PREFIX_WORDS = 3
MAX_PREFIX_WORDS = 24  # a wrapped ToC line is a title's first words; longer "titles" are not looked into


_ROMAN_PAGE = re.compile(r"^[ivxlcdm]{1,6}$")


def _toc_key(text: str) -> str:
    """A line as a ToC entry: table pipes, Markdown markers and a trailing page number dropped."""
    text = re.sub(r"\]\([^)]*\)", " ", text)  # a Markdown link's target: "[1.1 Scope](#scope)"
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+(?=\S)", "", text) if re.match(r"^\s*[-*+]\s", text) else text
    text = re.sub(r"(?:\.\s?){3,}", " ", text)  # a dot leader
    words = normalize_heading(re.sub(r"[|#*_\[\]]", " ", text)).split()
    while len(words) > 1 and (words[-1].isdigit() and len(words[-1]) <= 4 or _ROMAN_PAGE.match(words[-1])):
        words.pop()  # the page number(s) at the end
    return " ".join(words)


def remove_outline_toc(doc, code: set[int] = frozenset()) -> None:
    """Runs of three or more lines naming headings that come later ("2.3.59.1 Program Scope and
    Objectives", "| 2.1 Simplifying Sparse Routing | 5 |") are a table of contents, not body text;
    lines of fenced code never are."""
    later: dict[str, int] = {}
    for idx, line in enumerate(doc.lines):
        if line.heading is not None and not line.removed and len(normalize_heading(line.heading).split()) >= 2:
            later[normalize_heading(line.heading)] = idx  # last occurrence: the heading in the body
    if not later:
        return
    prefixes = {" ".join(k.split()[:n]) for k in later
                for n in range(MIN_PREFIX_WORDS, min(len(k.split()), MAX_PREFIX_WORDS))}

    def names_later(idx: int) -> bool:
        line = doc.lines[idx]
        if line.removed or line.blank or line.heading is not None or idx in code:
            return False
        key = _toc_key(line.text)
        return bool(key) and (later.get(key, -1) > idx or (key in prefixes and len(key.split()) >= MIN_PREFIX_WORDS))

    run: list[int] = []
    gap: list[int] = []

    def close() -> None:
        if len(run) >= OUTLINE_TOC_MIN:
            for i in range(run[0], run[-1] + 1):
                if not doc.lines[i].blank and doc.lines[i].heading is None:
                    doc.remove(i, "toc")
            _remove_toc_heading(doc, run[0])
        run.clear()
        gap.clear()

    for idx, line in enumerate(doc.lines):
        if line.blank or line.removed or line.heading_part:
            continue
        if names_later(idx):
            run.append(idx)
            gap.clear()
        elif run and line.heading is None and len(line.text.split()) <= 6 and len(gap) < OUTLINE_TOC_GAP:
            gap.append(idx)
        else:
            close()
    close()


def _remove_toc_heading(doc, first: int) -> None:
    """An unnumbered Markdown heading of a few words right above a ToC ("Contents") is the ToC's own."""
    j = first - 1
    while j >= 0 and (doc.lines[j].blank or doc.lines[j].removed):
        j -= 1
    line = doc.lines[j] if j >= 0 else None
    if (line is not None and line.heading is not None and line.md_level and line.numbering is None
            and len(line.heading.split()) <= MAX_TOC_HEADING_WORDS):
        doc.remove(j, "toc")


MAX_TOC_HEADING_WORDS = 3
