"""Section 5: ingest-style batched embedding of synthetic chunk texts (the engine ingest uses)."""
from __future__ import annotations

import time

import numpy as np

from eval.bench.plan import Plan
from eval.bench.questions import QUESTIONS
from eval.bench.runner import SectionResult
from eval.bench.synthetic import synthetic_chunks
from eval.bench.tables import table
from eval.progress import Log

TITLE = "5. Embedding throughput (ingest-style batched encode of synthetic chunks)"
PIECE_SAMPLE = 500  # texts whose word pieces are counted for the table's note
SLICES_PER_LOG = 10  # batches between progress lines


def run(settings, plan: Plan, chunk_texts: list[str], log: Log) -> SectionResult:
    """``chunk_texts``: the real chunks of section 1, whose words are shuffled into synthetic ones."""
    from index import load_embedder

    embedder = load_embedder(settings, ingest=True)
    n = plan.embed_n
    texts = synthetic_chunks(chunk_texts or QUESTIONS, n, seed=5)
    batch = settings.embed_batch_size
    pieces = [min(p, embedder.max_seq_length) for p in embedder.count_pieces(texts[:min(len(texts), PIECE_SAMPLE)])]
    budget = plan.embed_budget_s
    slice_size = batch * SLICES_PER_LOG
    done = 0
    log(f"  embedding {n} synthetic chunks, batch {batch}" + (f", time budget {budget:.0f}s" if budget else ""))
    t0 = time.perf_counter()
    while done < n:
        part = texts[done:done + slice_size]
        embedder.encode(part, batch)
        done += len(part)
        elapsed = time.perf_counter() - t0
        log(f"  embedded {done}/{n} ({done / elapsed:.1f} chunks/s)")
        if budget and elapsed > budget and done < n:
            log(f"  stopping early: over the {budget:.0f}s budget that keeps the full run under 15 minutes")
            break
    elapsed = time.perf_counter() - t0
    rate = done / elapsed
    res = {"requested": n, "encoded": done, "seconds": round(elapsed, 2), "chunks_per_s": round(rate, 2),
           "batch_size": batch, "encoder_backend": embedder.backend, "mean_word_pieces": round(float(np.mean(pieces)), 1),
           "max_seq_length": embedder.max_seq_length, "stopped_early": done < n,
           "projected_seconds_for_requested": round(n / rate, 1)}
    notes = [f"texts: words of the report's real chunks, shuffled; mean {res['mean_word_pieces']} word pieces "
             f"(max_seq_length {res['max_seq_length']}); encoder backend {embedder.backend} (the ingest one)"]
    if res["stopped_early"]:
        notes.append(f"stopped after {done:,} of {n:,} (time budget {budget:.0f}s); "
                     f"{n:,} would take ~{res['projected_seconds_for_requested']:,.0f}s at this rate")
    return SectionResult("embedding", res, table(TITLE, ["chunks", "batch", "seconds", "chunks/s", "ms/chunk"],
                                                 [[done, batch, res["seconds"], res["chunks_per_s"], 1000 / rate]],
                                                 notes))
