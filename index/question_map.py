"""A linear map on question vectors (a query-side adapter), fitted offline by ``python -m eval.adapter_fit``.

A question's vector q becomes q' = W q / ‖W q‖ before it is searched; passage and sentence vectors are the
model's own, so every build searches with it and nothing is embedded again. W is square (the model's
dimension) and starts as the identity in the fit, which pulls it back towards the identity (an L2 penalty on
W − I), so a map fitted on one kind of question moves the others little.

The file is a ``.npz`` with ``matrix`` (float32, d × d) and ``fingerprint`` (the model it was fitted for);
it is read without pickle and refused for another model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embed.model import ModelUnavailable


class QuestionMapError(ModelUnavailable):
    """The question map cannot be used (unreadable, not square, another model's): like a missing model, the
    service does not start and the command line exits with the index/model code."""


@dataclass(frozen=True)
class QuestionMap:
    matrix: np.ndarray  # (d, d) float32
    fingerprint: str

    def apply(self, vector: np.ndarray) -> np.ndarray:
        mapped = self.matrix @ np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(mapped))
        return (mapped / norm).astype(np.float32) if norm > 0 else np.asarray(vector, dtype=np.float32)

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, matrix=self.matrix.astype(np.float32), fingerprint=np.array(self.fingerprint))
        tmp.replace(path)


def load_question_map(path: Path, fingerprint: str | None) -> QuestionMap:
    """The map in ``path``; QuestionMapError when it is unreadable, not square, or fitted for another model
    than ``fingerprint`` (None: any model; the caller checks)."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            matrix, stored = np.asarray(data["matrix"], dtype=np.float32), str(data["fingerprint"])
    except (OSError, ValueError, KeyError) as exc:
        raise QuestionMapError(f"cannot read question map {path}: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise QuestionMapError(f"question map {path} is not a square matrix (shape {matrix.shape})")
    if fingerprint is not None and stored != fingerprint:
        raise QuestionMapError(f"question map {path} was fitted for model {stored[:12]}, not {fingerprint[:12]}")
    return QuestionMap(matrix, stored)
