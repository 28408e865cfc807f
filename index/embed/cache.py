"""The file cache for derived model files (the ONNX export, its int8 version): checksummed, made once, locked.

Each cached file has a sidecar ``<name>.json`` with its size and SHA-256, written after the file, so a
truncated, partly overwritten or foreign file is caught before ONNX Runtime sees it. Makers write a
temporary file and replace atomically; a lock makes concurrent processes wait for one maker.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

from index.embed.model import ModelUnavailable
from index.files import atomic_write_bytes, exclusive_lock, file_sha256, fsync_file

log = logging.getLogger("reportqa.embedder")

LOCK_NAME = ".export.lock"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def export_problem(path: Path, fingerprint: str) -> str | None:
    """Why the cached file at ``path`` cannot be used (None: it is complete and intact)."""
    if not path.is_file():
        return "no export yet"
    try:
        meta = json.loads(sidecar(path).read_text())
    except (OSError, ValueError):
        return "its checksum record is missing or unreadable"
    if meta.get("fingerprint") != fingerprint:
        return "it was exported from another model"
    if path.stat().st_size != meta.get("bytes"):
        return f"it has {path.stat().st_size} bytes, the export wrote {meta.get('bytes')}"
    if file_sha256(path) != meta.get("sha256"):
        return "its checksum does not match"
    return None


def install(tmp: Path, target: Path, fingerprint: str, extra: dict) -> None:
    """Move the finished temporary file into place, then record its size and checksum beside it."""
    fsync_file(tmp)
    meta = {"fingerprint": fingerprint, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)} | extra
    os.replace(tmp, target)
    atomic_write_bytes(sidecar(target), json.dumps(meta, indent=2).encode())


def ensure_cached(target: Path, fingerprint: str, make: Callable[[], None], what: str) -> bool:
    """Make the cached file ``target`` with ``make`` if it is missing or damaged; whether this call made it.

    Readers never see a partial file (``make`` writes a temp file, then :func:`install`); a lock makes
    concurrent processes wait for one maker instead of each making their own."""
    try:
        if export_problem(target, fingerprint) is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(target.parent / LOCK_NAME):
            problem = export_problem(target, fingerprint)  # another process may have finished it meanwhile
            if problem is None:
                return False
            if target.exists():
                log.warning("cached %s %s is unusable (%s); making it again", what, target, problem)
            try:
                make()
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"making the {what} {target.name} failed: {type(exc).__name__}: {exc}"
                                       ) from exc
    except OSError as exc:
        raise ModelUnavailable(f"cannot use the ONNX export cache {target.parent} ({exc.strerror or exc}); "
                               "set REPORTQA_CACHE_DIR to a writable folder") from exc
    return True
