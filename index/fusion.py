"""Rank fusion as pure functions (plain dicts and lists in and out, no index or model needed).

Weighted reciprocal rank fusion (Cormack, Clarke & Büttcher 2009, with per-list weights as in ranx's
``wrrf``): for a document d and ranked lists L_1..L_n with weights w_1..w_n,

    score(d) = Σ_i  w_i / (k + rank_i(d))        (the sum over the lists that contain d; rank from 1)

A list a document is absent from adds nothing. ``k`` (60 in the paper) damps the head of each list, so
one list's first place does not outweigh agreement further down the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

RRF_K = 60  # the paper's constant; the product's comes from settings.rrf_k


@dataclass(frozen=True)
class FusionWeights:
    dense: float = 1.0
    bm25: float = 1.0
    rrf_k: int = RRF_K
    sentence: float = 0.0  # the candidates re-ranked by their best sentence's cosine (0 = off)

    def top_score(self) -> float:
        """The fused score of an id first in every list."""
        return (self.dense + self.bm25 + self.sentence) / (self.rrf_k + 1)


def ranks_of(ranking: Sequence[int]) -> dict[int, int]:
    """``{id: rank from 1}`` of a list of ids, best first."""
    return {doc: rank for rank, doc in enumerate(ranking, 1)}


def weighted_rrf(rankings: Sequence[Mapping[int, int]], weights: Sequence[float], k: int = RRF_K
                 ) -> dict[int, float]:
    """Fused scores of every id in any of ``rankings`` (each ``{id: rank from 1}``), by the formula above.

    The lists are summed in the order given, so equal inputs give bit-identical scores."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    fused: dict[int, float] = {}
    for ranks, weight in zip(rankings, weights):
        for doc, rank in ranks.items():
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


def fused_order(scores: Mapping[int, float]) -> list[int]:
    """Ids by fused score, best first; ties go to the smaller id (the earlier chunk), so the order is stable."""
    return sorted(scores, key=lambda doc: (-scores[doc], doc))
