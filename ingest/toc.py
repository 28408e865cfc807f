"""A printed table of contents with dot leaders (``1.  Introduction . . . . . 5``): recognised, kept out of the
body, and read as a hint of the outline (numbers and titles in order)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.numbering import Numbering, parse_numbering

# An entry ends in a dot leader (". . . ." or "....") and a page number.
_ENTRY = re.compile(r"^(?P<title>.*?\S)\s*(?:\.\s?){3,}\.?\s*(?P<page>\d{1,4}|[ivxlcdm]{1,6})\s*$", re.I)
MIN_ENTRIES = 3
# Lines between entries that still belong to the ToC: a wrapped title, a heading like "Contents".
MAX_GAP_LINES = 3
MAX_HEADING_WORDS = 4


@dataclass
class TocEntry:
    title: str
    page: str
    numbering: Numbering | None


@dataclass
class DotLeaderToc:
    lines: set[int] = field(default_factory=set)
    entries: list[TocEntry] = field(default_factory=list)


MAX_ENTRY_CHARS = 200
MAX_ENTRY_WORDS = 20
_LEADER_RUN = re.compile(r"(?:\.\s?){3,}")


# One "title leader page" of a line; a converter may join several on one line, or set the line as a
# Markdown heading with the leader in italics ("### 1 Introduction . . . 1 2 Objects . . . 2",
# "2.1 Basic types _. . . ._ 3").
# A leader is matched from its first dot only and possessively: a long run of dots with no page number after it
# fails once, not once per dot.
_LEADER_PAGE = re.compile(r"(?<!\.)(?<!\.\s)(?:\.\s?){3,}+\.?\s*(?:\d{1,4}|[ivxlcdm]{1,6})(?=\s|$)", re.I)
_ATX_MARKER = re.compile(r"^\s{0,3}#{1,6}\s+")
_WHOLE_EMPHASIS = re.compile(r"^(?P<mark>\*\*|__)(?P<inner>\S.*\S)(?P=mark)$")
_LEADER_EMPHASIS = re.compile(r"[_*]+(?=\s*(?:\.\s?){3,})|(?<=\.)[_*]+")


def entry_titles(text: str) -> list[TocEntry]:
    """The entries a line holds (a title with letters and no leader of its own, a dot leader, a page
    number), several when a converter joined them; [] when the line is anything else."""
    if len(text) > MAX_ENTRY_CHARS * 4:
        return []
    clean = _ATX_MARKER.sub("", text.strip())
    if m := _WHOLE_EMPHASIS.match(clean):  # "**Introduction ........ 3**": a bold entry
        clean = m["inner"]
    clean = _LEADER_EMPHASIS.sub("", clean)
    segments, pos = [], 0
    for m in _LEADER_PAGE.finditer(clean):  # each entry ends at its page number
        segments.append(clean[pos:m.end()].strip())
        pos = m.end()
    if not segments or clean[pos:].strip() or (len(segments) == 1 and len(clean) > MAX_ENTRY_CHARS):
        return []
    entries = []
    for segment in segments:
        m = _ENTRY.match(segment)
        title = m["title"] if m else ""
        last = title.rstrip()[-1:]
        if not (re.search(r"[A-Za-z]{2}", title) and len(title.split()) <= MAX_ENTRY_WORDS
                and not _LEADER_RUN.search(title) and (last.isalpha() or last in ")\"'")):
            return []
        title = " ".join(title.split())
        entries.append(TocEntry(title, m["page"], parse_numbering(title, explicit=True)))
    return entries


def find_dot_leader_toc(texts: list[str], skip: set[int]) -> DotLeaderToc:
    """Every run of dot-leader entries (blank lines, furniture and short wrapped lines may sit between)."""
    toc = DotLeaderToc()
    entries_at = {i: found for i, t in enumerate(texts) if i not in skip and (found := entry_titles(t))}
    entry_lines = sorted(entries_at)
    if len(entry_lines) < MIN_ENTRIES:
        return toc
    previous = None
    for i in entry_lines:
        if previous is not None:
            between = [j for j in range(previous + 1, i) if j not in skip and texts[j].strip()]
            if len(between) <= MAX_GAP_LINES:
                toc.lines.update(between)
        toc.lines.add(i)
        toc.entries.extend(entries_at[i])
        previous = i
    # The ToC's own heading just above the first entry ("Table of Contents").
    j = entry_lines[0] - 1
    while j >= 0 and (j in skip or not texts[j].strip()):
        j -= 1
    if j >= 0 and len(texts[j].split()) <= MAX_HEADING_WORDS and not parse_numbering(texts[j].strip()):
        toc.lines.add(j)
    return toc
