"""``GET /sections`` (the table of contents as a tree) and ``GET /sections/{id}`` (one section's text)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query as QueryParam

from index import UnknownDocument
from index.catalog import current_ids, resolve
from index.outline import OutlineNode, child_ids, find_section, section_chunks, section_label, section_text, section_tree
from service import schemas
from service.deps import GUARDED, get_state
from service.errors import responses
from service.present import span
from service.state import ServiceState
from settings import Settings

SECTION_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


def tree_node(node: OutlineNode) -> schemas.SectionNode:
    s = node.section
    return schemas.SectionNode(id=s.id, document=s.document_id, number=s.number, title=s.title, label=node.label,
                               level=s.level, children=[tree_node(c) for c in node.children])


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.get("/sections", response_model=schemas.SectionsResponse, dependencies=GUARDED, responses=responses(404))
    def list_sections(
        document: str | None = QueryParam(None, max_length=200, description="Only this document (key, id or "
                                                                            "key@edition); default: all."),
        edition: str | None = QueryParam(None, pattern=schemas.EDITION_PATTERN,
                                         description="Only this edition; default: each document's current one."),
        st: ServiceState = Depends(get_state),
    ):
        index = st.retriever.index
        if document is None and edition is None:
            shown = current_ids(index.documents)  # older editions stay reachable by naming them
        else:
            try:
                shown = {resolve(index.documents, document, edition).id}
            except UnknownDocument as exc:
                raise HTTPException(404, str(exc)) from None
        docs = [{"id": d.id, "title": d.title} for d in index.documents.values() if d.id in shown]
        sections = [s for s in index.sections if s.document_id in shown]
        chunks = [c for c in index.chunks if c.document_id in shown]
        return schemas.SectionsResponse(documents=docs, sections=[tree_node(n) for n in section_tree(sections, chunks)])

    @api.get("/sections/{section_id}", response_model=schemas.SectionDetail, dependencies=GUARDED,
             responses=responses(404))
    def get_section(
        section_id: str = PathParam(..., pattern=SECTION_ID),
        document: str | None = QueryParam(None, max_length=200),
        st: ServiceState = Depends(get_state),
    ):
        index = st.retriever.index
        if document is None:  # a current edition's section first: older editions are named by document
            current = current_ids(index.documents)
            s = find_section([x for x in index.sections if x.document_id in current], section_id) \
                or find_section(index.sections, section_id)
        else:
            s = find_section(index.sections, section_id, document)
        if s is None:
            raise HTTPException(404, f"no section {section_id!r}; GET /sections lists them")
        chunks = section_chunks(index.chunks, s)
        text, spans = section_text(chunks, s)
        return schemas.SectionDetail(
            id=s.id, document=s.document_id, number=s.number, title=s.title, label=section_label(s),
            path=list(s.path), parent_id=s.parent_id, children=child_ids(index.sections, s),
            char_start=s.char_start, char_end=s.char_end, text=text,
            chunks=[schemas.SectionChunk(**span(c).model_dump(), text_start=a, text_end=b)
                    for c, (a, b) in zip(chunks, spans)],
        )

    return api
