"""``GET /documents``: the documents the served index holds."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends

from index.outline import chunk_counts
from service import schemas
from service.deps import GUARDED, get_state
from service.state import ServiceState
from settings import Settings


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.get("/documents", response_model=schemas.DocumentsResponse, dependencies=GUARDED)
    def list_documents(st: ServiceState = Depends(get_state)):
        index = st.retriever.index
        sections: dict[str, int] = {}
        for s in index.sections:
            sections[s.document_id] = sections.get(s.document_id, 0) + 1
        chunks: dict[str, int] = {}
        for (document_id, _), n in chunk_counts(index.chunks).items():
            chunks[document_id] = chunks.get(document_id, 0) + n
        return schemas.DocumentsResponse(documents=[
            schemas.DocumentInfo(id=d.id, title=d.title, source=Path(d.path).name, format=d.format,
                                 sections=sections.get(d.id, 0), chunks=chunks.get(d.id, 0),
                                 pages=len(d.page_starts) or None)
            for d in index.documents.values()])

    return api
