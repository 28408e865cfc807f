"""``POST /query`` and ``GET /query``: a question in, cited passages out."""
from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, Query as QueryParam
from fastapi.responses import Response

from index import Query, UnknownDocument, UnknownSection
from service import schemas
from service.deps import GUARDED, as_json, bounded, get_state
from service.errors import responses
from service.present import InvalidQuestion, clean_question, query_response
from service.state import ServiceState
from settings import Settings


def _search_and_keep(st: ServiceState, retriever, query: Query, key: tuple):
    try:
        result = retriever.search(query)
    except UnknownSection as exc:
        raise HTTPException(422, str(exc)) from None
    except UnknownDocument as exc:
        raise HTTPException(404, str(exc)) from None
    if st.cache:
        st.cache.put(key, result)
    return result


async def run_query(req: schemas.QueryRequest, st: ServiceState) -> Response:
    try:
        question = clean_question(req.question, st.settings.max_question_chars)
    except InvalidQuestion as exc:
        raise HTTPException(422, str(exc)) from None
    started = time.perf_counter()
    with st.lease() as retriever:  # one index for the whole request, even if a reload swaps it meanwhile
        query = Query(question, req.k, req.mode, req.section, req.document, req.group_by_section)
        key = (retriever.index.manifest.get("build", ""), query)
        # A repeated question is answered from the cache on the event loop (no thread hop); a new one is
        # searched in the thread pool, where encoding releases the GIL and the loop stays free.
        result = st.cache.get(key) if st.cache else None
        if result is None:
            result = await bounded(st.settings.request_timeout_s, _search_and_keep, st, retriever, query, key)
        documents = retriever.index.documents
    return as_json(query_response(question, req.mode, result, documents, (time.perf_counter() - started) * 1000))


def router(settings: Settings) -> APIRouter:
    api = APIRouter()
    body_model = schemas.query_request_model(settings.max_question_chars)

    async def post_query(body: schemas.QueryRequest, st: ServiceState = Depends(get_state)):
        return await run_query(body, st)

    # The body model is built at run time (its documented length follows the settings), so it is
    # attached here rather than through a string annotation.
    post_query.__annotations__["body"] = body_model
    api.post("/query", response_model=schemas.QueryResponse, dependencies=GUARDED,
             responses=responses(400, 404, 413, 415, 422))(post_query)

    @api.get("/query", response_model=schemas.QueryResponse, dependencies=GUARDED, responses=responses(404, 422))
    async def get_query(
        q: str = QueryParam(..., max_length=100_000, description="The question (not blank).",
                            json_schema_extra=schemas.question_schema(settings.max_question_chars)),
        k: int = QueryParam(5, ge=1, le=50),
        mode: schemas.Mode = QueryParam(schemas.Mode.HYBRID),
        section: str | None = QueryParam(None, max_length=200),
        document: str | None = QueryParam(None, max_length=200),
        group_by_section: bool = QueryParam(False),
        st: ServiceState = Depends(get_state),
    ):
        req = schemas.QueryRequest(question=q, k=k, mode=mode, section=section, document=document,
                                   group_by_section=group_by_section)
        return await run_query(req, st)

    return api
