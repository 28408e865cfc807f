"""Retrieval ideas prototyped on top of the product's Retriever, to be measured before anything moves
into index/. Each wraps a Retriever and offers the same ``search(Query) -> SearchResult`` and
``chunk_position``; the no-answer verdict stays the first search's, so only the ranking is compared.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from index import Query, Retriever, SearchResult


class DenseFeedback:
    """Rocchio pseudo-relevance feedback on the dense side: after a first search, the question vector
    becomes q' = (q + beta · mean(v_1..v_m)) / ‖·‖ with v_i the vectors of the first ``m`` hits, and the
    search runs again with q' (the dense list and the best-sentence list move; BM25 does not)."""

    def __init__(self, retriever: Retriever, beta: float = 0.5, m: int = 3):
        dense = getattr(retriever.index.backend, "dense", None)
        if dense is None or dense.kind != "flat":
            raise ValueError("dense feedback needs an exact FAISS index (the vectors are read back from it)")
        self.retriever = retriever
        self.chunk_position = retriever.chunk_position
        self.vectors = dense.index.reconstruct_n(0, dense.size)
        self.beta, self.m = beta, m

    def search(self, query: Query) -> SearchResult:
        first = self.retriever.search(query)
        top = [self.chunk_position[h.chunk.id] for h in first.hits[:self.m]]
        if not top or not self.beta:
            return first
        q = self.retriever.encode(first.expanded_question)
        moved = q + self.beta * self.vectors[top].mean(axis=0)
        second = self.retriever.search(query, query_vector=(moved / np.linalg.norm(moved)).astype(np.float32))
        return replace(second, answerable=first.answerable, confidence=first.confidence, reasons=first.reasons,
                       features=first.features)


class NeighbourContext:
    """Section-neighbour smoothing: a chunk's fused score gains ``gamma`` times the better of its two
    neighbours' (the chunks before and after it in the same section), over the first ``depth`` hybrid hits;
    evidence that spans a chunk boundary, or a passage whose neighbour states the topic, moves up."""

    def __init__(self, retriever: Retriever, gamma: float = 0.3, depth: int = 50):
        self.retriever = retriever
        self.chunk_position = retriever.chunk_position
        self.gamma, self.depth = gamma, depth

    def search(self, query: Query) -> SearchResult:
        first = self.retriever.search(replace(query, k=max(self.depth, query.k)))
        chunks = self.retriever.index.chunks
        score = {self.chunk_position[h.chunk.id]: h.score for h in first.hits}

        def neighbour(i: int, j: int) -> float:
            ok = 0 <= j < len(chunks) and chunks[j].section_id == chunks[i].section_id and \
                chunks[j].document_id == chunks[i].document_id
            return score.get(j, 0.0) if ok else 0.0

        smoothed = {i: s + self.gamma * max(neighbour(i, i - 1), neighbour(i, i + 1)) for i, s in score.items()}
        by_position = {self.chunk_position[h.chunk.id]: h for h in first.hits}
        order = sorted(smoothed, key=lambda i: (-smoothed[i], i))[:query.k]
        return replace(first, hits=[replace(by_position[i], score=smoothed[i]) for i in order])


PROTOTYPES = {"dense-feedback": DenseFeedback, "neighbour": NeighbourContext}


def prototype_factory(spec: str):
    """``name[:key=value,...]`` (e.g. ``dense-feedback:beta=0.3,m=2``) -> a function Retriever -> searcher."""
    name, _, params = spec.partition(":")
    if name not in PROTOTYPES:
        raise ValueError(f"unknown prototype {name!r}; known: {', '.join(PROTOTYPES)}")
    kwargs = {}
    for part in filter(None, params.split(",")):
        key, _, value = part.partition("=")
        kwargs[key.strip()] = float(value) if "." in value else int(value)
    return lambda retriever: PROTOTYPES[name](retriever, **kwargs)
