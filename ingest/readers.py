"""Read report files (Markdown, plain text, PDF) into Documents, with reasons for failures."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ingest.pdf import PAGE_SEPARATOR, join_pages  # noqa: F401  (PAGE_SEPARATOR: kept importable)
from ingest.records import Document

SUPPORTED_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf"}


class UnreadableReport(ValueError):
    """A file that is not a usable report; the message says why."""


def document_id_for(path: Path) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "report"


def find_report_files(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand folders into supported files; return (files, [(path, reason)]) for what cannot be read."""
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                problems.append((path, "folder holds no .md, .txt or .pdf files"))
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(path)
            else:
                problems.append((path, f"unsupported file type {path.suffix or '(none)'}; use .md, .txt or .pdf"))
        else:
            problems.append((path, "no such file or folder"))
    return files, problems


# A text file that is not UTF-8 is read as Windows-1252 (Latin-1 and its quotes) only if nearly all of it
# is then printable: a binary file decodes too, into control characters.
LEGACY_ENCODING = "cp1252"
MIN_PRINTABLE_SHARE = 0.98


def _decode(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its byte-order mark (Windows "Unicode" text)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableReport("starts with a UTF-16 byte-order mark but is not UTF-16 text") from None
    if b"\x00" in data[:8192]:
        raise UnreadableReport("binary file (contains NUL bytes), not a text report")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = f"not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})"
    try:
        text = data.decode(LEGACY_ENCODING)
    except UnicodeDecodeError:
        raise UnreadableReport(f"{utf8_error}, nor {LEGACY_ENCODING}") from None
    printable = sum(ch.isprintable() or ch in "\n\r\t\f" for ch in text)
    if printable < MIN_PRINTABLE_SHARE * len(text):
        raise UnreadableReport(f"{utf8_error}, and read as {LEGACY_ENCODING} it is not text") from None
    return text


def _read_pdf(path: Path, outline: bool = True):
    from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

    from ingest.pdf import read_pdf

    try:
        return read_pdf(path, outline)
    except FileNotDecryptedError:
        raise UnreadableReport("PDF is encrypted with a password: decrypt it first (qpdf --decrypt)") from None
    except (DependencyError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RecursionError) as exc:  # pypdf on a damaged file raises any of these
        raise UnreadableReport(f"cannot read PDF: {type(exc).__name__}: {exc}") from None


def read_report(path: Path, max_file_mb: float | None = None, pdf_outline: bool = True) -> Document:
    """Read one report file exactly as it is on disk (PDF: its extracted text; ``pdf_outline=False``:
    as if it had no bookmarks)."""
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UnreadableReport(f"unsupported file type {path.suffix or '(none)'}")
    size = path.stat().st_size
    if max_file_mb is not None and size > max_file_mb * 1024 * 1024:
        raise UnreadableReport(f"file is {size / 1024 / 1024:.1f} MB, over the {max_file_mb} MB limit (max_file_mb)")
    data = path.read_bytes()
    page_starts: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    bookmarks: tuple[tuple[str, int, int], ...] = ()
    font_headings: tuple[tuple[str, int, int], ...] = ()
    textless: tuple[int, ...] = ()
    if kind == "pdf":
        if not data.startswith(b"%PDF"):
            raise UnreadableReport("not a PDF file (missing %PDF header)")
        content = _read_pdf(path, pdf_outline)
        text, page_starts = join_pages(content.pages)
        labels = content.labels
        bookmarks = tuple((b.title, b.page, b.depth) for b in content.bookmarks)
        font_headings = tuple((b.title, b.page, b.depth) for b in content.font_headings)
        textless = tuple(n for n, page in enumerate(content.pages, 1) if not page.strip())
        if not text.strip():
            raise UnreadableReport("PDF has no extractable text (scanned images need OCR first)")
    else:
        text = _decode(data)
    if not text.strip():
        raise UnreadableReport("file is empty")
    return Document(
        id=document_id_for(path),
        path=str(path),
        title="",
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        format=kind,
        page_starts=page_starts,
        page_labels=labels,
        bookmarks=bookmarks,
        font_headings=font_headings,
        pages_without_text=textless,
    )
