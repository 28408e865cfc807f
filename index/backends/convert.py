"""One build served by another backend (``reportqa eval --backends faiss,milvus``): the same chunks and
vectors (read back with ``vectors()``), indexed by the target backend's ``from_vectors``."""
from __future__ import annotations

from dataclasses import replace

from index.backends.base import Progress
from index.backends.factory import backend_class


def convert(loaded, name: str, options, exact_search_max: int, progress: Progress | None = None):
    """``loaded`` (a build on any backend) served by backend ``name`` from the same chunks and vectors:
    (the new LoadedIndex, what the conversion did or None). A no-op when it already is that backend there."""
    cls = backend_class(name)
    if loaded.backend.kind == cls.kind and loaded.backend.same_place(options):
        return loaded, None
    backend, changes, report = cls.from_vectors(loaded.chunks, loaded.backend.vectors(), loaded.manifest, options,
                                                exact_search_max, progress)
    return replace(loaded, backend=backend, manifest=dict(loaded.manifest, **changes)), report
