"""The no-answer model's fit (eval/answerability_fit.py) and the list-shape features, on synthetic rows."""
from __future__ import annotations

import json

import numpy as np

from eval.answerability_fit import (Row, choose_and_fit, fit_logistic, in_choosing_part, pick_threshold, rates,
                                    read_rows, write_rows)
from index.answerability import FEATURE_SIGNS, AnswerabilityModel, missing_share, shape_features


def synthetic_rows(n_papers=60, seed=0):
    """Answerable questions have a higher, more stand-out top cosine; a noise feature carries nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_papers):
        for k in range(5):
            answerable = rng.random() > 0.2
            top = rng.normal(0.6 if answerable else 0.45, 0.08)
            rows.append(Row(f"q{p}-{k}", f"paper{p}", "qasper", bool(answerable),
                            {"top_dense": top, "best_sentence": top + rng.normal(0.05, 0.03),
                             "dense_margin": rng.normal(0.2 if answerable else 0.1, 0.05),
                             "missing_in_top": rng.random(), "agreement": rng.random()}))
    for k in range(40):
        answerable = k % 5 != 0
        top = rng.normal(0.65 if answerable else 0.4, 0.05)
        rows.append(Row(f"r{k}", "report", "report", answerable, {"top_dense": top, "best_sentence": top,
                                                                   "dense_margin": 0.15, "missing_in_top": 0.2,
                                                                   "agreement": 0.4}))
    return rows


def test_fit_keeps_signs_and_separates_the_classes():
    rows = synthetic_rows()
    names = ("top_dense", "best_sentence", "dense_margin", "missing_in_top", "agreement")
    fitted = fit_logistic(rows, names, 0.05)
    for name, w in zip(names, fitted.weights):
        assert FEATURE_SIGNS[name] * w >= 0, (name, w)  # never the wrong sign
    scores = fitted.scores(rows)
    y = np.array([r.answerable for r in rows])
    assert scores[y].mean() > scores[~y].mean() + 0.2


def test_threshold_keeps_the_share_of_answerable_questions_of_every_source():
    rows = synthetic_rows()
    fitted = fit_logistic(rows, ("top_dense", "dense_margin"), 0.05)
    fitted.threshold = pick_threshold(fitted.scores(rows), rows, 0.95)
    for source in ("qasper", "report"):
        part = [r for r in rows if r.source == source]
        assert rates(fitted, part)["answerable_kept"] >= 0.95
    assert rates(fitted, rows)["unanswerable_rejected"] > 0.3


def test_choosing_part_is_by_paper_and_the_model_says_what_it_was_chosen_on(tmp_path):
    rows = synthetic_rows()
    held = {r.group for r in rows if r.source == "qasper" and in_choosing_part(r.group)}
    assert 0.1 < len(held) / 60 < 0.5  # about CHOOSE_SHARE of the papers, all questions of a paper together
    fitted, info = choose_and_fit(rows)
    assert info["chosen"] in info["candidates"] and info["choosing_rows"] == sum(
        r.source == "qasper" and r.group in held for r in rows)
    model = AnswerabilityModel(**fitted.to_json())  # the shape index/answerability.json is read in
    assert 0.0 < model.threshold < 1.0
    path = tmp_path / "rows.jsonl"
    write_rows(rows[:3], path)
    assert read_rows(path) == rows[:3] and json.loads(path.read_text().splitlines()[0])["group"] == "paper0"


def test_list_shape_features():
    dense = {1: (1, 0.62), 2: (2, 0.50), 3: (3, 0.30)}
    bm25 = {1: (1, 7.0), 4: (2, 3.0)}
    best = {1: (0.70, 0), 2: (0.40, 1), 3: (0.20, 0)}
    f = shape_features(dense, bm25, {1: 0.03, 2: 0.01}, best, 0.70, 0.05)
    assert f["top_dense"] == 0.62 and f["best_sentence"] == 0.70
    assert abs(f["dense_margin"] - 0.32) < 1e-9  # top minus the last (fewer than 10 candidates)
    assert abs(f["sentence_margin"] - 0.30) < 1e-9  # best minus the median best sentence
    assert f["agreement"] == 0.2 and abs(f["fused_top"] - 0.6) < 1e-9
    assert shape_features({}, {}, {}, {}, 0.0, 0.05)["dense_margin"] == 0.0


def test_missing_share_counts_words_absent_from_every_candidate():
    assert missing_share("Which datasets were used for evaluation?", frozenset({"dataset", "evalu", "use"})) == 0.0
    assert missing_share("Which datasets were used for football?", frozenset({"dataset", "use"})) == 1 / 3
