"""Backend name -> backend class: the one place that knows which names exist.

A third backend is one module with a :class:`~index.backends.base.SearchBackend` subclass, one
:class:`settings.BackendName` member and one line in ``_MODULES`` below.
"""
from __future__ import annotations

import importlib
from index.backends.base import SearchBackend
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
