"""Fusion of ranked lists as pure functions (plain dicts and lists in and out, no index or model needed).

Weighted reciprocal rank fusion (Cormack, Clarke & Büttcher 2009, with per-list weights as in ranx's
``wrrf``): for a document d and ranked lists L_1..L_n with weights w_1..w_n,

    score(d) = Σ_i  w_i / (k + rank_i(d))        (the sum over the lists that contain d; rank from 1)

A list a document is absent from adds nothing. ``k`` (60 in the paper) damps the head of each list, so
one list's first place does not outweigh agreement further down the others.

Convex combination of min-max normalised scores (Bruch, Gai & Ingber 2023, "An Analysis of Fusion
Functions for Hybrid Retrieval", who find it ahead of RRF once its weights are fitted): for lists with
scores s_i over their candidates C_i,

    score(d) = Σ_i  w_i · (s_i(d) − min_{C_i} s_i) / (max_{C_i} s_i − min_{C_i} s_i)

A document absent from list i scores that list's minimum there (0 after normalising); a list whose
candidates all score alike gives each of them 1. Unlike RRF it keeps how far apart the scores are, so a
clear first place in one list counts for more than a near tie.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

RRF_K = 60  # the paper's constant; the product's comes from settings.rrf_k
RRF = "rrf"
CONVEX = "convex"
METHODS = (RRF, CONVEX)


@dataclass(frozen=True)
class FusionWeights:
    dense: float = 1.0
    bm25: float = 1.0
    rrf_k: int = RRF_K
    sentence: float = 0.0  # the candidates re-ranked by their best sentence's cosine (0 = off)
    method: str = RRF  # RRF (``rrf_k`` applies) or CONVEX (the weights scale normalised scores)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown fusion method {self.method!r}; use one of {', '.join(METHODS)}")

    @classmethod
    def from_settings(cls, settings) -> "FusionWeights":
        """The ranking fusion a settings object describes."""
        return cls(settings.weight_dense, settings.weight_bm25, settings.rrf_k, settings.weight_sentence,
                   str(settings.fusion))

    def top_score(self) -> float:
        """The fused score of an id first in every list."""
        total = self.dense + self.bm25 + self.sentence
        return total if self.method == CONVEX else total / (self.rrf_k + 1)


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


def min_max(scores: Mapping[int, float]) -> dict[int, float]:
    """``scores`` mapped onto [0, 1] over their own range; all alike -> 1 each."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {doc: (s - low) / span if span > 0 else 1.0 for doc, s in scores.items()}


def convex_combination(scores: Sequence[Mapping[int, float]], weights: Sequence[float]) -> dict[int, float]:
    """Fused scores of every id in any of ``scores`` (each ``{id: score}``, higher better), by the convex
    combination above; lists summed in the order given (an id absent from a list adds nothing there)."""
    if len(scores) != len(weights):
        raise ValueError(f"{len(scores)} score lists but {len(weights)} weights")
    fused: dict[int, float] = {}
    for listed, weight in zip(scores, weights):
        for doc, normalised in min_max(listed).items():
            fused[doc] = fused.get(doc, 0.0) + weight * normalised
    return fused


def fused_order(scores: Mapping[int, float]) -> list[int]:
    """Ids by fused score, best first; ties go to the smaller id (the earlier chunk), so the order is stable."""
    return sorted(scores, key=lambda doc: (-scores[doc], doc))
