"""Ranking metrics as pure functions over one question's ranked ids and its relevant ids.

Binary relevance throughout (every qrel in our eval set and in BEIR SciFact has grade 1).
"""
from __future__ import annotations

import math


def dedupe(ranked: list[str]) -> list[str]:
    """Keep each id's first occurrence: chunks mapped to sections collapse to one entry per section."""
    seen: set[str] = set()
    return [x for x in ranked if not (x in seen or seen.add(x))]


def hit_at(ranked: list[str], relevant: set[str], k: int) -> float:
    """1 if any relevant id is in the top k, else 0."""
    return float(any(x in relevant for x in ranked[:k]))


def recall_at(ranked: list[str], relevant: set[str], k: int) -> float:
    """|relevant ∩ top k| / |relevant|."""
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], relevant: set[str], k: int) -> float:
    """1 / rank of the first relevant id within the top k (0 if none)."""
    for rank, x in enumerate(ranked[:k], 1):
        if x in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: list[str], relevant: set[str], k: int) -> float:
    """DCG@k / IDCG@k with DCG = Σ rel_i / log2(i + 1).

    The ideal ranking is built from the *relevant* ids (min(|relevant|, k) ones at the top),
    not from what was retrieved."""
    dcg = sum(1.0 / math.log2(i + 1) for i, x in enumerate(ranked[:k], 1) if x in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def first_relevant_rank(ranked: list[str], relevant: set[str]) -> int | None:
    return next((rank for rank, x in enumerate(ranked, 1) if x in relevant), None)


METRICS = {
    "hit@1": lambda r, rel: hit_at(r, rel, 1),
    "hit@5": lambda r, rel: hit_at(r, rel, 5),
    "recall@5": lambda r, rel: recall_at(r, rel, 5),
    "mrr@10": lambda r, rel: mrr_at(r, rel, 10),
    "ndcg@10": lambda r, rel: ndcg_at(r, rel, 10),
}


def score_run(run: dict[str, list[str]], qrels: dict[str, set[str]]) -> dict[str, float]:
    """Mean of every metric over the questions in ``qrels`` (a question missing from the run scores 0)."""
    if not qrels:
        return {name: 0.0 for name in METRICS}
    totals = {name: 0.0 for name in METRICS}
    for qid, relevant in qrels.items():
        ranked = dedupe(run.get(qid, []))
        for name, fn in METRICS.items():
            totals[name] += fn(ranked, relevant)
    return {name: total / len(qrels) for name, total in totals.items()}
