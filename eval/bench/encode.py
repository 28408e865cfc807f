"""Section 2: the model alone, ``embedder.encode_query`` over short questions, and 16 per call."""
from __future__ import annotations

import os
import time

from eval.bench.plan import Plan
from eval.bench.procstats import latency_stats
from eval.bench.questions import QUESTIONS
from eval.bench.runner import SectionResult
from eval.bench.tables import fmt, table
from eval.progress import Log

TITLE = "2. Bare query encode (embedder.encode_query, model alone)"
BATCH = 16


def _batched(embedder, reps: int) -> dict:
    """What micro-batching would give: several questions per forward pass (per-question latency)."""
    batch = (QUESTIONS * (BATCH // len(QUESTIONS) + 1))[:BATCH]
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        embedder.encode(batch, batch_size=BATCH)
        ts.append((time.perf_counter() - t) / BATCH)
    return latency_stats(ts)


def run(embedder, settings, plan: Plan, log: Log) -> SectionResult:
    """``embedder``: the service's question encoder (section 1), so both sections measure one object."""
    embedder.encode_query("warm-up question")
    times = []
    total = len(QUESTIONS) * plan.encode_repeats
    cpu0 = time.process_time()
    for _ in range(plan.encode_repeats):
        for q in QUESTIONS:
            t = time.perf_counter()
            embedder.encode_query(q)
            times.append(time.perf_counter() - t)
        log(f"  encode_query: {len(times)}/{total}")
    cpu_ms = (time.process_time() - cpu0) / len(times) * 1000
    st = latency_stats(times)
    b16 = _batched(embedder, 3 if plan.quick else 8)
    cpus = os.cpu_count() or 1
    ceiling = cpus * 1000 / cpu_ms if cpu_ms else None
    data = {"questions": len(QUESTIONS), "repeats": plan.encode_repeats, "backend": embedder.backend,
            "threads": settings.question_threads, **st, "cpu_ms_per_question": round(cpu_ms, 2),
            "batch16_per_question": b16, "requests_per_s_ceiling": round(ceiling, 1) if ceiling else None}
    rows = [
        [f"encode_query, {embedder.backend} (product)", st["n"], st["median_ms"], st["p95_ms"], st["p99_ms"],
         st["max_ms"], cpu_ms],
        [f"what-if: {BATCH} per call (per question)", b16["n"], b16["median_ms"], b16["p95_ms"], b16["p99_ms"],
         b16["max_ms"], ""],
    ]
    notes = [f"{len(QUESTIONS)} distinct questions x {plan.encode_repeats} repeat(s); CPU ms = process CPU "
             f"time per question (all threads)",
             f"encoding alone caps a {cpus}-core machine at ~{fmt(ceiling, 0)} questions/s "
             "(cores x 1000 / CPU ms), before any search or HTTP work"]
    return SectionResult("encode", data, table(TITLE, ["what", "n", "median ms", "p95 ms", "p99 ms", "max ms",
                                                      "CPU ms"], rows, notes))
