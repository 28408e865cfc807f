"""The library's catalog: document keys, editions, which edition is current, and the typed records listing them.

A *document* is a stable key (``annual-review``); each version of its file that was added is an *edition*,
named by the first 12 hex digits of the file's SHA-256, so a saved citation (key + edition) names exactly
the text it cites however the library changes later. A key has one *current* edition (the one searched by
default, the last one added); the others stay in the index and are searched when asked for by edition.

In a build, each edition is one :class:`~ingest.Document` whose ``id`` is unique in the build: the key for
the first edition that took it (so a one-edition library has the same ids ``reportqa ingest`` gives),
``key@edition`` for later ones. Chunk ids hash the document id, so two editions never share a chunk id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ingest import Chunk, Document, Section

EDITION_HEX = 12  # edition id = content SHA-256 prefix: 48 bits, no collision in any real library
KEY_MAX_CHARS = 80
EDITION_SEPARATOR = "@"  # document id of a later edition: key@edition
# File names that say nothing about the report: the key comes from its title instead.
GENERIC_STEMS = frozenset({"report", "document", "index", "main", "paper", "untitled", "download", "file"})


class UnknownDocument(LookupError):
    """No document (or no such edition of it) in the library; the message names what exists."""


class LibraryError(ValueError):
    """A library change that cannot be made as asked (e.g. removing every document); the message says why."""


@dataclass(frozen=True)
class DocumentRecord:
    """One edition of a document as the library lists it (``reportqa documents``, ``GET /documents``)."""

    key: str
    edition: str
    document_id: str  # the id in the build: chunks' document_id, the ``document`` filter of a query
    title: str
    source: str  # the file name it was read from (not its folder)
    format: str
    pages: int | None
    sections: int
    chunks: int
    sha256: str
    added_at: str
    current: bool


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:KEY_MAX_CHARS].strip("-")


def check_key(key: str) -> str:
    """A key given by hand (``--key``): letters, digits, ``.``, ``_`` and ``-`` only, so ids and file names stay safe."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (KEY_MAX_CHARS - 1), key or ""):
        raise LibraryError(f"bad document key {key!r}: use letters, digits, '.', '_' and '-' "
                           f"(at most {KEY_MAX_CHARS} characters, starting with a letter or digit)")
    return key


def key_from_name(source: str) -> str | None:
    """The key a file name gives (its slug: the id ``ingest`` gives), None when the name is a generic one
    (``report.pdf``) or has no letters or digits: then the title decides (:func:`default_key`)."""
    stem = slug(Path(source).stem)
    return stem if stem and stem not in GENERIC_STEMS else None


def default_key(source: str, title: str) -> str:
    """The key of a file added without ``--key``: from its file name, else from its title."""
    return key_from_name(source) or slug(title) or slug(Path(source).stem) or "report"


def edition_of(sha256: str) -> str:
    return sha256[:EDITION_HEX]


def split_reference(reference: str) -> tuple[str, str | None]:
    """``key`` or ``key@edition`` -> (key, edition or None)."""
    key, sep, edition = reference.partition(EDITION_SEPARATOR)
    return key, (edition or None) if sep else None


def stamped(documents: list[Document], chunks: list[Chunk], added_at: str
            ) -> tuple[list[Document], list[Chunk]]:
    """Documents without a key (a scratch ``ingest``) as first editions of themselves (key = id, edition =
    hash prefix), their chunks carrying the same; documents that already have one are left as they are."""
    stamps: dict[str, tuple[str, str]] = {}
    out_docs = []
    for doc in documents:
        if not doc.key or not doc.edition:
            doc = replace(doc, key=doc.key or doc.id, edition=doc.edition or edition_of(doc.sha256),
                          added_at=doc.added_at or added_at)
        stamps[doc.id] = (doc.key, doc.edition)
        out_docs.append(doc)
    out_chunks = [c if (c.document_key, c.edition) == stamps.get(c.document_id, (c.document_key, c.edition))
                  else replace(c, document_key=stamps[c.document_id][0], edition=stamps[c.document_id][1])
                  for c in chunks]
    return out_docs, out_chunks


def key_of(doc: Document) -> str:
    return doc.key or doc.id


def edition_id(doc: Document) -> str:
    return doc.edition or edition_of(doc.sha256)


def editions_by_key(documents: dict[str, Document] | list[Document]) -> dict[str, list[Document]]:
    """key -> its editions in the order they were added (build order)."""
    out: dict[str, list[Document]] = {}
    for doc in (documents.values() if isinstance(documents, dict) else documents):
        out.setdefault(key_of(doc), []).append(doc)
    return out


def current_ids(documents: dict[str, Document]) -> set[str]:
    return {d.id for d in documents.values() if d.current}


def resolve(documents: dict[str, Document], document: str | None, edition: str | None = None,
            by_key: dict[str, list[Document]] | None = None) -> Document:
    """The document a query, a diff or a removal names: ``document`` is a key, a document id or
    ``key@edition``; ``edition`` (an edition id or a unique prefix of one) picks one edition of it, else the
    current one. With only ``edition``, the edition of whichever document has it. UnknownDocument otherwise.
    ``by_key``: :func:`editions_by_key` of ``documents``, when the caller keeps it (a retriever does)."""
    key, inline = split_reference(document) if document is not None else (None, None)
    edition = edition or inline
    by_key = editions_by_key(documents) if by_key is None else by_key
    if key is not None and key not in by_key:
        known = ", ".join(sorted(by_key)[:10]) + (" …" if len(by_key) > 10 else "")
        raise UnknownDocument(f"unknown document {key!r}; the library holds: {known or 'nothing'}")
    candidates = by_key[key] if key is not None else list(documents.values())
    if edition is None:
        current = [d for d in candidates if d.current]
        return (current or candidates)[-1]
    found = [d for d in candidates if edition_id(d).startswith(edition.lower())]
    if len(found) != 1:
        what = f"document {key!r}" if key is not None else "the library"
        have = ", ".join(edition_id(d) for d in candidates[:10])
        raise UnknownDocument(f"{'no' if not found else 'more than one'} edition {edition!r} in {what}"
                              + (f"; its editions: {have}" if key is not None else ""))
    return found[0]


def record_of(doc: Document, sections: int, chunks: int) -> DocumentRecord:
    return DocumentRecord(key=key_of(doc), edition=edition_id(doc), document_id=doc.id, title=doc.title,
                          source=Path(doc.path).name, format=doc.format, pages=len(doc.page_starts) or None,
                          sections=sections, chunks=chunks, sha256=doc.sha256, added_at=doc.added_at,
                          current=doc.current)


def records(documents: list[Document], sections: list[Section], chunks: list[Chunk]) -> list[DocumentRecord]:
    """Each edition's record, in build order."""
    n_sections: dict[str, int] = {}
    n_chunks: dict[str, int] = {}
    for s in sections:
        n_sections[s.document_id] = n_sections.get(s.document_id, 0) + 1
    for c in chunks:
        n_chunks[c.document_id] = n_chunks.get(c.document_id, 0) + 1
    return [record_of(d, n_sections.get(d.id, 0), n_chunks.get(d.id, 0)) for d in documents]


def new_document_id(key: str, edition: str, taken: set[str]) -> str:
    """The build id of a new edition: the key if no document has it, else ``key@edition``."""
    return key if key not in taken else f"{key}{EDITION_SEPARATOR}{edition}"
