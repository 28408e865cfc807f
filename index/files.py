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
from typing import Callable, Iterator

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


class LockBusy(RuntimeError):
    """Another process held the lock for longer than we were willing to wait; the message names it."""


@contextlib.contextmanager
def writer_lock(lock_path: Path, timeout_s: float, what: str,
                on_wait: Callable[[str], None] | None = None, poll_s: float = 0.1) -> Iterator[None]:
    """An inter-process lock that waits at most ``timeout_s`` (flock, released by the kernel when its
    holder dies, so a kill -9 never leaves it stuck). The holder writes who it is into the lock file;
    a waiter is told that (``on_wait``, once) and, on giving up, LockBusy says it too."""
    import fcntl
    import time

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as fh:
        started, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(lock_path)
                waited = time.monotonic() - started
                if waited >= timeout_s:
                    raise LockBusy(f"{holder} is changing this index; gave up after waiting {waited:.0f}s "
                                   f"(try again when it has finished)") from None
                if on_wait and not told:
                    on_wait(f"waiting up to {timeout_s:.0f}s: {holder} is changing this index")
                    told = True
                time.sleep(poll_s)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "what": what, "since": time.strftime("%H:%M:%S", time.gmtime())}))
            fh.flush()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _lock_holder(lock_path: Path) -> str:
    try:
        meta = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        meta = {}
    if not meta:
        return "another writer"
    return f"another writer (`reportqa {meta.get('what', '?')}`, pid {meta.get('pid', '?')}, since {meta.get('since', '?')} UTC)"


FAILPOINT_ENV = "REPORTQA_FAILPOINT"  # tests only: the named point at which a writer kills itself (kill -9)


def failpoint(name: str) -> None:
    """Die like ``kill -9`` here if REPORTQA_FAILPOINT names this point: how the tests prove that a writer
    killed at any step leaves the previous build served. A no-op otherwise (one environment lookup)."""
    if os.environ.get(FAILPOINT_ENV) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
