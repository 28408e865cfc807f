"""The machine's ceiling for ingest embedding (a section of ``reportqa bench --suite encoders``): the
encoder's arithmetic per chunk, counted from the model's own shape over the sample's real word pieces,
against this machine's measured matrix-multiply peak per precision.

No configuration can embed faster than ``peak / work per chunk``: the ceiling assumes every FLOP of the
transformer's matrix products runs at the speed of one large, well-shaped matrix product, with no
padding, no layer norms, softmax, GELU or tokenization. So a target above the ceiling is out of reach on
this machine at that precision, whatever the engine, batch or bucketing; the measured rows beside it say
how close the engines already are.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eval.bench.plan import TARGET_INGEST_CHUNKS_S
from eval.bench.runner import SectionResult
from settings import EncoderEngine, SentenceVectorMode

# The GEMM timed for the peak: a batch of tokens through the feed-forward's first matrix, the product that
# holds half the encoder's arithmetic; big enough that the kernels run at their best.
PEAK_TOKENS = 4096
PEAK_REPEATS = 15

# Which precision each passage engine computes in (int8 has no ceiling row: its peak is ONNX Runtime's
# integer kernels, not a torch GEMM, and its vectors lose on the evals anyway).
ENGINE_PRECISION = {EncoderEngine.TORCH: "fp32", EncoderEngine.ONNX: "fp32", EncoderEngine.TORCH_BF16: "bf16"}


@dataclass(frozen=True)
class EncoderShape:
    """The sizes that fix a BERT-style encoder's arithmetic."""

    layers: int
    hidden: int
    intermediate: int

    @classmethod
    def from_model(cls, model_path: str | Path) -> "EncoderShape":
        config = json.loads((Path(model_path) / "config.json").read_text())
        return cls(config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"])


def encoder_flops(shape: EncoderShape, pieces: Sequence[int]) -> float:
    """FLOPs of the encoder's matrix products over texts of ``pieces[i]`` word pieces each, unpadded:

        FLOPs = 2 · L · Σᵢ ( nᵢ · (4·H² + 2·H·I) + 2 · nᵢ² · H )

    per token and layer the query, key, value and output projections (4·H² multiply-adds) and the
    feed-forward pair (2·H·I); per text and layer the attention scores QKᵀ and their weighted sum of the
    values (nᵢ²·H each). A multiply-add is 2 FLOPs. Everything else (layer norms, softmax, GELU, the
    embedding lookup, pooling) is left out, so the ceiling built on this is generous."""
    n = np.asarray(pieces, dtype=np.float64)
    h, i = shape.hidden, shape.intermediate
    return float(2 * shape.layers * (n.sum() * (4 * h * h + 2 * h * i) + 2 * h * np.square(n).sum()))


def _median_seconds(product, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``product()`` after ``warmup`` calls (the kernels pick and cache their blocking)."""
    for _ in range(warmup):
        product()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def matmul_peak_gflops(shape: EncoderShape, dtype: str, tokens: int = PEAK_TOKENS, repeats: int = PEAK_REPEATS,
                       threads: int | None = None) -> float:
    """Median GFLOP/s of a ``tokens × H`` by ``H × I`` matrix product in torch at ``dtype`` ("fp32" or
    "bf16"), on ``threads`` threads (None: torch's default, one per core)."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        generator = torch.Generator().manual_seed(0)
        a = torch.rand(tokens, shape.hidden, generator=generator).to(kind)
        b = torch.rand(shape.hidden, shape.intermediate, generator=generator).to(kind)
        flops = 2.0 * tokens * shape.hidden * shape.intermediate
        with torch.inference_mode():
            return flops / _median_seconds(lambda: a @ b, repeats) / 1e9
    finally:
        torch.set_num_threads(previous)


def numpy_peak_gflops(shape: EncoderShape, tokens: int = PEAK_TOKENS, repeats: int = PEAK_REPEATS) -> float:
    """Median GFLOP/s of the same product in numpy's BLAS at fp32 (another vendor's kernels: the fp32
    ceiling takes the faster of the two)."""
    rng = np.random.default_rng(0)
    a = rng.random((tokens, shape.hidden), dtype=np.float32)
    b = rng.random((shape.hidden, shape.intermediate), dtype=np.float32)
    return 2.0 * tokens * shape.hidden * shape.intermediate / _median_seconds(lambda: a @ b, repeats) / 1e9


def sample_pieces(chunks: list, model_path: str) -> tuple[list[int], list[int]]:
    """Word pieces the encoder reads (special tokens included, truncated as the engines truncate) for each
    chunk's embedded text and for each of its sentences."""
    from index.embed.onnx_session import load_tokenizer
    from ingest.tokens import model_max_seq_length

    tokenizer = load_tokenizer(model_path, model_max_seq_length(Path(model_path)))

    def count(texts: list[str]) -> list[int]:
        return [sum(tokenizer.encode(text).attention_mask) for text in texts]

    sentences = [c.text[s.text_start:s.text_end] for c in chunks for s in c.sentences]
    return count([c.embed_text for c in chunks]), count(sentences)


def ceiling_rows(shape: EncoderShape, chunk_pieces: list[int], sentence_pieces: list[int],
                 peaks: dict[str, float], measured: list[dict]) -> list[dict]:
    """One row per precision × sentence-vector mode: work per chunk, the ceiling in chunks/s and the best
    measured rate of a matching configuration (``measured``: the passages section's results)."""
    chunks = len(chunk_pieces)
    work = {SentenceVectorMode.SEPARATE: encoder_flops(shape, chunk_pieces) + encoder_flops(shape, sentence_pieces),
            # pooled: sentence vectors come from the chunk's own pass (a sentence the window cut off is
            # encoded alone; not counted, which only raises the ceiling)
            SentenceVectorMode.POOLED: encoder_flops(shape, chunk_pieces)}
    rows = []
    for precision, peak in peaks.items():
        for mode, flops in work.items():
            rates = [r["chunks"] / float(np.median(r["runs_s"])) for r in measured
                     if ENGINE_PRECISION.get(r["config"]["engine"]) == precision and r["config"]["mode"] == mode]
            ceiling = peak * 1e9 / (flops / chunks)
            rows.append({"precision": precision, "mode": str(mode), "peak_gflops": peak,
                         "mflop_per_chunk": flops / chunks / 1e6, "ceiling_chunks_s": ceiling,
                         "best_measured_chunks_s": max(rates) if rates else None})
    return rows


def ceiling_table(rows: list[dict], target: float = TARGET_INGEST_CHUNKS_S) -> str:
    lines = ["| precision | sentence vectors | GEMM peak GFLOP/s | MFLOP per chunk | ceiling chunks/s "
             f"| target {target:g}: reachable? | best measured chunks/s | share of ceiling |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        best, ceiling = r["best_measured_chunks_s"], r["ceiling_chunks_s"]
        lines.append(
            f"| {r['precision']} | {r['mode']} | {r['peak_gflops']:.0f} | {r['mflop_per_chunk']:.0f} "
            f"| {ceiling:.1f} | {'yes' if ceiling >= target else 'no'} "
            f"| {'n/a' if best is None else f'{best:.1f}'} "
            f"| {'n/a' if best is None else f'{best / ceiling:.0%}'} |")
    return "\n".join(lines)


def ceiling_section(chunks: list, measured: list[dict], model_path: str,
                    target: float = TARGET_INGEST_CHUNKS_S) -> SectionResult:
    """The ceiling table for ``chunks`` (the passages section's sample) beside its measured results."""
    from index.embed.torch_engine import native_bf16

    shape = EncoderShape.from_model(model_path)
    chunk_pieces, sentence_pieces = sample_pieces(chunks, model_path)
    peaks = {"fp32": max(matmul_peak_gflops(shape, "fp32"), numpy_peak_gflops(shape))}
    if native_bf16():  # emulated bf16 is slower than fp32: no ceiling worth printing
        peaks["bf16"] = matmul_peak_gflops(shape, "bf16")
    rows = ceiling_rows(shape, chunk_pieces, sentence_pieces, peaks, measured)
    text = (f"ceiling: {len(chunk_pieces)} chunks = {sum(chunk_pieces):,} word pieces, their "
            f"{len(sentence_pieces):,} sentences = {sum(sentence_pieces):,} more; the encoder's matrix products "
            f"({shape.layers} layers, hidden {shape.hidden}, feed-forward {shape.intermediate}) at the median "
            f"speed of a {PEAK_TOKENS} x {shape.hidden} x {shape.intermediate} GEMM on all cores (fp32: the "
            f"faster of torch and numpy) "
            f"({PEAK_REPEATS} repeats); no padding, no other operator counted, so no engine can beat it; no int8 row (ONNX Runtime's "
            f"integer kernels are not a torch GEMM; int8 passages are measured to lose on the evals)\n\n"
            + ceiling_table(rows, target))
    return SectionResult("ceiling", {"shape": shape.__dict__, "word_pieces": {"chunks": sum(chunk_pieces),
                                     "sentences": sum(sentence_pieces)}, "rows": rows, "target": target}, text)
