"""The ingest-speed section of `reportqa bench --suite encoders` (eval/bench/passage_speed.py): its
configuration parser, one real measuring child, and the CLI's refusal of a bad configuration."""
from __future__ import annotations

import subprocess
import sys

import pytest

from eval.bench.passage_speed import PassageConfig, parse_configs, passages_section


def test_configs_parse_and_refuse():
    assert parse_configs("onnx/pooled/16, torch/separate/32/unbucketed") == (
        PassageConfig("onnx", "pooled", 16), PassageConfig("torch", "separate", 32, bucketed=False))
    for bad in ("onnx/pooled", "onnx/mean/32", "cuda/pooled/32", "onnx/pooled/x", "onnx/pooled/8/sorted"):
        with pytest.raises(ValueError, match="ENGINE/MODE/BATCH"):
            parse_configs(bad)


def test_one_configuration_measured_in_a_child(tmp_path, onnx_embedder):
    # onnx_embedder: the ONNX export exists before the child loads it (as the suite makes sure)
    configs = (PassageConfig("onnx", "separate", 32), PassageConfig("onnx", "pooled", 32))
    section = passages_section(configs, 0, 1, tmp_path, lambda message: None)
    rows = section.data["passages"]
    assert [r["config"]["mode"] for r in rows] == ["separate", "pooled"]
    assert section.data["chunks"] == rows[0]["chunks"] > 100  # the bundled report's chunks
    assert rows[0]["encoded_alone"] > 0 and rows[1]["encoded_alone"] == 0
    assert all(r["runs_s"][0] > 0 and r["peak_rss_mb"] > 50 for r in rows)
    assert "| onnx | pooled | 32 | yes |" in section.table


def test_cli_refuses_a_bad_configuration():
    out = subprocess.run([sys.executable, "-m", "service.cli", "bench", "--suite", "encoders", "--only-passages",
                          "--passage-configs", "onnx/fast/32"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "ENGINE/MODE/BATCH" in out.stderr and "Traceback" not in out.stderr
