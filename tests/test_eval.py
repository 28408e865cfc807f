"""The eval set is valid, the metrics agree with pytrec_eval, and retrieval does not fall below the baseline."""
import json
from collections import Counter

import pytest

from eval.harness import (
    BASELINE, check_baseline, evaluate_mode, load_questions, naive_baseline, run_report, validate_questions,
)
from eval.metrics import METRICS, dedupe, ndcg_at, score_run
from settings import RetrievalMode


@pytest.fixture(scope="module")
def questions():
    return load_questions()


@pytest.fixture(scope="module")
def reports(retriever, questions):
    reports, _ = run_report(retriever, questions, list(RetrievalMode), with_baseline=True)
    return {r.mode: r for r in reports}


def test_eval_set_is_valid_and_mixed(questions, retriever):
    assert len(questions) >= 80
    assert validate_questions(questions, retriever.index) == []
    types = Counter(q.type for q in questions)
    for t in ("fact", "paraphrase", "concept", "acronym", "multi", "unanswerable"):
        assert types[t] >= 5, t
    assert all(len(q.sections) >= 2 for q in questions if q.type == "multi")
    covered = {s for q in questions for s in q.sections}
    assert covered == {s.id for s in retriever.index.sections}


def test_validation_catches_a_wrong_evidence(questions, retriever):
    from dataclasses import replace

    broken = [replace(questions[0], evidence="words that are nowhere in this report at all")]
    assert validate_questions(broken, retriever.index)


def test_metrics_agree_with_pytrec_eval(retriever, questions):
    import pytrec_eval

    answerable = [q for q in questions if q.answerable]
    for mode in RetrievalMode:
        report, details = evaluate_mode(retriever, answerable, mode)
        run = {qid: d["ranked"] for qid, d in details.items()}
        ours = score_run(run, {q.id: set(q.sections) for q in answerable})
        qrels = {q.id: {s: 1 for s in q.sections} for q in answerable}
        trec_run = {qid: {s: float(100 - i) for i, s in enumerate(dedupe(r)[:10])} for qid, r in run.items()}
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recip_rank", "recall.5", "success.1,5"})
        theirs = evaluator.evaluate(trec_run)
        mean = lambda key: sum(v[key] for v in theirs.values()) / len(theirs)  # noqa: E731
        assert ours["ndcg@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-9)
        assert ours["mrr@10"] == pytest.approx(mean("recip_rank"), abs=1e-9)
        assert ours["recall@5"] == pytest.approx(mean("recall_5"), abs=1e-9)
        assert ours["hit@1"] == pytest.approx(mean("success_1"), abs=1e-9)
        assert ours["hit@5"] == pytest.approx(mean("success_5"), abs=1e-9)
        assert report.metrics["ndcg@10"] == pytest.approx(ours["ndcg@10"])


def test_ndcg_ideal_comes_from_relevant_ids():
    # Two relevant ids, only one retrieved at rank 1: IDCG counts both, so nDCG < 1.
    assert ndcg_at(["a", "x"], {"a", "b"}, 10) == pytest.approx(1 / (1 + 1 / 1.5849625007211563))
    assert METRICS["hit@1"](["x", "a"], {"a"}) == 0.0


def test_no_metric_below_the_committed_baseline(reports):
    baseline = json.loads(BASELINE.read_text())
    assert check_baseline(list(reports.values()), baseline) == []


def test_hybrid_beats_the_naive_baseline(reports):
    hybrid, naive = reports["hybrid"].metrics, reports["naive-baseline"].metrics
    assert hybrid["hit@1"] > naive["hit@1"] and hybrid["mrr@10"] > naive["mrr@10"]
