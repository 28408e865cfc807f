"""The search-backend interface: what the store and the retriever need from wherever vectors and BM25 live.

A backend is built into a build folder (``write``, then ``publish`` for anything outside the folder,
just before the build is switched in), opened from it (``open``), checked (``verify``), searched (dense,
lexical, and fused where the engine fuses itself), read back (``vectors``, to serve one build from
another backend) and closed. Results are in chunk positions of the build's ``chunks.jsonl``, so the
retriever does not know which backend it talks to.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from index.analysis import normalise
from ingest import Chunk

# HNSW graph parameters, the same for FAISS's and Milvus's HNSW indexes (used above ``exact_search_max``).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96

Progress = Callable[[str, int, int], None]
Ranks = dict[int, tuple[int, float]]  # chunk position -> (rank from 1, score)


class BackendUnavailable(RuntimeError):
    """The backend cannot be built, reached or used; the message says why and what to do."""


@dataclass(frozen=True)
class ChunkFilter:
    """Restrict results to a part/section (and its subsections) and/or a document, or to some documents
    (the library's current editions, when older editions are kept)."""

    section: str | None = None
    document: str | None = None
    allowed: np.ndarray | None = None  # the same restriction as chunk positions (None = everything)
    documents: tuple[str, ...] | None = None  # only these document ids (None = any)

    @property
    def active(self) -> bool:
        return self.allowed is not None


@dataclass(frozen=True)
class Ranking:
    dense: Ranks  # chunk position -> (rank from 1, cosine)
    bm25: Ranks  # chunk position -> (rank from 1, BM25 score)
    bm25_scores: np.ndarray | None = None  # every chunk's BM25 score, where the backend has them
    fused: list[int] | None = None  # engine-side hybrid order, where the backend fuses itself


@dataclass(frozen=True)
class BuildInput:
    """What a backend indexes: the build's chunks, their embedded texts and vectors, and how."""

    index_dir: Path
    chunks: list[Chunk]
    texts: list[str]  # each chunk's embedded text (BM25 indexes exactly this)
    vectors: np.ndarray  # (chunks, dimension), L2-normalised
    model_fingerprint: str
    bm25_k1: float
    bm25_b: float
    exact_search_max: int  # above this many vectors: HNSW instead of exact search
    progress: Progress | None = None

    @cached_property
    def terms(self) -> list[list[str]]:
        """Each text's BM25 terms (:func:`index.analysis.normalise`), analysed once for all build steps."""
        return [normalise(t) for t in self.texts]


@dataclass
class BackendBuild:
    """A backend's part of the manifest: ``identity`` (backend name, where it lives), ``dense``, ``bm25``."""

    identity: dict
    dense: dict
    bm25: dict
    timings: dict[str, float] = field(default_factory=dict)


class SearchBackend(ABC):
    """One place vectors and BM25 live. Subclasses: :class:`index.backends.faiss.FaissBackend`,
    :class:`index.backends.milvus.MilvusBackend`; :mod:`index.backends.factory` picks one by name."""

    kind: ClassVar[str]

    # ------------------------------------------------------------------ configuration, building, opening
    @classmethod
    @abstractmethod
    def options(cls, settings, for_loading: bool = False, mmap: bool = False) -> object:
        """This backend's connection/loading options taken from the settings object."""

    @classmethod
    @abstractmethod
    def write(cls, work: Path, data: BuildInput, options) -> BackendBuild:
        """Write this backend's files into the unfinished build folder ``work``."""

    @classmethod
    def publish(cls, data: BuildInput, options, built: BackendBuild) -> BackendBuild:
        """Make anything outside the build folder hold the build (called last, before the switch)."""
        return built

    @classmethod
    @abstractmethod
    def open(cls, build_dir: Path, index_dir: Path, manifest: dict, chunks: list[Chunk], options=None,
             mmap: bool = False) -> "SearchBackend":
        """The backend of a finished build."""

    @classmethod
    @abstractmethod
    def from_vectors(cls, chunks: list[Chunk], vectors: np.ndarray, manifest: dict, options,
                     exact_search_max: int, progress: Progress | None = None) -> tuple["SearchBackend", dict, object]:
        """This backend over another backend's build: (backend, manifest changes, what was done)."""

    def same_place(self, options) -> bool:
        """Whether this backend already is what ``options`` describe (converting to it would be a no-op)."""
        return False

    @abstractmethod
    def verify(self, manifest: dict, chunk_count: int, deep: bool = True) -> None:
        """Raise BackendUnavailable if this backend does not hold the build (``deep``: also remote checks)."""

    # ------------------------------------------------------------------ search
    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def search_dense(self, query_vector: np.ndarray, where: ChunkFilter, depth: int) -> Ranks: ...

    @abstractmethod
    def search_lexical(self, question: str, where: ChunkFilter, depth: int) -> tuple[Ranks, np.ndarray | None]:
        """(BM25 ranks, every chunk's BM25 score where the backend has them, else None)."""

    def search_fused(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int
                     ) -> list[int] | None:
        """The engine's own hybrid order; None where the engine does not fuse (the retriever does)."""
        return None

    def rank(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int,
             hybrid: bool = False) -> Ranking:
        """Dense, lexical and (``hybrid``) engine-fused results of one question."""
        if where.allowed is not None and not len(where.allowed):
            dense: Ranks = {}
        else:
            dense = self.search_dense(query_vector, where, depth)
        bm25, scores = self.search_lexical(question, where, depth)
        fused = self.search_fused(question, query_vector, where, depth) if hybrid else None
        return Ranking(dense, bm25, scores, fused)

    @abstractmethod
    def dense_score(self, position: int, query_vector: np.ndarray) -> float | None:
        """The chunk's cosine with the question, for hits the dense list did not rank (None: not available)."""

    @abstractmethod
    def known_terms(self, question: str) -> tuple[int, int]:
        """(terms the index knows, all terms) after normalisation and typo correction."""

    @abstractmethod
    def vectors(self) -> np.ndarray:
        """Every chunk's vector, in build order."""

    @property
    def exact_vectors(self) -> bool:
        """Whether :meth:`vectors` gives the vectors exactly as they were indexed (not dequantised ones)."""
        return True

    def close(self) -> None:
        """Release connections and threads (idempotent)."""
