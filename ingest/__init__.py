"""Ingest: read reports (Markdown, plain text, PDF), recover their section tree, take out page furniture
and tables of contents, cut faithful chunks.

Entry points: :func:`ingest_paths` (files -> documents, sections, chunks) and :func:`parse_document` (one
document's structure, no chunking). Everything downstream receives the typed records of
:mod:`ingest.records` (Document, Section, Chunk). The parse runs in :mod:`ingest.structure`; one module per
concern: markdown, text, pdf (headings per format), furniture, toc, artifacts, numbering, hierarchy, sections.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ingest.chunking import ChunkingConfig, chunk_document
from ingest.readers import UnreadableReport, find_report_files, read_report
from ingest.records import Chunk, Document, IngestFailure, IngestWarning, Section, Sentence
from ingest.structure import parse_report
from ingest.tokens import ModelWindow, TiktokenCounter

__all__ = [
    "Chunk", "Document", "IngestFailure", "IngestResult", "IngestWarning", "Section", "Sentence", "Chunker", "ingest_paths",
    "parse_document",
]


def parse_document(doc: Document):
    """A document's structure (sections, artifact mask, paragraphs), without chunking or token counting."""
    return parse_report(doc.text, markdown=doc.format == "markdown", page_starts=tuple(doc.page_starts),
                        bookmarks=tuple(tuple(b) for b in doc.bookmarks),
                        font_headings=tuple(tuple(b) for b in getattr(doc, "font_headings", ())))


def with_artifact_counts(doc: Document, parsed) -> Document:
    counts = parsed.artifact_counts()
    return replace(doc, toc_lines_removed=counts.get("toc", 0), headers_removed=counts.get("header", 0),
                   footers_removed=counts.get("footer", 0), page_numbers_removed=counts.get("page-number", 0))


@dataclass
class IngestResult:
    documents: list[Document]
    sections: list[Section]
    chunks: list[Chunk]
    failures: list[IngestFailure]


class Chunker:
    """Parses and chunks documents with one set of token counters (loaded once)."""

    def __init__(self, config: ChunkingConfig, tiktoken_encoding: str, model_path: str):
        self.config = config
        self.count_tokens = TiktokenCounter(tiktoken_encoding)
        self.window = ModelWindow(model_path)

    @classmethod
    def from_settings(cls, settings) -> "Chunker":
        config = ChunkingConfig(settings.chunk_tokens, settings.chunk_overlap_tokens, settings.embed_context)
        return cls(config, settings.tiktoken_encoding, settings.resolved_model_path)

    def parse(self, doc: Document) -> tuple[Document, list[Section], list[Chunk]]:
        parsed = parse_document(doc)
        doc = with_artifact_counts(replace(doc, title=parsed.title or Path(doc.path).stem), parsed)
        sections = [replace(s, document_id=doc.id) for s in parsed.sections]
        chunks = chunk_document(
            doc, parsed, sections, self.config, self.count_tokens, self.window, self.window.max_tokens
        )
        return doc, sections, chunks


def ingest_paths(
    paths: list[Path], chunker: Chunker, progress: Callable[[int, int, str], None] | None = None,
    max_file_mb: float | None = None,
) -> IngestResult:
    """Read, parse and chunk every report under ``paths``; bad files are reported, not raised."""
    files, problems = find_report_files(paths)
    result = IngestResult([], [], [], [IngestFailure(str(p), why) for p, why in problems])
    seen_ids: dict[str, str] = {}
    for n, path in enumerate(files, 1):
        if progress:
            progress(n, len(files), str(path))
        try:
            doc = read_report(path, max_file_mb)
        except UnreadableReport as exc:
            result.failures.append(IngestFailure(str(path), str(exc)))
            continue
        except OSError as exc:
            result.failures.append(IngestFailure(str(path), f"cannot read file: {exc.strerror or exc}"))
            continue
        if doc.id in seen_ids:
            result.failures.append(IngestFailure(str(path), f"same document id as {seen_ids[doc.id]}; rename one"))
            continue
        seen_ids[doc.id] = str(path)
        doc, sections, chunks = chunker.parse(doc)
        if not chunks:
            result.failures.append(IngestFailure(str(path), "no body text found after removing artifacts"))
            continue
        result.documents.append(doc)
        result.sections.extend(sections)
        result.chunks.extend(chunks)
    return result
