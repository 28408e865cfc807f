"""Evidence-level ranking metrics: a ranked passage is relevant when it covers a gold evidence unit.

A question has one evidence set per annotator (QASPER: the paragraphs each annotator marked). Every
ranked passage is described by the gold units it covers (``covers[i]``: the ids of the gold paragraphs
that passage ``i`` overlaps, an empty set when it overlaps none). ReportQA's chunks and the peer's
paragraphs are scored by the same functions, so the two are comparable:

* relevant set ``R`` = the union of the annotators' evidence sets;
* ``hit@k`` = 1 if some passage in the top k covers a unit of ``R``;
* ``mrr@k`` = 1 / rank of the first such passage (0 beyond k);
* ``recall@k`` = max over annotators a of |E_a ∩ ∪ covers[:k]| / |E_a| (the best-matching annotator, as
  QASPER's evidence F1 takes the best annotator);
* ``ndcg@k`` = DCG@k / IDCG@k, binary gains, DCG = Σ_i g_i / log2(i + 1) where g_i = 1 when passage i
  covers a unit of ``R`` that no higher passage covered (a second passage on the same paragraph adds
  nothing, as chunks of one section count once in the report eval); IDCG = Σ_{i=1}^{min(|R|, k)}
  1 / log2(i + 1), from the relevant set, not from what was retrieved.
"""
from __future__ import annotations

import math
from typing import Sequence

Covers = Sequence[frozenset]


def first_covering_rank(covers: Covers, relevant: frozenset) -> int | None:
    """Rank (from 1) of the first passage covering a relevant unit, None when none does."""
    return next((rank for rank, c in enumerate(covers, 1) if c & relevant), None)


def hit_at(covers: Covers, relevant: frozenset, k: int) -> float:
    return float(any(c & relevant for c in covers[:k]))


def mrr_at(covers: Covers, relevant: frozenset, k: int) -> float:
    rank = first_covering_rank(covers[:k], relevant)
    return 1.0 / rank if rank else 0.0


def recall_at(covers: Covers, annotators: Sequence[frozenset], k: int) -> float:
    """Best annotator's share of evidence units covered by the top k (annotators without units skipped)."""
    found = frozenset().union(*covers[:k]) if covers[:k] else frozenset()
    shares = [len(e & found) / len(e) for e in annotators if e]
    return max(shares, default=0.0)


def ndcg_at(covers: Covers, relevant: frozenset, k: int) -> float:
    seen: set = set()
    dcg = 0.0
    for i, c in enumerate(covers[:k], 1):
        new = (c & relevant) - seen
        if new:
            dcg += 1.0 / math.log2(i + 1)
            seen |= new
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


METRIC_NAMES = ("hit@1", "hit@5", "recall@5", "mrr@10", "ndcg@10")


def question_metrics(covers: Covers, annotators: Sequence[frozenset]) -> dict[str, float]:
    """Every metric of one question."""
    relevant = frozenset().union(*annotators) if annotators else frozenset()
    return {
        "hit@1": hit_at(covers, relevant, 1),
        "hit@5": hit_at(covers, relevant, 5),
        "recall@5": recall_at(covers, annotators, 5),
        "mrr@10": mrr_at(covers, relevant, 10),
        "ndcg@10": ndcg_at(covers, relevant, 10),
    }


def mean_metrics(per_question: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric; ``n`` is the number of questions averaged."""
    if not per_question:
        return {name: 0.0 for name in METRIC_NAMES} | {"n": 0}
    return {name: sum(q[name] for q in per_question) / len(per_question) for name in METRIC_NAMES} | {
        "n": len(per_question)}
