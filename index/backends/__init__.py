"""Search backends: where a build's vectors and BM25 live. The store and the retriever use only this interface.

``base`` is the interface (:class:`SearchBackend`) and the records it trades in (:class:`ChunkFilter`,
:class:`Ranking`, :class:`BuildInput`); ``factory`` maps a backend name to its class; ``convert`` serves
one build from another backend; ``faiss`` keeps FAISS + bm25s files in the build folder; ``milvus/``
keeps a Milvus collection. Results are in chunk positions of the build's ``chunks.jsonl``.
"""
from index.backends.base import (BackendBuild, BackendUnavailable, BuildInput, ChunkFilter, Ranking,
                                 SearchBackend)
from index.backends.convert import convert
from index.backends.factory import backend_class, backend_options

__all__ = [
    "BackendBuild", "BackendUnavailable", "BuildInput", "ChunkFilter", "Ranking", "SearchBackend", "backend_class",
    "backend_options", "convert",
]
