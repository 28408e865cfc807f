"""The table of contents of a loaded index: the section tree, each section's text, its chunks.

Built here, below the service, so the HTTP routes (``/sections``) and the command line
(``reportqa sections``) show the same tree and the same labels from one implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ingest import Chunk, Section

UNTITLED_OPENING = "Opening (untitled)"


def section_label(section: Section) -> str:
    """Display name: the heading as printed, or a description for the untitled opening."""
    return section.title or UNTITLED_OPENING


@dataclass
class OutlineNode:
    section: Section
    chunks: int  # how many chunks the section itself holds (not its subsections)
    children: list["OutlineNode"] = field(default_factory=list)

    @property
    def label(self) -> str:
        return section_label(self.section)


def chunk_counts(chunks: list[Chunk]) -> dict[tuple[str, str], int]:
    """Chunks per (document id, section id)."""
    counts: dict[tuple[str, str], int] = {}
    for c in chunks:
        counts[(c.document_id, c.section_id)] = counts.get((c.document_id, c.section_id), 0) + 1
    return counts


def section_tree(sections: list[Section], chunks: list[Chunk]) -> list[OutlineNode]:
    """The sections as a forest (one root per top-level section of each document), in document order."""
    counts = chunk_counts(chunks)
    nodes: dict[tuple[str, str], OutlineNode] = {}
    roots: list[OutlineNode] = []
    for s in sections:
        node = OutlineNode(s, counts.get((s.document_id, s.id), 0))
        nodes[(s.document_id, s.id)] = node
        parent = nodes.get((s.document_id, s.parent_id)) if s.parent_id else None
        (parent.children if parent else roots).append(node)
    return roots


def find_section(sections: list[Section], section_id: str, document_id: str | None = None) -> Section | None:
    """The first section with this id (in ``document_id`` when given)."""
    return next((s for s in sections if s.id == section_id and (document_id is None or s.document_id == document_id)),
                None)


def section_chunks(chunks: list[Chunk], section: Section) -> list[Chunk]:
    """The section's own chunks, in order."""
    return [c for c in chunks if c.document_id == section.document_id and c.section_id == section.id]


def child_ids(sections: list[Section], section: Section) -> list[str]:
    return [c.id for c in sections if c.document_id == section.document_id and c.parent_id == section.id]


def section_text(chunks: list[Chunk], section: Section) -> tuple[str, list[tuple[int, int]]]:
    """The section's text once (overlapping chunks repeat sentences), paragraphs kept apart, and each
    chunk's span in that text."""
    paragraphs = section.body_spans
    out, spans, covered, para = "", [], -1, None
    for c in chunks:
        start = None
        for sent in c.sentences:
            if sent.char_start >= covered:
                here = next((n for n, (a, b) in enumerate(paragraphs) if a <= sent.char_start < b), para)
                sep = "" if not out else (" " if here == para else "\n\n")
                out += sep
                if start is None:
                    start = len(out)
                out += c.text[sent.text_start:sent.text_end]
                covered, para = sent.char_end, here
            elif start is None:
                # An overlapped sentence: the chunk starts where that sentence already stands.
                found = out.find(c.text[sent.text_start:sent.text_end])
                start = found if found >= 0 else len(out)
        spans.append((start if start is not None else len(out), len(out)))
    return out, spans
