"""The index package's shape: imports set nothing, one fusion formula, one place that knows backend names."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.backends import backend_class
from index.embed.runtime import RUNTIME_ENVIRONMENT, configure_runtime
from index.fusion import FusionWeights, convex_combination, fused_order, ranks_of, weighted_rrf
from settings import BackendName

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_index_sets_no_environment_variables():
    code = ("import json, os; before = dict(os.environ); import index, index.batching, index.embed.onnx_engine, "
            "index.embed.torch_engine, index.embed.export, index.backends.faiss, index.backends.milvus; "
            "print(json.dumps(sorted(k for k in os.environ if os.environ.get(k) != before.get(k))))")
    env = {k: v for k, v in os.environ.items() if k not in RUNTIME_ENVIRONMENT} | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_configure_runtime_sets_defaults_and_keeps_explicit_values():
    environ = {"TOKENIZERS_PARALLELISM": "true"}
    got = configure_runtime(environ)
    assert environ["HF_HUB_OFFLINE"] == "1" and environ["TRANSFORMERS_OFFLINE"] == "1"
    assert environ["TOKENIZERS_PARALLELISM"] == "true"  # an explicit choice wins
    assert set(got) == set(RUNTIME_ENVIRONMENT) == set(environ)


def test_weighted_rrf_follows_its_formula():
    dense, bm25 = ranks_of([1, 2]), {2: 1, 3: 3}
    fused = weighted_rrf([dense, bm25], [1.3, 1.0], k=60)
    assert fused == pytest.approx({1: 0.0213114754, 2: 0.0373611845, 3: 0.0158730159}, abs=1e-10)
    assert fused_order(fused) == [2, 1, 3]
    assert weighted_rrf([dense, bm25], [0.0, 1.0], k=60)[1] == 0.0  # a zero weight switches a list off
    assert fused_order({5: 0.5, 4: 0.5, 9: 0.1}) == [4, 5, 9]  # ties: the earlier chunk first
    with pytest.raises(ValueError):
        weighted_rrf([dense], [1.0, 1.0])


def test_convex_combination_follows_its_formula():
    dense, bm25 = {1: 0.8, 2: 0.6, 3: 0.4}, {2: 12.0, 4: 2.0}
    fused = convex_combination([dense, bm25], [2.0, 1.5])
    # dense min-max over {0.4, 0.8}: 1 -> 1, 2 -> 0.5, 3 -> 0; bm25 over {2, 12}: 2 -> 1, 4 -> 0; absent adds 0
    assert fused == pytest.approx({1: 2.0, 2: 2.0 * 0.5 + 1.5, 3: 0.0, 4: 0.0})
    assert fused_order(fused) == [2, 1, 3, 4]
    assert convex_combination([{7: 0.3, 8: 0.3}], [1.5]) == {7: 1.5, 8: 1.5}  # all alike: each gets 1
    assert convex_combination([{}, {5: 1.0}], [1.0, 1.0]) == {5: 1.0}
    with pytest.raises(ValueError):
        convex_combination([dense], [1.0, 1.0])
    assert FusionWeights(2.0, 1.0, 5, 0.5, "convex").top_score() == 3.5
    with pytest.raises(ValueError, match="unknown fusion method"):
        FusionWeights(method="borda")


def test_the_factory_knows_every_backend_name_and_only_those():
    assert {backend_class(name).kind for name in BackendName} == {str(n) for n in BackendName}
    with pytest.raises(ValueError, match="unknown backend 'elastic'"):
        backend_class("elastic")


def test_no_module_outside_the_factories_branches_on_a_backend_or_engine_name():
    out = subprocess.run(["grep", "-rnE", r"""(==|!=) *["'](faiss|milvus|torch|onnx|onnx-int8)["']""", "index"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.stdout == ""
