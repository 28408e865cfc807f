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


def is_entry(text: str) -> bool:
    """A title (letters, no leader of its own), a dot leader, a page number: nothing else."""
    if len(text) > MAX_ENTRY_CHARS:
        return False
    m = _ENTRY.match(text.strip())
    if not m:
        return False
    title = m["title"]
    last = title.rstrip()[-1:]
    return (bool(re.search(r"[A-Za-z]{2}", title)) and len(title.split()) <= MAX_ENTRY_WORDS
            and not _LEADER_RUN.search(title) and (last.isalpha() or last in ")\"'"))


def find_dot_leader_toc(texts: list[str], skip: set[int]) -> DotLeaderToc:
    """Every run of dot-leader entries (blank lines, furniture and short wrapped lines may sit between)."""
    toc = DotLeaderToc()
    entry_lines = [i for i, t in enumerate(texts) if i not in skip and is_entry(t)]
    if len(entry_lines) < MIN_ENTRIES:
        return toc
    previous = None
    for i in entry_lines:
        if previous is not None:
            between = [j for j in range(previous + 1, i) if j not in skip and texts[j].strip()]
            if len(between) <= MAX_GAP_LINES:
                toc.lines.update(between)
        toc.lines.add(i)
        m = _ENTRY.match(texts[i].strip())
        title = " ".join(m["title"].split())
        toc.entries.append(TocEntry(title, m["page"], parse_numbering(title, explicit=True)))
        previous = i
    # The ToC's own heading just above the first entry ("Table of Contents").
    j = entry_lines[0] - 1
    while j >= 0 and (j in skip or not texts[j].strip()):
        j -= 1
    if j >= 0 and len(texts[j].split()) <= MAX_HEADING_WORDS and not parse_numbering(texts[j].strip()):
        toc.lines.add(j)
    return toc
