"""Page furniture: running headers, footers and page-number lines, found by recurrence at page boundaries.

A line is furniture only where pages meet: at the top or bottom of a page
(between form feeds, or a PDF page's own text), or next to a page-number line
when a converter left no page breaks. Body lines that merely look alike
("Text of section 12 is here.") are never taken, because they do not sit at
page boundaries. Everything here is linear in the number of lines.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ingest.numbering import parse_numbering

# How many non-blank lines at each page edge are looked at, and how often a line must recur there.
EDGE_LINES = 6
MIN_RECURRENCE = 3
MIN_PAGE_SHARE = 0.25
# Without page breaks: lines this close to a page-number line count as its neighbours.
ANCHOR_REACH = 2
MAX_FURNITURE_CHARS = 120  # a running header or footer is one short line
MIN_PAGE_CHARS = 200  # footers recur a page apart, never on neighbouring lines (a listing "Step 1", "Step 2")

_PAGE_NUMBER = re.compile(
    r"^\s*(?:[-–—]\s*)?(?:\[?\s*page\s+)?(?:\d{1,4}|[ivx]{1,6})(?:\s*(?:of|/)\s*\d{1,4})?\s*\]?(?:\s*[-–—])?\s*$", re.I)
# Front matter is numbered i, ii, … xxiv: a lone "c", "d" or "m" is a letter (a fence's "```c"), not a page.
_FENCE = re.compile(r"^\s{0,3}(?:`{3,}|~{3,})")
# A footer that carries the page number at one end: "2 Example Agency | March 2024",
# "Doe   Informational   [Page 12]", "Annual Review | page 3".
# The number stands alone: not the tail of a version, an address or a date ("v10.0.0", "pull/41678", "2021-10-04").
_NUMBER_AT_END = re.compile(
    r"^(?P<core>.*?\S)\s*[|.,:;\-–—]?\s*(?:\[?\s*page\s+)?(?<![\w./])(?<!\d-)(?P<num>\d{1,4})\s*\]?\s*$", re.I)
_NUMBER_AT_START = re.compile(r"^\s*(?:page\s+)?(?P<num>\d{1,4})\s*[|.,:;\-–—]?\s+(?P<core>\S.*)$", re.I)
_MD_MARKERS = re.compile(r"^\s{0,3}#{1,6}\s+|[*_`]+")


@dataclass(frozen=True)
class Furniture:
    kinds: dict[int, str]  # line index -> "header" | "footer" | "page-number"


def fold(text: str) -> str:
    """A line's recurrence key: Markdown markers dropped, numbers folded, spaces collapsed."""
    text = _MD_MARKERS.sub("", text)
    text = re.sub(r"\d+(?:[.\-/]\d+)*", "#", text)
    return " ".join(text.split()).strip(" .").lower()


def exact(text: str) -> str:
    return " ".join(_MD_MARKERS.sub("", text).split()).lower()


_SENTENCE = re.compile(r"[a-z]{2,}.*[a-z)\]\d][.!?][\"'”’)]?\s*$")


def reads_as_sentence(text: str) -> bool:
    """Body prose ("Text of section 12 is here."): several words, lower-case ones, a full stop at the end."""
    t = text.strip()
    if len(t.split()) >= 8 and re.search(r"\b[a-z]{3,}[.!?] [A-Z][a-z]", t):  # not "Cat. No."
        return True  # one sentence ends and the next begins: running text
    return len(t.split()) >= 4 and bool(_SENTENCE.search(t))


def _recurs(line: str, exact_counts: Counter, folded_counts: Counter, need: int) -> bool:
    """Identical text recurring is furniture; text recurring only with its numbers changed is, unless it
    reads as a sentence (body lines that differ only in a number are still body)."""
    if exact_counts[exact(line)] >= need:
        return True
    return folded_counts[fold(line)] >= need and bool(fold(line)) and not reads_as_sentence(line) \
        and not _number_alone(line)


def _number_alone(line: str) -> bool:
    """A chapter's printed number on its own line ("## **Chapter 2**", "Part II"): it recurs with its number
    changed at the top of a page as each chapter opens, which is no running header."""
    numbering = parse_numbering(_MD_MARKERS.sub("", line).strip(), explicit=True)
    return numbering is not None and numbering.kind == "division" and not numbering.rest.strip()


def is_page_number(text: str) -> bool:
    return bool(text.strip()) and not _FENCE.match(text) and bool(_PAGE_NUMBER.match(_MD_MARKERS.sub("", text)))


def _numbered_cores(text: str) -> list[tuple[str, int, bool]]:
    """(text without the page number, the number, whether it opens the line) for a number at either end."""
    text = _MD_MARKERS.sub("", text).strip()
    out = []
    for pattern in (_NUMBER_AT_END, _NUMBER_AT_START):
        if m := pattern.match(text):
            core = fold(m["core"])
            if len(core.split()) >= 2:
                out.append((core, int(m["num"]), pattern is _NUMBER_AT_START))
    return out


def _edges(lines: list[str], page: range) -> tuple[list[int], list[int]]:
    body = [i for i in page if lines[i].strip()]
    return body[:EDGE_LINES], body[::-1][:EDGE_LINES]


def by_page_edges(lines: list[str], pages: list[range], protected: set[int] = frozenset()) -> Furniture:
    """Furniture of a document whose page breaks are known (form feeds, PDF pages). ``protected`` lines
    (where the document's bookmarks point) are headings, never furniture: a walk stops at them."""
    counts = {side: (Counter(), Counter()) for side in ("header", "footer")}
    edges = [_edges(lines, page) for page in pages]
    for top, bottom in edges:
        for side, where in (("header", top), ("footer", bottom)):
            counts[side][0].update({exact(lines[i]) for i in where})
            counts[side][1].update({fold(lines[i]) for i in where})
    # On every page of a short document, or on a good share of a long one's pages.
    need = max(2, min(len(pages), max(MIN_RECURRENCE, int(MIN_PAGE_SHARE * len(pages)))))
    stepping = _page_stepping(lines, edges)
    kinds: dict[int, str] = {}
    for top, bottom in edges:
        # Footers first: on a near-empty page the two zones overlap, and a footer line is no header.
        _walk_edge(lines, _until(bottom, protected), "footer", counts["footer"], need, kinds, stepping)
        _walk_edge(lines, _until([i for i in top if i not in kinds], protected), "header", counts["header"], need,
                   kinds, stepping)
    return Furniture(kinds)


def _page_stepping(lines: list[str], edges: list[tuple[list[int], list[int]]]) -> set[int]:
    """Edge lines whose number keeps step with the page they are on, the rest of the text the same, on
    neighbouring pages: a running header or footer that changes with the chapter ("Chapter 2: Structure 3"
    on one page, "... 4" on the next), too short-lived for the document-wide count above. A number that
    opens the line counts only before words ("4 User Guide"): "6 15-35 Amount" is a table row."""
    seen: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for page, (top, bottom) in enumerate(edges):
        for i in dict.fromkeys(top + bottom):
            for core, number, at_start in _numbered_cores(lines[i]):
                if not (at_start and "#" in core):
                    seen.setdefault((core, number - page), []).append((page, i))
    stepping: set[int] = set()
    for found in seen.values():
        pages = sorted({page for page, _ in found})
        if any(b - a <= STEPPING_PAGE_GAP for a, b in zip(pages, pages[1:])):
            stepping.update(i for _, i in found)
    return stepping


STEPPING_PAGE_GAP = 2  # a chapter's running header is on pages next to each other (or every other one)


# A varying line between two footer lines ("4.2.1.6 Operations Manual") is one too. Only at the
# bottom: at the top, the line under a running header is often the page's first heading.
SANDWICHED = {"footer": 1, "header": 0}


def _until(side: list[int], protected) -> list[int]:
    for n, i in enumerate(side):
        if i in protected:
            return side[:n]
    return side


def _walk_edge(lines: list[str], side: list[int], kind: str, counts, need: int, kinds: dict[int, str],
               stepping: set[int] = frozenset()) -> None:
    """Walk inward from a page edge while lines are furniture; the first body line stops the walk."""
    pending: list[int] = []
    for i in side:
        if len(lines[i]) > MAX_FURNITURE_CHARS or reads_as_sentence(lines[i]) and counts[0][exact(lines[i])] < need:
            return  # a paragraph or a sentence is body text
        if is_page_number(lines[i]) or _recurs(lines[i], *counts, need) or i in stepping:
            for j in pending:
                kinds[j] = kind
            pending.clear()
            kinds[i] = "page-number" if is_page_number(lines[i]) else kind
        elif len(pending) < SANDWICHED[kind] and re.search(r"\d", lines[i]):
            # it varies because it carries the page's section number (a dictionary-style footer)
            pending.append(i)
        else:
            return


def by_page_number_anchors(lines: list[str], candidates: set[int] | None = None) -> Furniture:
    """Furniture of a document with no page breaks: page-number lines and numbered footers whose text
    recurs with different numbers are the boundaries; lines recurring right beside them are headers."""
    allowed = candidates if candidates is not None else set(range(len(lines)))
    cores: dict[str, set[int]] = {}
    numbered: dict[int, list[str]] = {}
    for i in allowed:
        if len(lines[i]) > MAX_FURNITURE_CHARS or parse_numbering(lines[i]) is not None:
            continue  # a numbered heading ("12. Results") is not a footer
        for core, number, _ in _numbered_cores(lines[i]):
            cores.setdefault(core, set()).add(number)
            numbered.setdefault(i, []).append(core)
    kinds: dict[int, str] = {}
    spread = {c for c, where in _positions(numbered).items() if _is_spread(where, lines)}
    for i in sorted(allowed):
        if is_page_number(lines[i]) and len(lines[i].strip()) < 20:
            kinds[i] = "page-number"
        elif any(len(cores[c]) >= MIN_RECURRENCE and c in spread for c in numbered.get(i, ())):
            kinds[i] = "footer"
    anchors = sorted(kinds)
    near: Counter[str] = Counter()
    near_exact: Counter[str] = Counter()
    neighbours: list[list[int]] = []
    non_blank = [i for i in range(len(lines)) if lines[i].strip()]
    position = {line: n for n, line in enumerate(non_blank)}
    for a in anchors:
        n = position[a]
        around = [non_blank[k] for k in range(max(0, n - ANCHOR_REACH), min(len(non_blank), n + ANCHOR_REACH + 1))
                  if non_blank[k] != a and non_blank[k] in allowed]
        neighbours.append(around)
        near.update({fold(lines[i]) for i in around})
        near_exact.update({exact(lines[i]) for i in around})
    for around in neighbours:
        for i in around:
            # Without page breaks the evidence is weaker: a sentence beside a page number stays body text.
            if (i not in kinds and len(lines[i]) <= MAX_FURNITURE_CHARS and not reads_as_sentence(lines[i])
                    and _recurs(lines[i], near_exact, near, MIN_RECURRENCE)):
                kinds[i] = "header"
    return Furniture(kinds)


def _positions(numbered: dict[int, list[str]]) -> dict[str, list[int]]:
    where: dict[str, list[int]] = {}
    for i in sorted(numbered):
        for core in numbered[i]:
            where.setdefault(core, []).append(i)
    return where


def _is_spread(where: list[int], lines: list[str]) -> bool:
    """A footer comes once a page: its occurrences are a page of text apart, not line after line."""
    if len(where) < 2:
        return False
    text_between = sum(len(lines[i]) for i in range(where[0], where[-1] + 1)) / (len(where) - 1)
    return text_between >= MIN_PAGE_CHARS


def form_feed_pages(lines: list[str]) -> list[range] | None:
    """Pages split at form feeds (a line holding ``\\f`` ends its page), or None when there are too few."""
    breaks = [i for i, line in enumerate(lines) if "\f" in line]
    if len(breaks) < MIN_RECURRENCE - 1:
        return None
    pages, start = [], 0
    for b in breaks:
        pages.append(range(start, b + 1))
        start = b + 1
    pages.append(range(start, len(lines)))
    return pages
