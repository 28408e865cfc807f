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

from service import schemas
from service.deps import WRITER, get_state
from service.errors import responses
from service.state import ServiceState
from service.uploads import UPLOAD_OPENAPI, UPLOAD_ROUTE, SavedUpload, save_upload
from settings import Settings

DOCUMENT_KEY = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


def _add(st: ServiceState, saved: SavedUpload) -> schemas.UploadResponse:
    raise HTTPException(501, "uploads need the library (index.library), not merged yet")


def _remove(st: ServiceState, key: str) -> schemas.RemoveResponse:
    raise HTTPException(501, "removal needs the library (index.library), not merged yet")


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.post(UPLOAD_ROUTE, response_model=schemas.UploadResponse, status_code=201, dependencies=WRITER,
              responses=responses(400, 401, 403, 409, 413, 415, 422), openapi_extra=UPLOAD_OPENAPI)
    async def upload_document(request: Request, st: ServiceState = Depends(get_state)):
        """Add one report (Markdown, text or PDF) as a multipart upload in the field ``file``; an
        optional ``key`` field names the document it is a new edition of. Answers once the new build
        is served."""
        with tempfile.TemporaryDirectory(prefix="reportqa-upload-") as folder:
            saved = await save_upload(request, Path(folder), int(st.settings.max_file_mb * 2**20))
            return await run_in_threadpool(_add, st, saved)

    @api.delete("/documents/{key}", response_model=schemas.RemoveResponse, dependencies=WRITER,
                responses=responses(401, 403, 404, 409, 422))
    async def delete_document(key: str = PathParam(..., pattern=DOCUMENT_KEY), st: ServiceState = Depends(get_state)):
        """Remove a document and all its editions; answers once the build without it is served."""
        return await run_in_threadpool(_remove, st, key)

    return api
