"""``POST /documents`` (upload one report) and ``DELETE /documents/{key}``: changes to the library.

Each change is one new build written by :class:`index.library.Library` (the build folder + ``CURRENT``
swap) and then served by this process before the answer goes out, so the client that added a report
can search it at once; requests already running finish on the build they started with. Behind
:func:`service.deps.require_writer`: the bearer token when one is configured, else a loopback bind.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from index import IndexUnavailable, LibraryError, UnknownDocument

from service import schemas
from service.deps import WRITER, get_state
from service.errors import responses
from service.routes.documents import DOCUMENT_REF, document_info
from service.state import ServiceState
from service.uploads import UPLOAD_OPENAPI, UPLOAD_ROUTE, SavedUpload, save_upload
from settings import Settings

def _library(st: ServiceState, embedder=None):
    from index.library import Library

    return Library(st.settings, embedder=embedder)


def _serve_new_build(st: ServiceState) -> str:
    """Swap in the build the change wrote before answering, so the client's next request sees it."""
    try:
        st.reload(only_if_changed=True)
    except IndexUnavailable as exc:  # written but not loadable: the previous build stays served
        raise HTTPException(503, f"the library changed but its new build could not be served (the previous one "
                                 f"still is): {exc}") from None
    return st.build_name


def _add(st: ServiceState, saved: SavedUpload) -> JSONResponse:
    from index.library import LibraryBusy

    try:
        change = _library(st, st.passage_embedder()).add([saved.path], key=saved.key)
    except LibraryBusy as exc:
        raise HTTPException(409, str(exc)) from None
    except LibraryError as exc:
        raise HTTPException(422, str(exc)) from None
    if change.failures:
        raise HTTPException(422, f"{saved.path.name}: {change.failures[0].reason}")
    if change.added:
        record, status = change.added[0], 201
    elif change.unchanged:
        record, status = change.unchanged[0][1], 200  # the same content is already there: nothing to do
    else:
        raise HTTPException(422, f"{saved.path.name}: nothing could be read from it")
    body = schemas.UploadResponse(document=document_info(record), added=bool(change.added),
                                  build=_serve_new_build(st),
                                  warnings=[w.message for w in change.warnings])
    return JSONResponse(body.model_dump(), status_code=status)


def _remove(st: ServiceState, key: str) -> schemas.RemoveResponse:
    from index.library import LibraryBusy

    try:
        # Removing embeds nothing: the passage encoder is passed only if it is already loaded.
        change = _library(st, st.ingest_embedder).remove([key])
    except UnknownDocument as exc:
        raise HTTPException(404, str(exc)) from None
    except LibraryBusy as exc:
        raise HTTPException(409, str(exc)) from None
    except LibraryError as exc:
        raise HTTPException(409, str(exc)) from None
    return schemas.RemoveResponse(key=key, removed=[r.edition for r in change.removed], build=_serve_new_build(st))


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.post(UPLOAD_ROUTE, response_model=schemas.UploadResponse, status_code=201, dependencies=WRITER,
              responses={200: {"model": schemas.UploadResponse, "description": "Already in the library"},
                         **responses(400, 401, 403, 409, 413, 415, 422, 503)}, openapi_extra=UPLOAD_OPENAPI)
    async def upload_document(request: Request, st: ServiceState = Depends(get_state)):
        """Add one report (Markdown, text or PDF) as a multipart upload in the field ``file``; an
        optional ``key`` field names the document it is a new edition of. Answers once the new build
        is served."""
        with tempfile.TemporaryDirectory(prefix="reportqa-upload-") as folder:
            saved = await save_upload(request, Path(folder), int(st.settings.max_file_mb * 2**20))
            return await run_in_threadpool(_add, st, saved)

    @api.delete("/documents/{key}", response_model=schemas.RemoveResponse, dependencies=WRITER,
                responses=responses(401, 403, 404, 409, 422, 503))
    async def delete_document(key: str = PathParam(..., pattern=DOCUMENT_REF, description="A key (every edition) or "
                                                   "key@edition (that edition)."), st: ServiceState = Depends(get_state)):
        """Remove a document (all its editions) or one edition; answers once the build without it is served."""
        return await run_in_threadpool(_remove, st, key)

    return api
