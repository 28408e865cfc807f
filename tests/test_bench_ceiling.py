"""The ingest ceiling (eval/bench/ceiling.py): the FLOP formula against torch's own FLOP counter on the real
model, the ceiling arithmetic and matching of measured rows, and the GEMM timers."""
from __future__ import annotations

import math

import pytest

from eval.bench.ceiling import (
    EncoderShape, ceiling_rows, ceiling_table, encoder_flops, matmul_peak_gflops, numpy_peak_gflops, sample_pieces,
)


def test_encoder_flops_agrees_with_torch_flop_counter_on_the_real_model(settings):
    """torch counts every matrix product the real MiniLM runs; the formula leaves out only the pooler (one
    H x H product per text) and must land within 1% of it."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModel

    model = AutoModel.from_pretrained(settings.resolved_model_path, local_files_only=True,
                                      attn_implementation="eager").eval()
    shape = EncoderShape.from_model(settings.resolved_model_path)
    assert shape == EncoderShape(model.config.num_hidden_layers, model.config.hidden_size,
                                 model.config.intermediate_size)
    lengths = [17, 130]
    counted = 0
    for n in lengths:
        ids = torch.full((1, n), 1000, dtype=torch.long)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
        counted += counter.get_total_flops()
    assert encoder_flops(shape, lengths) == pytest.approx(counted, rel=0.01)
    # the n^2 attention term is there: one text of 2n costs more than two of n
    assert encoder_flops(shape, [2 * 130]) > encoder_flops(shape, [130, 130])


def test_ceiling_rows_by_hand():
    shape = EncoderShape(layers=1, hidden=2, intermediate=4)
    # per text of n pieces: 2 * (n * (4*4 + 2*2*4) + 2*2*n^2) = 2 * (32 n + 4 n^2)
    chunk_pieces, sentence_pieces = [10, 10], [5, 5, 5, 5]
    chunk_flops = 2 * 2 * (320 + 400)
    sentence_flops = 4 * 2 * (160 + 100)
    assert encoder_flops(shape, chunk_pieces) == chunk_flops
    measured = [
        {"config": {"engine": "onnx", "mode": "separate"}, "chunks": 2, "runs_s": [1.0, 2.0, 4.0]},   # 1 chunk/s
        {"config": {"engine": "torch", "mode": "separate"}, "chunks": 2, "runs_s": [0.5]},            # 4
        {"config": {"engine": "onnx-int8", "mode": "separate"}, "chunks": 2, "runs_s": [0.01]},       # no ceiling
        {"config": {"engine": "torch-bf16", "mode": "pooled"}, "chunks": 2, "runs_s": [0.25]},        # 8
    ]
    rows = {(r["precision"], r["mode"]): r for r in ceiling_rows(shape, chunk_pieces, sentence_pieces,
                                                                  {"fp32": 1e-3, "bf16": 2e-3}, measured)}
    assert set(rows) == {("fp32", "separate"), ("fp32", "pooled"), ("bf16", "separate"), ("bf16", "pooled")}
    assert rows["fp32", "separate"]["ceiling_chunks_s"] == pytest.approx(1e6 / ((chunk_flops + sentence_flops) / 2))
    assert rows["bf16", "pooled"]["ceiling_chunks_s"] == pytest.approx(2e6 / (chunk_flops / 2))
    assert rows["fp32", "separate"]["best_measured_chunks_s"] == pytest.approx(4.0)
    assert rows["bf16", "pooled"]["best_measured_chunks_s"] == pytest.approx(8.0)
    assert rows["fp32", "pooled"]["best_measured_chunks_s"] is None
    text = ceiling_table(list(rows.values()), target=750)
    assert "| fp32 | separate |" in text and "| n/a | n/a |" in text
    reachable = {line.split("|")[1].strip() + "/" + line.split("|")[2].strip(): line.split("|")[6].strip()
                 for line in text.splitlines()[2:]}
    assert reachable == {f"{p}/{m}": ("yes" if rows[p, m]["ceiling_chunks_s"] >= 750 else "no")
                         for p, m in rows}
    assert "yes" in reachable.values() and "no" in reachable.values()


def test_gemm_timers_give_a_plausible_rate():
    shape = EncoderShape(layers=1, hidden=64, intermediate=256)
    for rate in (matmul_peak_gflops(shape, "fp32", tokens=256, repeats=3), numpy_peak_gflops(shape, 256, 3)):
        assert math.isfinite(rate) and 0.01 < rate < 1e5


def test_sample_pieces_counts_special_tokens_and_truncates(settings, ingested):
    chunks = ingested.chunks[:5]
    chunk_pieces, sentence_pieces = sample_pieces(chunks, settings.resolved_model_path)
    assert len(chunk_pieces) == 5 and len(sentence_pieces) == sum(len(c.sentences) for c in chunks)
    assert all(3 <= n <= 256 for n in chunk_pieces + sentence_pieces)  # [CLS] + a piece + [SEP] at least
    # a chunk holds its sentences (and its section context): never fewer pieces than its longest sentence
    start = 0
    for c, n in zip(chunks, chunk_pieces):
        mine = sentence_pieces[start:start + len(c.sentences)]
        start += len(c.sentences)
        assert n >= max(mine, default=0)
