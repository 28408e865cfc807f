"""``GET /documents`` (every document and edition), ``GET /documents/{key}`` (one document: its editions
and an edition's sections) and ``GET /documents/{key}/diff`` (sections added, removed, moved and changed
between two editions).

Listing and detail read the served index, so they name exactly what ``/query`` searches; the diff is
the library's own (:meth:`index.library.Library.diff`, shared with ``reportqa diff``).
"""
from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query as QueryParam

from index import DocumentRecord, LibraryError, UnknownDocument
from index.catalog import key_of, records, resolve
from index.outline import section_tree
from service import schemas
from service.deps import GUARDED, get_state
from service.errors import responses
from service.routes.sections import tree_node
from service.state import ServiceState
from settings import Settings

# A key, or key@edition (the id a later edition has in the index).
DOCUMENT_REF = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}(@[0-9a-fA-F]{4,64})?$"


def document_info(record: DocumentRecord) -> schemas.DocumentInfo:
    data = asdict(record)
    data["id"] = data.pop("document_id")
    return schemas.DocumentInfo(**data)


def listed(st: ServiceState) -> list[DocumentRecord]:
    """Every edition the served index holds, in the order added."""
    index = st.retriever.index
    return records(list(index.documents.values()), index.sections, index.chunks)


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.get("/documents", response_model=schemas.DocumentsResponse, dependencies=GUARDED)
    def list_documents(st: ServiceState = Depends(get_state)):
        return schemas.DocumentsResponse(documents=[document_info(r) for r in listed(st)])

    @api.get("/documents/{key}", response_model=schemas.DocumentDetail, dependencies=GUARDED,
             responses=responses(404, 422))
    def get_document(
        key: str = PathParam(..., pattern=DOCUMENT_REF, description="A document key, or key@edition."),
        edition: str | None = QueryParam(None, pattern=schemas.EDITION_PATTERN,
                                         description="An edition id (or unique prefix); default current."),
        st: ServiceState = Depends(get_state),
    ):
        index = st.retriever.index
        try:
            doc = resolve(index.documents, key, edition)
        except UnknownDocument as exc:
            raise HTTPException(404, str(exc)) from None
        editions = [r for r in listed(st) if r.key == key_of(doc)]
        record = next(r for r in editions if r.document_id == doc.id)
        own = [s for s in index.sections if s.document_id == doc.id]
        chunks = [c for c in index.chunks if c.document_id == doc.id]
        return schemas.DocumentDetail(key=record.key, edition=document_info(record),
                                      editions=[document_info(r) for r in editions],
                                      sections=[tree_node(n) for n in section_tree(own, chunks)])

    @api.get("/documents/{key}/diff", response_model=schemas.DiffResponse, dependencies=GUARDED,
             responses=responses(404, 422))
    def diff_document(
        key: str = PathParam(..., pattern=DOCUMENT_REF),
        from_: str | None = QueryParam(None, alias="from", pattern=schemas.EDITION_PATTERN,
                                       description="The older edition (default: the one before `to`)."),
        to: str | None = QueryParam(None, pattern=schemas.EDITION_PATTERN,
                                    description="The newer edition (default: the current one)."),
        st: ServiceState = Depends(get_state),
    ):
        from index.library import Library

        try:
            diff = Library(st.settings).diff(key, from_, to)
        except UnknownDocument as exc:
            raise HTTPException(404, str(exc)) from None
        except LibraryError as exc:
            raise HTTPException(422, str(exc)) from None
        body = asdict(diff)
        body.pop("changes", None)
        return schemas.DiffResponse(**body)

    return api
