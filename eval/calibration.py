"""No-answer calibration: fit the answerability model on the eval set and estimate it honestly.

``reportqa eval --calibrate`` fits on the eval set's fit half only, saves ``index/answerability.json`` (read
by the retriever), and reports 5-fold cross-validated rates beside a top-cosine threshold alone. The shipped
model is fitted on QASPER train plus that half instead (:mod:`eval.answerability_fit`): the report alone is
too few questions, and its similarities are far higher than another collection's.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eval.harness import EVAL_DIR, EvalQuestion, run_report
from eval.progress import Progress
from index import Retriever
from settings import RetrievalMode

ANSWERABILITY = EVAL_DIR.parent / "index" / "answerability.json"


@dataclass
class Calibration:
    model: dict  # weights, bias, threshold, fitted_on
    cross_validated: dict[str, float]
    cosine_only: dict[str, float]
    path: Path


def fit_answerability(features: list[dict[str, float]], labels: list[bool], min_keep: float = 0.95) -> dict:
    """L2-regularised logistic regression on retrieval features, each weight kept to its sign in
    ``FEATURE_SIGNS``; threshold chosen to keep ≥ ``min_keep`` of answerable questions while rejecting
    as many unanswerable ones as possible."""
    from index.answerability import FEATURE_SIGNS

    names = sorted(features[0])
    signs = np.array([FEATURE_SIGNS.get(n, 0) for n in names], dtype=np.float64)
    x = np.array([[f[n] for n in names] for f in features], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    mu, sigma = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sigma
    w, b = np.zeros(len(names)), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + 0.05 * w
        grad_b = float(np.mean(p - y))
        w -= 0.5 * grad_w
        w = np.where(signs * w < 0, 0.0, w)  # projected: a weight of the wrong sign becomes 0
        b -= 0.5 * grad_b
    probs = 1 / (1 + np.exp(-(z @ w + b)))
    threshold = _pick_threshold(probs, y, min_keep)
    raw_w = w / sigma
    raw_b = b - float(np.sum(w * mu / sigma))
    return {"weights": dict(zip(names, map(float, raw_w))), "bias": raw_b, "threshold": threshold}


def _pick_threshold(scores: np.ndarray, y: np.ndarray, min_keep: float) -> float:
    best, best_key = 0.5, (-1.0, -1.0)
    for t in sorted(set(np.round(scores, 6))):
        keep = float(np.mean(scores[y == 1] >= t)) if (y == 1).any() else 0.0
        reject = float(np.mean(scores[y == 0] < t)) if (y == 0).any() else 0.0
        key = (float(keep >= min_keep), reject + keep)
        if key > best_key:
            best, best_key = float(t), key
    return best


def cross_validated_rates(features, labels, folds: int = 5, min_keep: float = 0.95) -> dict[str, float]:
    """Rates of the fitted model on questions it was not fitted on (k-fold), the honest estimate."""
    n = len(labels)
    order = np.random.default_rng(0).permutation(n)
    predicted = np.zeros(n, dtype=bool)
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        model = fit_answerability([features[i] for i in train], [labels[i] for i in train], min_keep)
        for i in test:
            z = model["bias"] + sum(model["weights"][k] * features[i][k] for k in model["weights"])
            predicted[i] = 1 / (1 + math.exp(-max(-50, min(50, z)))) >= model["threshold"]
    y = np.array(labels)
    return {"unanswerable_rejected": float(np.mean(~predicted[~y])), "answerable_kept": float(np.mean(predicted[y]))}


def cosine_only_rates(features, labels, min_keep: float = 0.95) -> dict[str, float]:
    """The weak reference: a threshold on the top dense cosine alone."""
    scores = np.array([f["top_dense"] for f in features])
    y = np.array(labels, dtype=float)
    t = _pick_threshold(scores, y, min_keep)
    return {"threshold": t, "unanswerable_rejected": float(np.mean(scores[y == 0] < t)),
            "answerable_kept": float(np.mean(scores[y == 1] >= t))}


def calibrate(retriever: Retriever, questions: list[EvalQuestion], progress: Progress | None = None,
              path: Path = ANSWERABILITY) -> Calibration:
    """Fit on the hybrid run's features, write the model to ``path``, and give the retriever the new model."""
    from index import load_answerability

    _, details = run_report(retriever, questions, [RetrievalMode.HYBRID], progress, with_baseline=False)
    feats = [details[RetrievalMode.HYBRID][q.id]["features"] for q in questions]
    labels = [q.answerable for q in questions]
    model = fit_answerability(feats, labels)
    cv = cross_validated_rates(feats, labels)
    cos = cosine_only_rates(feats, labels)
    model["fusion"] = asdict(retriever.judge_weights)  # what the features were read under (index.answerability)
    model["fitted_on"] = {"questions": len(questions), "file": "eval/questions.jsonl",
                          "cross_validated": cv, "cosine_only": cos}
    path.write_text(json.dumps(model, indent=2) + "\n")
    retriever.answerability = load_answerability()
    return Calibration(model, cv, cos, path)
