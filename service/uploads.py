"""``POST /documents`` bodies: one report file in a multipart form, checked and written to a temporary
folder for the library to read. Every refusal says why, with the status that fits it (413 too large,
415 a type ingest does not read, 422 a file that is not what its name says)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from index.catalog import KEY_MAX_CHARS
from ingest.readers import SUPPORTED_SUFFIXES

UPLOAD_ROUTE = "/documents"
FILE_FIELD = "file"
KEY_FIELD = "key"
MAX_NAME_CHARS = 200
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,%d}$" % (KEY_MAX_CHARS - 1)  # what the library accepts as a key
COPY_CHUNK = 1 << 20
SNIFF_BYTES = 8192  # as much as ingest's own binary check reads
# A file name keeps letters, digits and a few separators; anything else (path separators, control
# characters, quotes) becomes "_" so the name is safe to write and to show.
UNSAFE_NAME = re.compile(r"[^\w.\- ()+,]")

# What the API documents for the body (the route reads the form itself, after the token check).
UPLOAD_OPENAPI = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FILE_FIELD], "properties": {
        FILE_FIELD: {"type": "string", "format": "binary",
                     "description": "One report: " + ", ".join(sorted(SUPPORTED_SUFFIXES)) + "."},
        KEY_FIELD: {"type": "string", "pattern": KEY_PATTERN,
                    "description": "The document key (default: from its file name, or its title for a generic "
                                   "name); an existing key makes this file that document's new current edition."},
    }}}}}}


@dataclass(frozen=True)
class SavedUpload:
    path: Path  # the file under the temporary folder, with the uploaded (cleaned) name
    size: int
    key: str | None


def clean_name(filename: str | None) -> str:
    """The uploaded file's own name without any folder part, made safe; 422 when there is none."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    name = UNSAFE_NAME.sub("_", name)[-MAX_NAME_CHARS:].lstrip(".")
    if not Path(name).stem:
        raise HTTPException(422, "the uploaded file has no name: send it with a file name such as report.md")
    return name


def check_type(name: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise HTTPException(415, f"unsupported file type {suffix or '(none)'} ({name}); send one of "
                                 + ", ".join(sorted(SUPPORTED_SUFFIXES)))


def check_content(name: str, head: bytes) -> None:
    """A cheap look at the first bytes: what ingest would refuse anyway, refused before any work."""
    if not head:
        raise HTTPException(422, f"{name} is empty")
    if Path(name).suffix.lower() == ".pdf":
        if not head.startswith(b"%PDF"):
            raise HTTPException(422, f"{name} is not a PDF file (missing %PDF header)")
        return
    if b"\x00" in head:
        raise HTTPException(422, f"{name} is a binary file (contains NUL bytes), not a text report")


async def read_form(request: Request):
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise HTTPException(415, "unsupported content type: upload the report as multipart/form-data "
                                 f"with a '{FILE_FIELD}' field")
    # Starlette answers a malformed multipart body with its own 400 (and the reason).
    return await request.form(max_files=1, max_fields=4)


async def save_upload(request: Request, folder: Path, max_file_bytes: int) -> SavedUpload:
    """Read the form, check the file and copy it into ``folder``; HTTPException with the reason otherwise."""
    form = await read_form(request)
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, f"no file: send the report in a multipart field named '{FILE_FIELD}'")
        key = form.get(KEY_FIELD)
        if key is not None and not isinstance(key, str):
            raise HTTPException(422, f"'{KEY_FIELD}' must be text, not a file")
        name = clean_name(upload.filename)
        check_type(name)
        target = folder / name
        size = 0
        with target.open("wb") as out:
            while chunk := await upload.read(COPY_CHUNK):
                if size == 0:
                    check_content(name, chunk[:SNIFF_BYTES])
                size += len(chunk)
                if size > max_file_bytes:
                    raise HTTPException(413, f"{name} is over the {max_file_bytes / 2**20:g} MB limit per report "
                                             "(max_file_mb)")
                out.write(chunk)
        if size == 0:
            check_content(name, b"")
        return SavedUpload(target, size, key)  # the library checks the key and says what is wrong with it
    finally:
        await form.close()
