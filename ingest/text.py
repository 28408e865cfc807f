"""Headings of plain text (RFCs, text pulled out of PDFs): numbered lines at the margin.

A heading is a line at column 0 that starts with a printed number
(``4.1.2.  Client Hello``, ``Appendix B.  …``, ``B.3.1.``, ``14.35.1 Byte Ranges``, ``Chapter 3 …``), reads as
a title (short, no sentence punctuation at the end), stands alone between blank lines, and whose number
comes after the previous heading's in document order — so numbered list items and sentences that begin
with a section number are not taken. Where the body is indented, short title lines at the margin are
unnumbered headings (``Abstract``, ``Acknowledgments``); a numbered title directly over its own indented
text counts too. Where nothing numbered sits at column 0, the margin is where the numbered titles are
(set in by a few spaces), and centred titles are headings. A title underlined with a row of ``=``, ``-``
or ``~`` (the setext / reStructuredText convention many plain-text documents follow) is a heading too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.numbering import Numbering, order_key, parse_numbering

MAX_TITLE_CHARS = 120
MAX_TITLE_WORDS = 16
MAX_UNNUMBERED_WORDS = 6
# Where at least this share of body lines is indented, the margin is reserved for headings.
INDENTED_BODY_SHARE = 0.6
_DOT_LEADER = re.compile(r"(?:\.\s?){4,}\s*\d*\s*$")
_SENTENCE_END = re.compile(r"[.,;:!?]\s*$")
# "Figure 1: The Basic Architecture", "Table 3. Configuration": a caption under a drawing, not a section.
_CAPTION = re.compile(r"^(?:Figure|Fig\.|Table)\s+[\dA-Z][\w.\-]*\s*(?:[:.\-\u2013\u2014]|$)")


def _reads_as_title(rest: str, lowercase: bool = False) -> bool:
    """``lowercase``: the title may start in lower case (a name: "4.2.1  text string", "6.2.2 libpamc")."""
    rest = rest.strip()
    if not rest:
        return False
    if len(rest.split()) > MAX_TITLE_WORDS or _DOT_LEADER.search(rest) or _SENTENCE_END.search(rest):
        return False
    return rest[0].isupper() or rest[0].isdigit() or rest[0] in "(\"'“" or (lowercase and rest[0].isalpha())


def numbered_title(text: str, explicit: bool = False) -> Numbering | None:
    """The numbering of a line that reads as a numbered title, else None."""
    if len(text) > MAX_TITLE_CHARS or text[:1].isspace():
        return None
    numbering = parse_numbering(text, explicit)
    if numbering is None:
        return None
    if numbering.kind in ("division", "decimal") and not numbering.rest.strip():
        return numbering  # "Appendix B." alone, a division line "PART 2"
    # A number of two parts or more ("4.2.1") is rarely a sentence's first word, so a short title after it
    # may start in lower case; after "4" alone it would be a count ("4 bytes follow").
    lowercase = (numbering.kind == "decimal" and len(numbering.parts) >= 2
                 and len(numbering.rest.split()) <= MAX_UNNUMBERED_WORDS)
    return numbering if _reads_as_title(numbering.rest, lowercase) else None


def _neighbour(texts: list[str], skip: set[int], i: int, step: int) -> str | None:
    """The next line above (step -1) or below (+1) that is not page furniture; None past either end."""
    j = i + step
    while 0 <= j < len(texts) and j in skip:
        j += step
    return texts[j] if 0 <= j < len(texts) else None


def _isolated(texts: list[str], skip: set[int], i: int) -> bool:
    """Blank (or page furniture) on both sides."""
    return all(not (t or "").strip() for t in (_neighbour(texts, skip, i, -1), _neighbour(texts, skip, i, 1)))


def _hangs_over_indented_text(texts: list[str], skip: set[int], i: int) -> bool:
    """Blank (or the start) above, and the next line set in: a title over its own indented text, as
    definitions lists print it ("1.1. "Contributor"" / "    means each individual …")."""
    above, below = _neighbour(texts, skip, i, -1), _neighbour(texts, skip, i, 1)
    return not (above or "").strip() and below is not None and below[:1].isspace() and bool(below.strip())


def _body_is_indented(texts: list[str], skip: set[int]) -> bool:
    lines = [t for i, t in enumerate(texts) if t.strip() and i not in skip]
    if not lines:
        return False
    return sum(t[:1].isspace() for t in lines) >= INDENTED_BODY_SHARE * len(lines)


def _unnumbered_title(text: str) -> bool:
    t = text.strip()
    return (bool(t) and not text[:1].isspace() and t[0].isupper() and "  " not in t
            and len(t.split()) <= MAX_UNNUMBERED_WORDS and not _SENTENCE_END.search(t) and not t.isdigit()
            and not _CAPTION.match(t))


def margin_headings(texts: list[str], skip: set[int], need_isolation: bool = True) -> dict[int, Numbering | None]:
    """Line index -> numbering (None for an unnumbered margin heading). A document that keeps nothing
    numbered at column 0 (a licence or a memo set in by a few spaces throughout) has its margin where its
    numbered titles are: :func:`indented_headings`."""
    found = _at_margin(texts, skip, need_isolation)
    if need_isolation and not any(n is not None for n in found.values()):
        found.update(indented_headings(texts, skip))
    return found


MAX_MARGIN_INDENT = 4
# "0. Definitions." and "14. Revised Versions of this License." end with a full stop and are titles: the
# first word and most words of four letters or more are capitalised, as in no sentence.
TITLE_CASE_SHARE = 2 / 3
_CAPITALISED = re.compile(r"^[\W\d]*[A-Z]")


def _title_case_with_stop(rest: str) -> bool:
    text = rest.strip()
    words = text.rstrip(".").split()
    long_words = [w for w in words if len(w.strip("\"'“”()")) >= 4]
    if not text.endswith(".") or not words or len(words) > MAX_TITLE_WORDS or not long_words:
        return False
    capitalised = sum(bool(_CAPITALISED.match(w)) for w in long_words)
    return (bool(_CAPITALISED.match(words[0])) and capitalised >= TITLE_CASE_SHARE * len(long_words)
            and _reads_as_title(text.rstrip(".")))


CENTRE_TOLERANCE = 5  # columns between a centred title's middle and the middle of the text block
TEXT_WIDTH_QUANTILE = 0.9  # the text block's width: most full lines reach it (ragged right)


def _text_width(texts: list[str]) -> int:
    lengths = sorted(len(t.rstrip()) for t in texts if t.strip())
    return lengths[int(TEXT_WIDTH_QUANTILE * (len(lengths) - 1))] if lengths else 0


def _centred_title(text: str, width: int) -> bool:
    """A short title line set well in, its middle at the middle of the text block."""
    line = text.strip()
    left = len(text) - len(text.lstrip(" "))
    return (left > 2 * MAX_MARGIN_INDENT and abs(left + len(line) / 2 - width / 2) <= CENTRE_TOLERANCE
            and len(line.split()) <= MAX_TITLE_WORDS and not _SENTENCE_END.search(line)
            and _CAPITALISED.match(line) is not None and parse_numbering(line) is None
            and not _CAPTION.match(line))


def indented_headings(texts: list[str], skip: set[int]) -> dict[int, Numbering | None]:
    """Numbered titles set in by at most a few spaces, alone between blank lines, numbers advancing; and
    centred titles, alone between blank lines (None: unnumbered)."""
    decimals: list[tuple[int, tuple]] = []
    found: dict[int, Numbering | None] = {}
    width = _text_width(texts)
    for i, text in enumerate(texts):
        indent = len(text) - len(text.lstrip(" "))
        if i in skip or not indent or not _isolated(texts, skip, i):
            continue
        if indent > MAX_MARGIN_INDENT:
            if _centred_title(text.rstrip(), width):
                found[i] = None
            continue
        line = text.strip()
        # Set in like the body, a title is still alone between blank lines with its number advancing:
        # "1  Status of this memo" needs no dot after its number.
        numbering = numbered_title(line, explicit=True)
        if numbering is None and (n := parse_numbering(line)) is not None and _title_case_with_stop(n.rest):
            numbering = n
        if numbering is None or numbering.kind != "decimal":
            continue
        decimals.append((i, order_key(numbering)))
        found[i] = numbering
    in_order = _longest_advancing(decimals)
    return {i: n for i, n in found.items() if n is None or i in in_order}


def _at_margin(texts: list[str], skip: set[int], need_isolation: bool) -> dict[int, Numbering | None]:
    found: dict[int, Numbering | None] = {}
    decimals: list[tuple[int, tuple]] = []  # (line, document-order key) of numbered decimal candidates
    indented = _body_is_indented(texts, skip)
    for i, text in enumerate(texts):
        if i in skip or not text.strip() or text[:1].isspace():
            continue
        hanging = need_isolation and _hangs_over_indented_text(texts, skip, i)
        if need_isolation and not _isolated(texts, skip, i) and not hanging:
            continue
        # Where the margin is kept for headings, "1 Introduction" (no dot, as older RFCs print it) is one too.
        numbering = numbered_title(text.rstrip(), explicit=indented)
        if hanging and not _isolated(texts, skip, i) and (numbering is None or numbering.kind != "decimal"):
            continue  # a hanging title must carry a section number ("1.1. "Contributor"" over its text)
        if numbering is None:
            if indented and _unnumbered_title(text):
                found[i] = None
            continue
        if numbering.kind == "paren" and not need_isolation:
            continue
        if numbering.kind == "decimal":
            decimals.append((i, order_key(numbering)))
        found[i] = numbering
    in_order = _longest_advancing(decimals)
    for i, _ in decimals:
        if i not in in_order:
            del found[i]  # a list item or a cross-reference, not the next section
    return found


def _longest_advancing(candidates: list[tuple[int, tuple]]) -> set[int]:
    """The longest run of candidates whose numbers advance in document order (patience sorting, n log n),
    the earliest line winning among equal numbers: a stray line ("12.  Twelve items") or a list item
    cannot hide the sections after it, as a greedy "must exceed the last one" rule would."""
    from bisect import bisect_left

    tails: list[tuple] = []  # smallest last key of an advancing run of each length
    tail_at: list[int] = []  # candidate index ending that run
    back: list[int] = [-1] * len(candidates)
    for n, (_, key) in enumerate(candidates):
        pos = bisect_left(tails, key)
        if pos < len(tails) and tails[pos] == key:
            continue  # the same number again: the earlier line keeps it
        back[n] = tail_at[pos - 1] if pos else -1
        if pos == len(tails):
            tails.append(key)
            tail_at.append(n)
        else:
            tails[pos], tail_at[pos] = key, n
    chosen, n = set(), tail_at[-1] if tail_at else -1
    while n >= 0:
        chosen.add(candidates[n][0])
        n = back[n]
    return chosen


# An underline is one character repeated, about as long as the title it underlines (a longer or much
# shorter row under a paragraph is a horizontal rule, not an underline).
_UNDERLINE = re.compile(r"^([=\-~^*#+])\1{2,}\s*$")
UNDERLINE_MIN_SHARE, UNDERLINE_SLACK = 0.7, 3
UNDERLINE_LEVELS = "=-"  # Markdown's setext levels; any other character ranks below, in order of first use
MAX_UNDERLINED_LINES = 3  # "What's New in 3.12" / "(since 3.11)" / "Released 2022-10-24" over one underline


def _title_block(texts: list[str], last: int) -> int | None:
    """First line of the short block of title lines that ends at ``last``, or None when it is a paragraph.
    The underline vouches for the title, so a question mark may end it; a comma or a full stop may not."""
    first = last
    while first > 0 and texts[first - 1].strip() and not _UNDERLINE.match(texts[first - 1]):
        first -= 1
        if last - first >= MAX_UNDERLINED_LINES:
            return None
    for t in texts[first:last + 1]:
        t_ = t.strip()
        if (t[:1].isspace() or len(t_) > MAX_TITLE_CHARS or len(t_.split()) > MAX_TITLE_WORDS
                or _DOT_LEADER.search(t_) or not _reads_as_title(t_.rstrip("?!"))):
            return None
    return first


@dataclass(frozen=True)
class UnderlinedTitle:
    first: int  # the title's first line
    underline: int  # the underline; the title is lines first .. underline - 1
    overline: int | None  # a row above the title too (reStructuredText), or None
    level: int


def underlined_headings(texts: list[str], skip: set[int]) -> list[UnderlinedTitle]:
    """Every title underlined with a row of one character, with its level: ``=`` 1, ``-`` 2, any other
    character below those, in order of first use."""
    found: list[UnderlinedTitle] = []
    others: list[str] = []
    for i in range(1, len(texts)):
        if i in skip or not texts[i - 1].strip() or not _UNDERLINE.match(texts[i]):
            continue
        first = _title_block(texts, i - 1)
        if first is None or any(j in skip for j in range(first, i)):
            continue
        length = max(len(t.rstrip()) for t in texts[first:i])
        if not UNDERLINE_MIN_SHARE * length <= len(texts[i].rstrip()) <= length + UNDERLINE_SLACK:
            continue
        char = texts[i].strip()[0]
        if char in UNDERLINE_LEVELS:
            level = UNDERLINE_LEVELS.index(char) + 1
        else:
            others += [char] if char not in others else []
            level = len(UNDERLINE_LEVELS) + others.index(char) + 1
        over = first - 1 if first >= 1 and _UNDERLINE.match(texts[first - 1]) else None
        found.append(UnderlinedTitle(first, i, over, level))
    return found
