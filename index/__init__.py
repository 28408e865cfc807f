"""Index: embed chunks into FAISS, BM25 beside it, written atomically with a manifest; retrieval on top.

Entry points: :func:`build_index` (ingest result → a new build on disk) and
:func:`open_retriever` (the current build → a :class:`Retriever`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from index.embedder import Embedder, ModelUnavailable
from index.retriever import (
    MODES, AnswerabilityModel, FusionWeights, Hit, Query, Retriever, SearchResult, UnknownSection,
)
from index.store import BuildSettings, IndexUnavailable, LoadedIndex, load_index, read_manifest, stale_reasons, write_index
from ingest import IngestResult

__all__ = [
    "MODES", "AnswerabilityModel", "BuildSettings", "Embedder", "FusionWeights", "Hit", "IndexUnavailable",
    "LoadedIndex", "ModelUnavailable", "Query", "Retriever", "SearchResult", "UnknownSection", "build_index",
    "load_current_index", "load_embedder", "milvus_target", "open_retriever", "read_manifest", "stale_reasons",
]


def load_embedder(settings, ingest: bool = False) -> Embedder:
    """The embedder for questions (``encoder_backend``) or, with ``ingest``, for building (``ingest_encoder_backend``)."""
    backend = settings.ingest_encoder_backend if ingest else settings.encoder_backend
    return Embedder(settings.resolved_model_path, settings.encoder_threads, backend, settings.cache_dir)


def build_index(settings, result: IngestResult, embedder: Embedder,
                progress: Callable[[str, int, int], None] | None = None) -> tuple[Path, dict]:
    return write_index(
        Path(settings.index_dir), result, embedder, BuildSettings.from_settings(settings),
        settings.embed_batch_size, settings.exact_search_max, progress,
        milvus=milvus_target(settings) if settings.backend == "milvus" else None,
    )


def milvus_target(settings, for_loading: bool = False):
    """The Milvus collection the settings name (``for_loading``: an unset URI means "the one the build recorded")."""
    from dataclasses import replace

    from index.milvus import MilvusTarget

    target = MilvusTarget.from_settings(settings)
    return replace(target, uri="") if for_loading and not settings.milvus_uri else target


def load_current_index(settings, verify: bool = True, mmap: bool = False) -> LoadedIndex:
    """The current build, refused (IndexUnavailable) if built with another model or settings.
    Checked before any model is loaded, so a bad index fails in a fraction of a second."""
    import faiss

    from index.embedder import model_fingerprint

    if settings.faiss_threads:
        faiss.omp_set_num_threads(settings.faiss_threads)
    return load_index(Path(settings.index_dir), model_fingerprint(settings.resolved_model_path),
                      BuildSettings.from_settings(settings), verify=verify, mmap=mmap,
                      milvus=milvus_target(settings, for_loading=True))


def open_retriever(settings, embedder: Embedder, loaded: LoadedIndex | None = None) -> Retriever:
    """A retriever over ``loaded`` (default: the current build)."""
    loaded = loaded or load_current_index(settings)
    weights = FusionWeights(settings.weight_dense, settings.weight_bm25, settings.rrf_k, settings.weight_sentence)
    return Retriever(loaded, embedder, weights, settings.candidates, load_answerability())


def load_answerability() -> AnswerabilityModel:
    """Coefficients fitted on the eval set (``reportqa eval --calibrate``), shipped beside this module."""
    import json

    path = Path(__file__).with_name("answerability.json")
    if not path.is_file():
        from index.answerability import DEFAULT_ANSWERABILITY

        return DEFAULT_ANSWERABILITY
    data = json.loads(path.read_text())
    return AnswerabilityModel(data["weights"], data["bias"], data.get("threshold", 0.5))
