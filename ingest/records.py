"""The typed records that flow from ingest to every later stage."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One report as read from disk. ``text`` is the original, untouched (PDF: extracted text)."""

    id: str
    path: str
    title: str
    text: str
    sha256: str
    format: str  # "markdown", "text" or "pdf"
    page_starts: tuple[int, ...] = ()  # char offset where each page begins (PDF only)
    page_labels: tuple[str, ...] = ()  # printed page label of each page ("iii", "12"), PDF only
    bookmarks: tuple[tuple[str, int, int], ...] = ()  # PDF outline: (title, 0-based page, depth)
    font_headings: tuple[tuple[str, int, int], ...] = ()  # PDF without outline: larger/bolder lines, same shape
    pages_without_text: tuple[int, ...] = ()  # 1-based PDF pages whose text layer is empty: not searchable
    # What artifact removal took out (reported by `reportqa ingest --json`)
    toc_lines_removed: int = 0
    headers_removed: int = 0
    footers_removed: int = 0
    page_numbers_removed: int = 0
    # The library (index.catalog): a stable key across editions, this edition's id (content hash prefix),
    # when it was added, and whether it is the key's current edition (the one searched by default).
    key: str = ""
    edition: str = ""
    added_at: str = ""
    current: bool = True

    def missing_text_warning(self, min_share: float) -> str | None:
        """A warning when at least ``min_share`` of the pages have no text layer (scanned pages, or fonts
        embedded without a text map): what they say cannot be found, and the reader should know."""
        pages, missing = len(self.page_starts), self.pages_without_text
        if not pages or not missing or len(missing) < min_share * pages:
            return None
        return (f"{len(missing)} of {pages} pages have no extractable text ({page_ranges(missing)}): "
                "they cannot be searched (scanned images need OCR; fonts without a text map, another export)")

    def page_at(self, offset: int) -> int | None:
        """1-based page holding ``offset``, or None when pages are unknown."""
        if not self.page_starts:
            return None
        from bisect import bisect_right

        return bisect_right(self.page_starts, offset)

    def page_label_at(self, offset: int) -> str | None:
        """The printed label of the page holding ``offset`` (e.g. "iii"), or None when pages are unknown."""
        page = self.page_at(offset)
        if page is None:
            return None
        return self.page_labels[page - 1] if page <= len(self.page_labels) else str(page)


@dataclass(frozen=True)
class Section:
    """A node of the recovered table of contents."""

    id: str  # stable within the document, e.g. "p2.iv"
    document_id: str
    number: str  # as printed: "PART 2", "(IV)", "2.3", "" when unnumbered
    title: str  # heading exactly as printed, Markdown markers removed; "" for the opening
    path: tuple[str, ...]  # titles from the top level down to this section
    level: int  # 0 for the untitled opening, 1 for top-level headings
    parent_id: str | None
    char_start: int  # heading start (opening: first body char)
    char_end: int  # end of the section including its subsections
    body_spans: tuple[tuple[int, int], ...] = ()  # the section's own paragraphs, original offsets


@dataclass(frozen=True)
class Sentence:
    """A sentence inside a chunk: offsets into the chunk text and into the original file."""

    text_start: int
    text_end: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Chunk:
    """A token-bounded run of whole sentences from a single section."""

    id: str  # content hash of (document, section, text)
    document_id: str
    section_id: str
    section_title: str
    section_path: tuple[str, ...]
    ordinal: int  # position within the section, from 0
    text: str  # clean text: artifacts and Markdown markers removed, whitespace collapsed
    embed_text: str  # what the embedder and BM25 see: section context + text
    char_start: int
    char_end: int
    tokens: int  # tiktoken tokens of embed_text
    model_tokens: int  # embedder word pieces of embed_text, special tokens included
    page: int | None = None  # 1-based PDF page
    page_label: str | None = None  # the page's printed label ("iii", "12")
    sentences: tuple[Sentence, ...] = field(default_factory=tuple)
    # The document's library key and edition (index.catalog), so a saved citation names what it cites.
    document_key: str = ""
    edition: str = ""


@dataclass(frozen=True)
class IngestFailure:
    """A file that could not be ingested, and why (shown to the user, never raised past ingest)."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestWarning:
    """A file that was ingested with a problem the reader should know (pages that cannot be searched)."""

    path: str
    message: str


def page_ranges(pages: tuple[int, ...]) -> str:
    """Sorted 1-based page numbers as "pages 3, 7-9"."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return ("page " if len(pages) == 1 else "pages ") + text
