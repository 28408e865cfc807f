"""Heading steps of the parse, one per source of headings: Markdown (markdown-it tokens), plain text
(numbered margin lines), PDF bookmarks; and the filter that turns Markdown "headings" that are really
labels (chart labels, table rows, footnotes, units, sentences) back into body text."""
from __future__ import annotations

import re

from ingest.artifacts import page_line_ranges
from ingest.lines import TERMINAL
from ingest.markdown import MarkdownBlocks, MarkdownHeading, read_blocks
from ingest.numbering import Numbering, parse_numbering
from ingest.pdf import DATE_LINE, Bookmark, anchor_bookmarks, match_words, printed_number, run_in_body
from ingest.text import margin_headings, numbered_title, underlined_headings

# A run of this many unnumbered same-level headings with no prose between them is a set of labels
# (a chart legend, table rows, a cover page's words), not sections.
LABEL_RUN = 3
BOLD_LEVEL = 7  # a bold-line heading sits below the six '#' levels
PROSE_MIN_WORDS = 8
BOLD_TITLE_WORDS = 10  # an unnumbered bold line over prose is a title up to this many words
_IDENTIFIER = re.compile(r"_|\w[A-Z]")  # "TS_", "ErrorPrinter": a name from code, not a title
_CAPTION = re.compile(r"^(?:FIGURE|Figure|Fig\.|TABLE|Table|Chart|Box|Exhibit)\s+(?:\d|[A-Z]\b)")  # "Figure 3 Sizes"
# Printed numbers decide a font-heading tree's levels only when this share of its headings carry one (R's
# manuals ~0.9, the IRS manual 0.57), not when a few numbered lines, "Part I" to "Part VI" or a data row,
# would flatten every unnumbered one (gnuplot: 6 of 440, its tree had been flat). Below it, font sizes
# decide (libtasn1, 0.28: same recall and parents either way, 11 fewer stray sections by size).
NUMBERED_SHARE = 0.3
MARGIN_TITLE_LINES, MARGIN_TITLE_WORDS = 3, 8  # a margin heading's title lines above the font's, at most
_LETTER_TITLE = re.compile(r"^(?P<letter>[A-Z])\s+(?P<rest>[A-Z].*)$")
_BARE_NUMBER = re.compile(r"^\d{1,3}(?:\.\d{1,3})+\.?$")  # "2.3.59.1" alone on its line, over its title
_PROSE_END = re.compile(r"[.!?:;\"”’)]\s*$")
_FOOTNOTE = re.compile(r"^\d{1,3}/\s|\s\d{1,3}/$|^\[\d{1,3}\]|^\d{1,3}$")
_SENTENCE = re.compile(r"[.;,:]$")
# A shell command that a converter left after a root prompt ("# rm -f /etc/default/filetraq" is an ATX heading
# to CommonMark): a lower-case command, then an option or a path.
_COMMAND = re.compile(r"^[a-z][\w.+-]*\s+(?:--?[A-Za-z]|\S*/)")
_CODE = re.compile(r"\s(?:[+\-*/]?=|==)\s|[\w\]]\(.*\)\s*$")  # "x = f(y)", "router logits += m"
# "#### `fs.open(path[, flags])`": a heading its author set as code names an API, it is no stray formula
_CODE_SPAN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?:[\w.:]+\s+)?`[^`]+`\s*#*\s*$")


def markdown_headings(doc, blocks: MarkdownBlocks | None = None) -> None:
    blocks = blocks or read_blocks(doc.text)
    for idx, kind in blocks.block_kind.items():
        if idx < len(doc.lines):
            doc.lines[idx].block = kind
    for idx in blocks.fence_lines:
        if idx < len(doc.lines) and doc.lines[idx].text.lstrip()[:3] in ("```", "~~~"):
            doc.lines[idx].block = "fence"
    for first, end in blocks.tables:
        if first < len(doc.lines):
            header_end = doc.lines[min(first + 1, len(doc.lines) - 1)].end
            doc.tables.append((doc.lines[first].start, header_end, doc.lines[min(end, len(doc.lines)) - 1].end))
    # A numbered title set in bold on a line of its own ("**2.3 Method**") is a heading below every '#'.
    bold = [MarkdownHeading(b.line, b.end_line, b.title, BOLD_LEVEL) for b in blocks.bold_lines
            if numbered_title(b.title) is not None or _bold_title_over_prose(doc, b)]
    previous = None
    for h in sorted(blocks.headings + bold, key=lambda x: x.line):
        if h.line >= len(doc.lines) or doc.lines[h.line].removed:
            continue
        line = doc.lines[h.line]
        numbering = parse_numbering(h.title, explicit=True)
        if numbering is None and previous is not None and _only_blank_between(doc, previous, h.line):
            # "# Chapter 1" then "# Compilation": one heading printed on two lines
            doc.lines[previous].heading += f" {h.title}"
            doc.lines[previous].numbering = parse_numbering(doc.lines[previous].heading, explicit=True)
            line.heading_part = True
            previous = None
            continue
        line.heading, line.md_level, line.numbering = h.title, h.md_level, numbering
        for extra in range(h.line + 1, min(h.end_line, len(doc.lines))):
            doc.lines[extra].heading_part = True  # a setext underline
        previous = h.line if numbering is not None and not numbering.rest.strip() else None
    _appendix_letters(doc)


def _appendix_letters(doc) -> None:
    """"B Integrating with Your Build Environment" is appendix B when "B.1 SCons" follows: a bare capital
    letter numbers a heading only where the document numbers sections under that letter ("A Guide to X"
    with no "A.1" stays unnumbered)."""
    headings = [line for line in doc.lines if line.heading is not None and not line.removed]
    letters = {line.numbering.parts[0] for line in headings if line.numbering is not None
               and line.numbering.kind == "decimal" and len(line.numbering.parts) >= 2
               and len(line.numbering.parts[0]) == 1 and line.numbering.parts[0].isalpha()}
    for line in headings:
        m = _LETTER_TITLE.match(line.heading)
        if line.numbering is None and m and m["letter"].lower() in letters:
            line.numbering = Numbering("decimal", m["letter"], (m["letter"].lower(),), rest=m["rest"])


def _bold_title_over_prose(doc, bold) -> bool:
    """An unnumbered line set in bold that reads as a title (a few words, no sentence end but a question's)
    and has a paragraph of prose right below it: a converter's sub-section heading ("**Voxel** **grids**")."""
    title = bold.title.strip()
    words = title.split()
    if not 0 < len(words) <= BOLD_TITLE_WORDS or re.search(r"[.:;,!]$", title) or not title[:1].isupper() \
            or not re.search(r"[^\W\d_]{2}", title) or (len(words) == 1 and _IDENTIFIER.search(title)) \
            or _CAPTION.match(title):
        return False  # a defined term ("test fixture"), an identifier ("ErrorPrinter"), a caption: labels
    below = next((doc.lines[i] for i in range(bold.end_line, len(doc.lines)) if not doc.lines[i].blank), None)
    if below is None or below.text.lstrip().startswith(("#", "**", "```", "|", "-", "*", ">")):
        return False
    words_below = [w for w in below.text.split() if re.search(r"[^\W\d_]{2}", w)]  # a dot leader has none
    return _is_prose(below.text) or len(words_below) >= PROSE_MIN_WORDS


def _only_blank_between(doc, first: int, last: int) -> bool:
    return all(doc.lines[i].blank for i in range(first + 1, last))


def text_headings(doc, pdf: bool = False, toc_entries: tuple = ()) -> None:
    if not pdf:
        for title in underlined_headings(doc.texts, doc.removed()):
            line = doc.lines[title.first]
            line.heading = " ".join(" ".join(doc.texts[title.first:title.underline]).split())
            line.numbering = parse_numbering(line.heading)
            line.md_level = title.level  # placed as Markdown's setext headings are
            overline = [] if title.overline is None else [title.overline]
            for extra in [*range(title.first + 1, title.underline + 1), *overline]:
                doc.lines[extra].heading_part = True
    for idx, numbering in margin_headings(doc.texts, doc.removed(), need_isolation=not pdf).items():
        if pdf and numbering is None:
            continue  # PDF text has no blank lines to tell an unnumbered title from a short body line
        line = doc.lines[idx]
        if line.heading is not None:
            continue
        line.heading = " ".join(line.text.split())
        line.numbering = numbering
    if toc_entries:
        _headings_named_by_toc(doc, toc_entries)


def _toc_form(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def _headings_named_by_toc(doc, entries: tuple) -> None:
    """The document's own ToC is a hint: a numbered line that is exactly one of its entries is a heading,
    even where its layout (indented, no blank line after) hides it from the margin rule."""
    wanted = {_toc_form(e.title) for e in entries if e.numbering is not None}
    for line in doc.lines:
        if line.heading is None and not line.removed and not line.blank and len(line.text) < 200 \
                and _toc_form(line.text) in wanted:
            line.heading = " ".join(line.text.split())
            line.numbering = parse_numbering(line.heading)
            wanted.discard(_toc_form(line.text))  # the first occurrence after the ToC is the heading

def bookmark_lines(doc, page_starts: tuple[int, ...], bookmarks: tuple) -> set[int]:
    """The lines bookmarks point at, found before furniture is removed, so furniture never takes them."""
    marks = [b if isinstance(b, Bookmark) else Bookmark(str(b[0]), int(b[1]), int(b[2])) for b in bookmarks]
    pages = page_line_ranges(doc, page_starts)
    return {first for first, end, mark in anchor_bookmarks(marks, doc.texts, pages, set(), exact_only=True)}


def bookmark_headings(doc, page_starts: tuple[int, ...], bookmarks: tuple) -> None:
    marks = [b if isinstance(b, Bookmark) else Bookmark(str(b[0]), int(b[1]), int(b[2])) for b in bookmarks]
    nested = len({m.depth for m in marks}) > 1
    pages = page_line_ranges(doc, page_starts)
    for first, end, mark in anchor_bookmarks(marks, doc.texts, pages, doc.removed()):
        line = doc.lines[first]
        if line.heading is not None:
            continue  # two bookmarks on one line: the first one names it
        line.heading = mark.title
        # an outline may leave out the number the page prints over the heading ("2.4 Library Notes")
        line.numbering = (parse_numbering(mark.title, explicit=True)
                          or printed_number(line.text, match_words(mark.title), whole=first + 1 == end))
        line.stated_level = mark.depth if nested else 0
        line.body_from = run_in_body(line.text, mark.title) if first + 1 == end else 0
        for extra in range(first + 1, end):
            doc.lines[extra].heading_part = True


def font_size_headings(doc, page_starts: tuple[int, ...], found: tuple) -> None:
    """A PDF without bookmarks: lines its fonts set apart, placed by their printed numbers where they have
    them, else by font size (larger is higher); numbered margin lines the fonts missed still count."""
    marks = [Bookmark(str(b[0]), int(b[1]), int(b[2])) for b in found]
    numbered = sum(bool(parse_numbering(m.title, explicit=True)) for m in marks) >= NUMBERED_SHARE * len(marks) > 0
    pages = page_line_ranges(doc, page_starts)
    anchored = anchor_bookmarks(marks, doc.texts, pages, doc.removed(), search_lines=10**9)
    for first, lines, mark in _wrapped_font_headings(doc, anchored):
        line = doc.lines[first]
        if line.heading is None:
            line.heading = " ".join(" ".join(doc.lines[i].text for i in lines).split())
            line.numbering = parse_numbering(line.heading, explicit=True)
            line.stated_level = 0 if numbered else mark.depth
            for extra in range(first + 1, lines[-1] + 1):
                doc.lines[extra].heading_part = True
    if numbered:
        text_headings(doc, pdf=True)


def _wrapped_font_headings(doc, anchored: list) -> list[tuple[int, list[int], Bookmark]]:
    """Font headings as (heading line, its title lines, mark): a title set over several lines in one font
    is one heading, and a number printed on a line of its own above it (a margin heading's "2.3.59.1",
    with its revision date below) is its number and its first line."""
    merged: list[tuple[int, list[int], Bookmark]] = []
    for first, end, mark in anchored:
        if merged and merged[-1][2].depth == mark.depth and merged[-1][1][-1] + 1 == first \
                and not TERMINAL.search(doc.lines[merged[-1][1][-1]].text) \
                and parse_numbering(doc.lines[first].text.strip(), explicit=True) is None:  # "7.8 ..." starts anew
            merged[-1][1].append(first)
            continue
        merged.append((first, [first], mark))
    return [_with_number_above(doc, first, lines, mark) for first, lines, mark in merged]


def _with_number_above(doc, first: int, lines: list[int], mark):
    """Walk up over a title's first lines that the fonts missed (set in a font other lines repeat) and a
    revision date to the bare number that opens the heading; unchanged when there is none."""
    above, title = first - 1, list(lines)
    while above >= 0 and first - above <= MARGIN_TITLE_LINES + 1:
        line = doc.lines[above]
        text = line.text.strip()
        if line.heading is not None or line.removed or not text:
            break
        if _BARE_NUMBER.match(text):
            return above, [above] + title, mark
        if not DATE_LINE.match(text):
            if TERMINAL.search(text) or len(text.split()) > MARGIN_TITLE_WORDS:
                break
            title.insert(0, above)
        above -= 1
    return first, lines, mark


def _is_prose(text: str) -> bool:
    """A sentence ("First step."), or a longer run of words that ends like one."""
    words, t = text.split(), text.strip()
    if len(words) >= 2 and re.search(r"[a-z][.!?][\"”’)]?$", t):
        return True
    return len(words) >= PROSE_MIN_WORDS and bool(_PROSE_END.search(t))


def _is_label(title: str) -> bool:
    """A heading shape that no section title has: a footnote, a bare unit "(Percent)", a sentence."""
    t = title.strip()
    if _FOOTNOTE.search(t) or (t.startswith("(") and t.endswith(")")):
        return True
    if _CODE.search(t) or _COMMAND.match(t):
        return True
    return bool(_SENTENCE.search(t)) and (len(t.split()) >= 4 or t.endswith(":"))


# Words that open a sentence fragment, never a name ("2.2 of the guide", "4.1 is described below").
FUNCTION_WORDS = frozenset("a an and are as at be by for from in is it its of on or that the these this those to "
                           "was were which with".split())
NUMBERED_SENTENCE_WORDS = 4  # "1. Install the package on every server." is a list item, "3. Definitions." a title


def _is_numbered_sentence(numbering) -> bool:
    """A numbered Markdown "heading" that is really a sentence: a list item written out as one ("2. Restart the
    service after the upgrade.") or a fragment that starts with a section number ("3.2 of the guide covers it")."""
    rest = numbering.rest.strip()
    words = rest.split()
    if not words:
        return False
    # A title's first word is capitalised (mixed "pH", "mRNA", "k-means", "von Neumann" stay), or after a number
    # of two parts or more it is a name ("1.1.12 sudo configuration"); a sentence's first word after a section
    # number is a function word ("3.2 of the guide").
    named = len(numbering.parts) >= 2 and words[0] not in FUNCTION_WORDS
    if words[0].isalpha() and words[0].islower() and (_SENTENCE.search(rest) or (
            len(words) >= 2 and not named and not any(w[:1].isupper() for w in words[1:]))):
        return True
    # A full stop ends a sentence; a question mark ends titles too ("1.3 What is a program?").
    return len(words) >= NUMBERED_SENTENCE_WORDS and bool(re.search(r"\w\.[\"”’)]?$", rest))


def _reject(doc, idx: int) -> None:
    line = doc.lines[idx]
    line.heading, line.numbering, line.md_level = None, None, 0
    line.block = "heading-rejected"


def drop_label_headings(doc) -> None:
    """Unnumbered Markdown headings that are labels become body text again (never deleted)."""
    run: list[int] = []

    def close_run() -> None:
        if len(run) >= LABEL_RUN and len({doc.lines[i].md_level for i in run}) == 1:
            for i in run:
                _reject(doc, i)
        run.clear()

    toc_lines = {start for kind, start, _ in doc.artifacts if kind == "toc"}
    for idx, line in enumerate(doc.lines):
        if line.removed and line.start in toc_lines:
            close_run()  # headings on both sides of a table of contents are no run of labels
        if line.removed or line.blank:
            continue
        if line.heading is not None and line.numbering is not None and line.md_level \
                and _is_numbered_sentence(line.numbering):
            _reject(doc, idx)
            close_run()
            continue
        if line.heading is not None and line.numbering is None:
            if _is_label(line.heading) and not _CODE_SPAN_HEADING.match(line.text):
                _reject(doc, idx)
                continue
            if run and doc.lines[run[-1]].md_level != line.md_level:
                close_run()
            run.append(idx)
        elif line.heading is not None or _is_prose(line.text):
            close_run()
    close_run()
