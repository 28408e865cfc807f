"""Files written safely: atomic replacement, fsync, SHA-256 checksums, an inter-process lock.

Shared by the index store (build folders, ``CURRENT``) and the embedding file cache (ONNX exports),
so both write and check files the same way.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

BLOCK = 1 << 20  # read files in 1 MiB blocks: bounded memory for large weights and vectors


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (the index files' and the cached exports' checksums)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_beside(path: Path) -> Path:
    """A unique hidden temporary name in ``path``'s folder: os.replace from it is atomic (same file system)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def fsync_file(path: Path) -> None:
    with Path(path).open("rb+") as fh:
        os.fsync(fh.fileno())


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` to disk (before the folder is renamed into place)."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    tmp = temp_beside(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data) -> None:
    """JSON as the build folder keeps it (inside a folder that is itself switched in atomically)."""
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1))


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """An inter-process lock (flock): one process makes a file while the others wait for it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic replace still keeps readers safe, the work may just repeat
        yield
        return
    with Path(lock_path).open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
