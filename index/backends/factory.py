"""Backend name -> backend class: the one place that knows which names exist.

A third backend is one module with a :class:`~index.backends.base.SearchBackend` subclass, one
:class:`settings.BackendName` member and one line in ``_MODULES`` below.
"""
from __future__ import annotations

import importlib
from dataclasses import replace

from index.backends.base import Progress, SearchBackend
from settings import BackendName

# Imported on first use: a FAISS-only process never imports the Milvus code (nor pymilvus).
_MODULES: dict[BackendName, tuple[str, str]] = {
    BackendName.FAISS: ("index.backends.faiss", "FaissBackend"),
    BackendName.MILVUS: ("index.backends.milvus", "MilvusBackend"),
}


def backend_class(name: str) -> type[SearchBackend]:
    """The backend class called ``name`` (``faiss``, ``milvus``); ValueError for any other name."""
    try:
        module, attribute = _MODULES[BackendName(name)]
    except ValueError:
        raise ValueError(f"unknown backend {name!r}; use {' or '.join(BackendName)}") from None
    return getattr(importlib.import_module(module), attribute)


def backend_options(name: str, settings, for_loading: bool = False, mmap: bool = False) -> object:
    """The named backend's options from the settings (``for_loading``: for opening a finished build)."""
    return backend_class(name).options(settings, for_loading=for_loading, mmap=mmap)


def convert(loaded, name: str, options, exact_search_max: int, progress: Progress | None = None):
    """``loaded`` (a build on any backend) served by backend ``name`` from the same chunks and vectors:
    (the new LoadedIndex, what the conversion did or None). A no-op when it already is that backend there."""
    cls = backend_class(name)
    if loaded.backend.kind == cls.kind and loaded.backend.same_place(options):
        return loaded, None
    backend, changes, report = cls.from_vectors(loaded.chunks, loaded.backend.vectors(), loaded.manifest, options,
                                                exact_search_max, progress)
    return replace(loaded, backend=backend, manifest=dict(loaded.manifest, **changes)), report
