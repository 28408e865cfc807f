"""Index: embed chunks, keep vectors and BM25 in a search backend, written atomically with a manifest;
retrieval on top.

Entry points: :func:`build_index` (ingest result → a new build on disk), :func:`load_current_index`
and :func:`open_retriever` (the current build → a :class:`Retriever`; ``Retriever.close()`` releases
it), :func:`load_embedder`. Inside: ``store`` (build folders, manifest, CURRENT), ``backends/``
(FAISS, Milvus), ``embed/`` (the model and its engines), ``analysis`` (one query analyzer),
``fusion`` (rank fusion), ``retriever``, ``answerability``, ``files`` (atomic writes, checksums).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from index.answerability import DEFAULT_ANSWERABILITY
from index.backends import backend_options
from index.catalog import DocumentRecord, LibraryError, UnknownDocument
from index.embed import Embedder, ModelUnavailable, configure_runtime, model_fingerprint
from index.retriever import (
    MODES, AnswerabilityModel, FusionWeights, Hit, Query, Retriever, SearchResult, UnknownSection,
)
from index.question_map import QuestionMap, QuestionMapError, load_question_map
from index.store import BuildSettings, IndexUnavailable, LoadedIndex, load_index, read_manifest, stale_reasons, write_index
from ingest import IngestResult

__all__ = [
    "MODES", "AnswerabilityModel", "BuildSettings", "Embedder", "FusionWeights", "Hit", "IndexUnavailable",
    "LoadedIndex", "ModelUnavailable", "Query", "Retriever", "SearchResult", "UnknownSection", "build_index",
    "configure_runtime", "load_answerability", "load_current_index", "load_embedder", "open_retriever",
    "question_map_for", "QuestionMap", "QuestionMapError", "read_manifest", "stale_reasons", "DocumentRecord", "LibraryError", "UnknownDocument",
]


def load_embedder(settings, ingest: bool = False) -> Embedder:
    """The embedder for questions (``encoder_backend``) or, with ``ingest``, for building (``ingest_encoder_backend``)."""
    backend = settings.ingest_encoder_backend if ingest else settings.encoder_backend
    threads = settings.encoder_threads if ingest else settings.question_threads
    return Embedder(settings.resolved_model_path, threads, backend, settings.cache_dir)


def build_index(settings, result: IngestResult, embedder: Embedder,
                progress: Callable[[str, int, int], None] | None = None) -> tuple[Path, dict]:
    return write_index(
        Path(settings.index_dir), result, embedder, BuildSettings.from_settings(settings),
        settings.embed_batch_size, settings.exact_search_max, progress,
        backend=settings.backend, options=backend_options(settings.backend, settings),
    )


def load_current_index(settings, verify: bool = True, mmap: bool = False) -> LoadedIndex:
    """The current build, refused (IndexUnavailable) if built with another model or settings.
    Checked before any model is loaded, so a bad index fails in a fraction of a second."""
    import faiss

    if settings.faiss_threads:
        faiss.omp_set_num_threads(settings.faiss_threads)
    return load_index(Path(settings.index_dir), model_fingerprint(settings.resolved_model_path),
                      BuildSettings.from_settings(settings), verify=verify, mmap=mmap,
                      options_for=lambda name: backend_options(name, settings, for_loading=True, mmap=mmap))


def open_retriever(settings, embedder: Embedder, loaded: LoadedIndex | None = None) -> Retriever:
    """A retriever over ``loaded`` (default: the current build)."""
    loaded = loaded or load_current_index(settings)
    return Retriever(loaded, embedder, FusionWeights.from_settings(settings), settings.candidates, load_answerability(),
                     settings.sentence_float32_max_mb,
                     question_map_for(settings, getattr(embedder, "fingerprint", None)))


BUNDLED_QUESTION_MAP = Path(__file__).with_name("question_map.npz")


def question_map_for(settings, fingerprint: str | None = None) -> QuestionMap | None:
    """The settings' question map, or None. ``bundled``: the map shipped beside this module when it was fitted
    for the model in use (another ``model_path`` searches with its own vectors); a path: that file, refused with
    QuestionMapError when it cannot be used with the model. ``fingerprint``: the model's, when the caller holds
    it (an Embedder caches it; computing it hashes the weights)."""
    if not settings.question_map:
        return None
    fingerprint = fingerprint or model_fingerprint(settings.resolved_model_path)
    if settings.question_map == "bundled":
        if not BUNDLED_QUESTION_MAP.is_file():
            return None
        shipped = load_question_map(BUNDLED_QUESTION_MAP, None)
        return shipped if shipped.fingerprint == fingerprint else None
    return load_question_map(Path(settings.question_map), fingerprint)


def load_answerability() -> AnswerabilityModel:
    """Coefficients fitted on the eval set (``reportqa eval --calibrate``), shipped beside this module."""
    path = Path(__file__).with_name("answerability.json")
    if not path.is_file():
        return DEFAULT_ANSWERABILITY
    data = json.loads(path.read_text())
    fusion = FusionWeights(**data["fusion"]) if data.get("fusion") else None
    return AnswerabilityModel(data["weights"], data["bias"], data.get("threshold", 0.5), fusion)
