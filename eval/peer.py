"""The peer recipe every number is compared with: each paragraph a unit, all-MiniLM-L6-v2 + bm25s, RRF.

What the common retrieval tutorial does, nothing more: one unit per paragraph (no section context),
vectors from the same bundled model at full precision for passages and questions (the project's
embedder), exact inner product in numpy, ``bm25s`` with its defaults (lowercase, its English stop list,
no stemmer, Lucene BM25 k1=1.5 b=0.75), and reciprocal-rank fusion with equal weights:
score(u) = Σ_lists 1 / (k + rank_list(u)), k = 60, over each list's top ``depth`` units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

PEER_RRF_K = 60
PEER_DEPTH = 100  # units each list contributes to fusion


@dataclass
class PeerIndex:
    units: list[tuple[str, int]]  # (document id, paragraph index) per row
    vectors: np.ndarray  # row-aligned, unit length
    bm25: object  # bm25s.BM25 over the same rows
    rows_of: dict[str, np.ndarray]  # document id -> its rows


def build_peer_index(documents: Sequence[tuple[str, Sequence[str]]], embedder, batch_size: int = 32,
                     progress: Callable[[str, int, int], None] | None = None) -> PeerIndex:
    """Index every paragraph of ``documents`` ((document id, paragraphs) pairs) as one unit."""
    import bm25s

    units = [(doc, j) for doc, paragraphs in documents for j in range(len(paragraphs))]
    texts = [p for _, paragraphs in documents for p in paragraphs]
    vectors = embedder.encode(texts, batch_size, (lambda d, n: progress("peer: embed paragraphs", d, n))
                              if progress else None)
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
    owners = np.array([u[0] for u in units], dtype=object)
    rows_of = {doc: np.flatnonzero(owners == doc) for doc, _ in documents}
    return PeerIndex(units, vectors, bm25, rows_of)


def rrf(ranked_lists: Sequence[Sequence[int]], k: int = PEER_RRF_K) -> list[int]:
    """Equal-weight reciprocal-rank fusion: Σ 1/(k + rank), rank from 1; ties keep the smaller id first."""
    score: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, unit in enumerate(ranked, 1):
            score[unit] = score.get(unit, 0.0) + 1.0 / (k + rank)
    return sorted(score, key=lambda u: (-score[u], u))


def peer_search(index: PeerIndex, question: str, question_vector: np.ndarray, document: str | None = None,
                k: int = 10, depth: int = PEER_DEPTH) -> list[int]:
    """The top ``k`` rows for a question, restricted to ``document`` when given."""
    import bm25s

    rows = index.rows_of.get(document, np.zeros(0, dtype=np.int64)) if document is not None else \
        np.arange(len(index.units))
    if not len(rows):
        return []
    dense = index.vectors[rows] @ question_vector
    dense_ranked = rows[np.argsort(-dense, kind="stable")[:depth]].tolist()
    tokens = bm25s.tokenize([question], return_ids=False, show_progress=False)[0]
    lexical = index.bm25.get_scores(tokens)[rows] if tokens else np.zeros(len(rows))
    order = np.argsort(-lexical, kind="stable")[:depth]
    bm25_ranked = [int(rows[i]) for i in order if lexical[i] > 0]
    return rrf([dense_ranked, bm25_ranked])[:k]
