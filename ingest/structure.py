"""Recover a report's true structure from Markdown, plain text or a PDF's text: :func:`parse_report`
runs every step in order over the line model of :mod:`ingest.lines`.

Converters lie about structure: ``#`` counts do not follow the hierarchy, a
table of contents with page numbers precedes the body, page breaks cut
sentences, running headers and page numbers survive as lines or headings.
So the hierarchy is read from the heading *text* (its numbering style) and the
artifacts are recognised by shape, never by this or that report's strings.
"""
from __future__ import annotations

from ingest import artifacts, headings
from ingest.lines import ParsedReport, ReportLines
from ingest.markdown import read_blocks
from ingest.sections import build_sections


def parse_report(doc_text: str, markdown: bool = True, page_starts: tuple[int, ...] = (),
                 bookmarks: tuple = (), font_headings: tuple = ()) -> ParsedReport:
    """Recover title, sections and artifact mask from a report's original text (PDF: its extracted text,
    with page starts and bookmarks)."""
    doc = ReportLines(doc_text, markdown)
    protected = headings.bookmark_lines(doc, page_starts, bookmarks) if bookmarks else set()
    blocks = read_blocks(doc_text) if markdown else None
    code = blocks.fenced if blocks else frozenset()
    artifacts.remove_page_furniture(doc, page_starts, protected, code)
    toc = artifacts.remove_dot_leader_toc(doc, set(protected) | set(code))
    if bookmarks:
        headings.bookmark_headings(doc, page_starts, bookmarks)
    elif font_headings and page_starts:
        headings.font_size_headings(doc, page_starts, font_headings)
    elif markdown:
        headings.markdown_headings(doc, blocks)
    else:
        headings.text_headings(doc, pdf=bool(page_starts), toc_entries=tuple(toc.entries))
    title = "" if bookmarks else artifacts.take_title(doc)
    if not toc.entries and not bookmarks:
        artifacts.remove_heading_toc(doc, code)
    if markdown:
        artifacts.remove_heading_furniture(doc, title)
        headings.drop_label_headings(doc)
    artifacts.remove_outline_toc(doc, code)
    if markdown:
        artifacts.mask_markdown_markup(doc)
    sections, paragraphs = build_sections(doc)
    return ParsedReport(title=title, sections=sections, mask=doc.mask, paragraphs=paragraphs,
                        artifacts=doc.artifacts, tables=doc.tables)
