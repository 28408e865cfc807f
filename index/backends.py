"""Search backends: where the vectors and the BM25 index live. The retriever talks only to this interface.

``faiss`` (the default) keeps both in files of the build folder; ``milvus``
(see :mod:`index.milvus`) keeps them in a Milvus collection. Both return the
same :class:`Ranking`, in chunk positions of the build's ``chunks.jsonl``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from index.dense import DenseIndex
from index.lexical import LexicalIndex


@dataclass(frozen=True)
class ChunkFilter:
    """Restrict results to a part/section (and its subsections) and/or a document."""

    section: str | None = None
    document: str | None = None
    allowed: np.ndarray | None = None  # the same restriction as chunk positions (None = everything)

    @property
    def active(self) -> bool:
        return self.allowed is not None


@dataclass(frozen=True)
class Ranking:
    dense: dict[int, tuple[int, float]]  # chunk position -> (rank from 1, cosine)
    bm25: dict[int, tuple[int, float]]  # chunk position -> (rank from 1, BM25 score)
    bm25_scores: np.ndarray | None = None  # every chunk's BM25 score, where the backend has them
    fused: list[int] | None = None  # engine-side hybrid order, where the backend fuses itself


class SearchBackend(Protocol):
    kind: str

    @property
    def size(self) -> int: ...

    def rank(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int,
             hybrid: bool = False) -> Ranking: ...

    def dense_score(self, position: int, query_vector: np.ndarray) -> float | None: ...

    def known_terms(self, question: str) -> tuple[int, int]: ...


class FaissBackend:
    """Dense FAISS index and bm25s index, both loaded from the build folder."""

    kind = "faiss"

    def __init__(self, dense: DenseIndex, lexical: LexicalIndex):
        self.dense = dense
        self.lexical = lexical

    @property
    def size(self) -> int:
        return self.dense.size

    def rank(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int,
             hybrid: bool = False) -> Ranking:
        allowed = where.allowed
        dense: dict[int, tuple[int, float]] = {}
        if allowed is None or len(allowed):
            scores, ids = self.dense.search(query_vector, depth, allowed)
            dense = {int(i): (r, float(s)) for r, (s, i) in enumerate(zip(scores, ids), 1)}
        bm25_all = self.lexical.scores(question)
        candidates = bm25_all
        if allowed is not None:
            candidates = np.full_like(bm25_all, -1.0)
            candidates[allowed] = bm25_all[allowed]
        if len(candidates) > depth:
            top = np.argpartition(-candidates, depth - 1)[:depth]
        else:
            top = np.arange(len(candidates))
        top = top[np.argsort(-candidates[top], kind="stable")]
        bm25 = {int(i): (r, float(bm25_all[i])) for r, i in enumerate(top, 1) if candidates[i] > 0}
        return Ranking(dense, bm25, bm25_all)

    def dense_score(self, position: int, query_vector: np.ndarray) -> float | None:
        if self.dense.kind != "flat":
            return None
        return float(self.dense.index.reconstruct(position) @ query_vector)

    def known_terms(self, question: str) -> tuple[int, int]:
        """(terms the index knows, all terms) after normalisation and typo correction."""
        from index.lexical import normalise

        terms = normalise(question)
        return sum(1 for t in terms if self.lexical.query_terms(t)), len(terms)
