"""Section 4: throughput with concurrent HTTP clients against ``reportqa serve`` in its own process(es),
as deployed: the clients (asyncio sockets in a child process) share the cores but not the server's
Python lock."""
from __future__ import annotations

from eval.bench.http import run_load_process, server_process
from eval.bench.plan import Plan
from eval.bench.procstats import latency_stats
from eval.bench.runner import SectionResult
from eval.bench.tables import table
from eval.progress import Log

TITLE = "4. Throughput, concurrent HTTP clients (POST /query)"
FIRST_QUESTION = 1_000_000  # never collides with section 3's questions


def load_level(port: int, clients: int, first_question: int, plan: Plan) -> dict:
    seconds = plan.level_seconds or 3600.0
    got = run_load_process(port, clients, seconds, plan.level_requests, first_question)
    latencies, errors, wall = got["latencies"], got["errors"], got["seconds"]
    return {"clients": clients, "requests": len(latencies), "seconds": round(wall, 3),
            "rps": round(len(latencies) / wall, 2) if wall > 0 else None, "errors": len(errors),
            "error_samples": errors[:3], **latency_stats(latencies)}


def run(serve_settings, settings, plan: Plan, log: Log) -> SectionResult:
    if serve_settings is None:
        raise RuntimeError("no index to serve (section 1 failed)")
    configs = [("1 worker (default)", 1, settings.question_threads)]
    if not plan.quick:
        configs.append(("2 workers x 1 thread", 2, 1))
    first_question = FIRST_QUESTION
    levels = []
    for label, workers, threads in configs:
        with server_process(serve_settings, workers, threads) as port:
            log(f"  server: {label}")
            for clients in plan.levels:
                level = load_level(port, clients, first_question, plan)
                first_question += level["requests"] + clients
                levels.append({"server": label, "workers": workers, "encoder_threads": threads, **level})
                log(f"  {label}, {clients} client(s): {level['rps']} req/s, p50 {level.get('median_ms')} ms, "
                    f"errors {level['errors']}")
    rows = [[lv["server"], lv["clients"], lv["requests"], lv["seconds"], lv["rps"], lv.get("median_ms"),
             lv.get("p99_ms"), lv["errors"]] for lv in levels]
    notes = ["distinct questions (no cache hits); each level runs for "
             + (f"{plan.level_seconds:.0f} s" if plan.level_seconds else f"{plan.level_requests} requests")
             + "; the server is `reportqa serve` in its own process(es); clients are asyncio keep-alive "
             "sockets in a separate lean process (python -m eval.bench load), on the same 2 cores"]
    for lv in levels:
        if lv["error_samples"]:
            notes.append(f"{lv['server']}, {lv['clients']} clients, errors e.g.: {'; '.join(lv['error_samples'])}")
    return SectionResult("throughput", {"levels": levels}, table(
        TITLE, ["server", "clients", "requests", "seconds", "req/s", "p50 ms", "p99 ms", "errors"], rows, notes))
