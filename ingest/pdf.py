"""PDF: page text, printed page labels and the bookmark tree (pypdf), and bookmarks anchored in the text.

When a PDF has bookmarks they are its section tree: each is anchored on its target page at the line
where its printed number (or, unnumbered, its title) appears, else at the top of that page. Nested
bookmarks state their level; flat ones leave it to the printed numbering.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ingest.numbering import parse_numbering

# Joined between PDF pages: a run of blank lines, the same signature a page break leaves in converted Markdown.
PAGE_SEPARATOR = "\n\n\n\n"
# An unnumbered bookmark's title is looked for this many lines from the top of its page.
TITLE_SEARCH_LINES = 8
# A bookmarked line that goes on for this many words past its title is a run-in heading over body text,
# not a longer printed form of the title ("Results and Discussion" under the bookmark "Results").
RUN_IN_MIN_WORDS = 4
_APPENDIX_LETTER = re.compile(r"^\s*[A-Z]\s+\S")
DATE_LINE = re.compile(r"^\(\d{1,2}-\d{1,2}-\d{2,4}\)$")  # the revision date under a margin heading


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
    font_headings: list[Bookmark]  # without bookmarks: lines set larger or bolder than the body text


def read_pdf(path, outline: bool = True) -> PdfContent:
    """Pages, labels and bookmarks; ``outline=False`` reads the PDF as if it had none (font headings
    instead), which the structure benchmark uses to score that path on PDFs whose outline is known."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    marks = _bookmarks(reader) if outline else []
    pages, fonts = [], []
    for page in reader.pages:
        if marks:
            pages.append(page.extract_text() or "")
            continue
        runs = FontRuns()
        pages.append(page.extract_text(visitor_text=runs.visit) or "")
        fonts.append(runs.lines())
    try:
        labels = tuple(str(label) for label in reader.page_labels)
    except Exception:  # a damaged label tree must not cost the text; labels are then the page numbers
        labels = tuple(str(n) for n in range(1, len(pages) + 1))
    return PdfContent(pages, labels, marks, font_headings(fonts) if fonts else [])


# Font fallback: a heading is set at least this much larger than the body, or bold at body size.
LARGER = 1.15
MAX_HEADING_WORDS = 15


class FontRuns:
    """Collects, per text line of a page, its characters per (font size, bold) from pypdf's text visitor."""

    def __init__(self):
        self._lines: list[tuple[str, dict]] = []
        self._text: list[str] = []
        self._sizes: dict[tuple[float, bool], int] = {}

    def visit(self, text, cm, tm, font, size) -> None:
        scale = abs((tm[3] if tm else 1) or 1) * abs((cm[3] if cm else 1) or 1)
        bold = "bold" in str((font or {}).get("/BaseFont", "")).lower()
        for n, piece in enumerate(str(text).split("\n")):
            if n:
                self._close()
            if piece.strip():
                self._text.append(piece)
                key = (round(float(size or 0) * scale, 1), bold)
                self._sizes[key] = self._sizes.get(key, 0) + len(piece.strip())

    def _close(self) -> None:
        if self._text:
            self._lines.append((" ".join("".join(self._text).split()), self._sizes))
        self._text, self._sizes = [], {}

    def lines(self) -> list[tuple[str, float, bool, int]]:
        """(text, size, bold, chars) of each line, by its dominant font."""
        self._close()
        out = []
        for text, sizes in self._lines:
            (size, bold), _ = max(sizes.items(), key=lambda kv: kv[1])
            out.append((text, size, bold, sum(sizes.values())))
        return out


def font_headings(pages: list[list[tuple[str, float, bool, int]]]) -> list[Bookmark]:
    """Short lines set larger (or bold) than the body, as bookmarks whose depth ranks their size."""
    chars: dict[float, int] = {}
    for lines in pages:
        for _, size, bold, n in lines:
            if not bold:
                chars[size] = chars.get(size, 0) + n
    if not chars:
        return []
    body = max(chars.items(), key=lambda kv: kv[1])[0]
    found: list[tuple[int, str, float, bool]] = []
    for page, lines in enumerate(pages):
        for text, size, bold, _ in lines:
            words = text.split()
            if (size >= body * LARGER or (bold and size >= body)) and 0 < len(words) <= MAX_HEADING_WORDS \
                    and re.search(r"[^\W\d_]{2}", text) and not re.search(r"[.,;]$", text):
                found.append((page, text, size, bold))
    found = _without_running_lines(found)
    ranks = sorted({(-size, bold) for _, _, size, bold in found})
    return [Bookmark(text, page, ranks.index((-size, bold)) + 1) for page, text, size, bold in found]


LABEL_PAGES = 3  # a bold line on this many pages is a label or a table header, not a section title


def _without_running_lines(found: list[tuple[int, str, float, bool]]) -> list[tuple[int, str, float, bool]]:
    """Drop the set-apart lines whose text recurs on LABEL_PAGES pages or more ("LINE POSITION DESCRIPTION
    AND VALIDITY" over every table). Running headers that step with the page are page furniture, taken out
    before (ingest.furniture)."""
    pages_of: dict[str, set[int]] = {}
    for page, text, _, _ in found:
        pages_of.setdefault(" ".join(match_words(text)), set()).add(page)
    return [item for item in found if len(pages_of[" ".join(match_words(item[1]))]) < LABEL_PAGES]


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


def match_words(text: str) -> list[str]:
    """Words for matching a bookmark to page text: ligatures (U+FB01 'fi'), quotes and underscores folded
    (an outline may keep the identifier "Color_resources" that the page sets as "Color resources")."""
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).lower()).split()


def _find_anchor(texts: list[str], lines: range, skip: set[int], numbering, title_words: list[str],
                 search_lines: int) -> int | None:
    """The line a bookmark points at: its printed number at the line start; unnumbered, the line that is
    exactly its title anywhere on the page, else one that starts it near the top."""
    candidates = [i for i in lines if i not in skip]
    if numbering is not None:
        # "3.2" also matches "3.2." and "Exhibit 3.2", never "3.2.1" or "13.2"
        label = re.compile(rf"^(?:\w+\s+)?{re.escape(numbering.label)}(?![\w\-]|\.\w)", re.I)
        return next((i for i in candidates if label.match(texts[i].strip())), None)
    # The title alone on a line, or after the number the outline left out ("Library Notes" over "2.4 Library
    # Notes"): the first such line, since a line further down that happens to be the title ("warning." ending
    # a sentence) must not take the heading away from the bookmarks that follow.
    whole = next((i for i in candidates if _spells(match_words(texts[i]), title_words, texts[i])
                  or printed_number(texts[i], title_words, whole=True)), None)
    if whole is not None:
        return whole
    # A long title wrapped over lines (with or without its printed number), spelled out in full
    wrapped = next((i for i in candidates if _wrapped_title(texts, i, lines.stop, title_words)), None)
    if wrapped is not None:
        return wrapped
    near_top = next((i for i in candidates[:search_lines] if match_words(texts[i]) and (
        _prefix_match(match_words(texts[i]), title_words) or printed_number(texts[i], title_words))), None)
    if near_top is not None:
        return near_top
    # A run-in heading (LaTeX's \paragraph, a manual's keyword entries) starts a line of body text anywhere
    # on the page: "Cumulative The smooth cumulative option makes ..."
    return next((i for i in candidates if _runs_in(texts[i], title_words)), None)


def _runs_in(line: str, title_words: list[str]) -> bool:
    """The line opens with the whole title and goes on, and starts as a heading does (not a lower-case
    continuation of the sentence above)."""
    words = match_words(line)
    first = line.lstrip()[:1]
    return len(words) > len(title_words) > 0 and words[: len(title_words)] == title_words and not first.islower()


def run_in_body(line: str, title: str) -> int:
    """Where the body text starts on a run-in heading's line ("Cumulative The smooth option ..." under the
    bookmark "Cumulative"), as an offset into ``line``; 0 when the line is the heading alone."""
    words = match_words(title)
    if not words:
        return 0
    opening = re.match(r"\s*" + r"[\W_]*".join(re.escape(w) for w in words) + r"(?![^\W_])[\W_]*?(?=\s|$)",
                       line, re.I)
    if opening is None or len(match_words(line[opening.end():])) < RUN_IN_MIN_WORDS:
        return 0
    return opening.end() + len(line[opening.end():]) - len(line[opening.end():].lstrip())


def printed_number(line: str, title_words: list[str], whole: bool = False):
    """The number printed before an unnumbered bookmark's title on ``line`` ("2.4" of "2.4 Library Notes"),
    when the rest of the line is the title (``whole``) or starts it (a wrapped heading); else None."""
    numbering = parse_numbering(line, explicit=True)
    if numbering is None or not numbering.rest:
        return None
    rest = match_words(numbering.rest)
    title_words = _after_label(title_words, numbering)
    return numbering if (_spells(rest, title_words) if whole else _prefix_match(rest, title_words)) else None


def _spells(line_words: list[str], title_words: list[str], line: str = "") -> bool:
    """The same words, hyphens and spaces aside ("Mailing-List support" for "MailingList support",
    "anti-spam" for "antispam"), or, on a ``line`` given, after a bare capital appendix letter ("C Testing
    CxxTest")."""
    if len(line_words) == len(title_words) + 1 and _APPENDIX_LETTER.match(line):
        line_words = line_words[1:]
    return bool(title_words) and "".join(line_words) == "".join(title_words)


def _after_label(title_words: list[str], numbering) -> list[str]:
    """An outline's title without the letter the page prints as its label: "A Copying Information" over
    "Appendix A Copying Information"."""
    if numbering is not None and title_words[:1] == match_words(numbering.label)[-1:]:
        return title_words[1:]
    return title_words


def _prefix_match(line_words: list[str], title_words: list[str]) -> bool:
    """The line starts the title (a wrapped heading) or the title starts the line."""
    n = min(len(line_words), len(title_words))
    return n > 0 and line_words[:n] == title_words[:n]


def _wrapped_title(texts: list[str], first: int, stop: int, title_words: list[str]) -> bool:
    """``first`` starts the title (after a printed number, if any) and the lines below finish it."""
    printed = printed_number(texts[first], title_words)
    words, title_words = match_words(printed.rest if printed else texts[first]), _after_label(title_words, printed)
    if not 0 < len(words) < len(title_words) or title_words[:len(words)] != words:
        return False
    return not _heading_lines(texts, first, stop, title_words[len(words):])[1]


def _heading_lines(texts: list[str], first: int, stop: int, title_words: list[str]) -> tuple[int, list[str]]:
    """Lines after ``first`` that still spell the title (margin headings wrap over 2-4 lines): the line
    after them, and the title words they left unspelled."""
    end, remaining = first + 1, title_words
    while end < stop and remaining:
        line = texts[end].strip()
        words = match_words(line)
        if DATE_LINE.match(line):
            end += 1
            continue
        if not words or remaining[: len(words)] != words:
            break
        remaining = remaining[len(words):]
        end += 1
    return end, remaining


def anchor_bookmarks(bookmarks: list[Bookmark], texts: list[str], page_lines: list[range],
                     skip: set[int], search_lines: int = TITLE_SEARCH_LINES,
                     exact_only: bool = False) -> list[tuple[int, int, Bookmark]]:
    """(first line, end line, bookmark) for every bookmark, in reading order."""
    anchored: list[tuple[int, int, Bookmark]] = []
    cursor = 0
    for mark in bookmarks:
        if mark.page >= len(page_lines):
            continue
        page = page_lines[mark.page]
        start = max(page.start, cursor)
        numbering = parse_numbering(mark.title, explicit=True)
        title_words = match_words(numbering.rest if numbering else mark.title)
        found = _find_anchor(texts, range(start, page.stop), skip, numbering, title_words, search_lines)
        if found is None and (search_lines != TITLE_SEARCH_LINES or exact_only):
            continue  # a font heading not found in the text is dropped, never guessed
        if found is None:
            first = next((i for i in range(start, page.stop) if i not in skip and texts[i].strip()), start)
            anchored.append((first, first, mark))
            cursor = first
            continue
        if numbering:
            on_line = match_words(texts[found].split(numbering.label, 1)[-1])
        else:
            printed = printed_number(texts[found], title_words)
            on_line = match_words(printed.rest if printed else texts[found])
            title_words = _after_label(title_words, printed)
        remaining = title_words[len(on_line):] if title_words[: len(on_line)] == on_line else title_words
        end = _heading_lines(texts, found, page.stop, remaining)[0]
        anchored.append((found, end, mark))
        cursor = end
    return anchored

