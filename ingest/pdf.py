"""PDF: page text, printed page labels and the bookmark tree (pypdf), and bookmarks anchored in the text.

When a PDF has bookmarks they are its section tree: each is anchored on its target page at the line
where its printed number (or, unnumbered, its title) appears, else at the top of that page. Nested
bookmarks state their level; flat ones leave it to the printed numbering.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.numbering import parse_numbering

# Joined between PDF pages: a run of blank lines, the same signature a page break leaves in converted Markdown.
PAGE_SEPARATOR = "\n\n\n\n"
# An unnumbered bookmark's title is looked for this many lines from the top of its page.
TITLE_SEARCH_LINES = 8
_DATE_LINE = re.compile(r"^\(\d{1,2}-\d{1,2}-\d{2,4}\)$")  # the revision date under a margin heading


@dataclass(frozen=True)
class Bookmark:
    title: str
    page: int  # 0-based page index
    depth: int  # nesting depth, 1 = top


@dataclass
class PdfContent:
    pages: list[str]
    labels: tuple[str, ...]
    bookmarks: list[Bookmark]


def read_pdf(path) -> PdfContent:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    pages = [page.extract_text() or "" for page in reader.pages]
    try:
        labels = tuple(str(label) for label in reader.page_labels)
    except Exception:  # a damaged label tree must not cost the text; labels are then the page numbers
        labels = tuple(str(n) for n in range(1, len(pages) + 1))
    return PdfContent(pages, labels, _bookmarks(reader))


def _bookmarks(reader) -> list[Bookmark]:
    out: list[Bookmark] = []

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page is not None and page >= 0:
                out.append(Bookmark(title, page, depth))

    try:
        walk(reader.outline, 1)
    except Exception:
        return []
    return out


def join_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    starts, parts, pos = [], [], 0
    for i, page in enumerate(pages):
        if i:
            parts.append(PAGE_SEPARATOR)
            pos += len(PAGE_SEPARATOR)
        starts.append(pos)
        parts.append(page)
        pos += len(page)
    return "".join(parts), tuple(starts)


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w]+", " ", text.lower()).split()


def _prefix_match(line_words: list[str], title_words: list[str]) -> bool:
    """The line starts the title (a wrapped heading) or the title starts the line."""
    n = min(len(line_words), len(title_words))
    return n > 0 and line_words[:n] == title_words[:n]


def _heading_lines(texts: list[str], first: int, stop: int, title_words: list[str]) -> int:
    """Lines after ``first`` that still spell the title (margin headings wrap over 2-4 lines)."""
    end, remaining = first + 1, title_words
    while end < stop and remaining:
        line = texts[end].strip()
        words = _words(line)
        if _DATE_LINE.match(line):
            end += 1
            continue
        if not words or remaining[: len(words)] != words:
            break
        remaining = remaining[len(words):]
        end += 1
    return end


def anchor_bookmarks(bookmarks: list[Bookmark], texts: list[str], page_lines: list[range],
                     skip: set[int]) -> list[tuple[int, int, Bookmark]]:
    """(first line, end line, bookmark) for every bookmark, in reading order."""
    anchored: list[tuple[int, int, Bookmark]] = []
    cursor = 0
    for mark in bookmarks:
        if mark.page >= len(page_lines):
            continue
        page = page_lines[mark.page]
        start = max(page.start, cursor)
        numbering = parse_numbering(mark.title, explicit=True)
        title_words = _words(numbering.rest if numbering else mark.title)
        found = None
        for i in range(start, page.stop):
            if i in skip:
                continue
            line = texts[i].strip()
            if numbering is not None:
                if re.match(rf"^(?:\w+\s+)?{re.escape(numbering.label)}(?![\w.\-])", line):
                    found = i
                    break
            elif i - start < TITLE_SEARCH_LINES and _words(line) and _prefix_match(_words(line), title_words):
                found = i
                break
        if found is None:
            first = next((i for i in range(start, page.stop) if i not in skip and texts[i].strip()), start)
            anchored.append((first, first, mark))
            cursor = first
            continue
        on_line = _words(texts[found].split(numbering.label, 1)[-1]) if numbering else _words(texts[found])
        remaining = title_words[len(on_line):] if title_words[: len(on_line)] == on_line else title_words
        end = _heading_lines(texts, found, page.stop, remaining)
        anchored.append((found, end, mark))
        cursor = end
    return anchored

