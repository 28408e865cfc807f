"""``GET /passages/{chunk_id}``: one chunk with its citation and its neighbours in the same section."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam

from service import schemas
from service.deps import GUARDED, get_state
from service.errors import responses
from service.present import citation, span
from service.state import ServiceState
from settings import Settings

CHUNK_ID = r"^[0-9a-f]{8,64}$"


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.get("/passages/{chunk_id}", response_model=schemas.PassageDetail, dependencies=GUARDED,
             responses=responses(404))
    def get_passage(chunk_id: str = PathParam(..., pattern=CHUNK_ID), st: ServiceState = Depends(get_state)):
        retriever = st.retriever
        chunks = retriever.index.chunks
        position = retriever.chunk_position.get(chunk_id)
        if position is None:
            raise HTTPException(404, f"no passage {chunk_id!r}")
        chunk = chunks[position]

        def neighbour(j: int):
            if 0 <= j < len(chunks) and chunks[j].document_id == chunk.document_id \
                    and chunks[j].section_id == chunk.section_id:
                return span(chunks[j])
            return None

        return schemas.PassageDetail(chunk=span(chunk), citation=citation(chunk, retriever.index.documents),
                                     previous=neighbour(position - 1), next=neighbour(position + 1))

    return api
