"""Section 3: ``POST /query`` over HTTP against the in-process server, one client: distinct questions
interleaved with bare encodes (the product's own question encoder, and the issues' peer: a bare
sentence-transformers encode on torch) and in-process searches, cached repeats, the ``/healthz`` floor."""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

from eval.bench.http import RawClient
from eval.bench.plan import TARGET_E2E_RATIO, TARGET_E2E_TO_ST_RATIO, Plan
from eval.bench.procstats import latency_stats
from eval.bench.questions import QUESTIONS
from eval.bench.runner import SectionResult
from eval.bench.service_start import LiveService, StartService
from eval.bench.st_peer import StPeer, peer_then_post, question_threads_label, ratio, stall_note
from eval.bench.tables import fmt, table
from eval.progress import Log
from settings import EncoderEngine, RetrievalMode

TITLE = "3. End-to-end POST /query over HTTP, one client"
WARM_UP_REQUESTS = 5


class Distinct:
    """Questions the server's cache has never seen: a report question + ' #<counter>'."""

    def __init__(self):
        self._counter = itertools.count()

    def __call__(self) -> str:
        n = next(self._counter)
        return f"{QUESTIONS[n % len(QUESTIONS)]} #{n}"


@dataclass
class Samples:
    raw: list = field(default_factory=list)  # POST /query, socket client
    httpx: list = field(default_factory=list)  # POST /query, httpx client
    took: list = field(default_factory=list)  # the server's took_ms of the socket requests
    bare: list = field(default_factory=list)  # bare encode right before each socket request
    inproc: list = field(default_factory=list)  # Retriever.search in this process
    floor: list = field(default_factory=list)  # GET /healthz
    cached: list = field(default_factory=list)  # POST /query of one repeated question
    st: list = field(default_factory=list)  # bare sentence-transformers encode (the issues' peer)
    st_post: list = field(default_factory=list)  # POST /query (socket) of the same question after it
    st_quiet: list = field(default_factory=list)  # the wait for this process's threads to go quiet in between
    st1: list = field(default_factory=list)  # what-if: that encode on one torch thread
    st1_post: list = field(default_factory=list)  # POST /query (socket) of the same question after it
    errors: int = 0


def encode_then_post(embedder, raw: RawClient, question: str) -> tuple[float, float, int, bytes]:
    """A bare encode of ``question``, then the same question over HTTP: (encode s, request s, status, body),
    so both see the same machine load."""
    t = time.perf_counter()
    embedder.encode_query(question)
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    status, body = raw.post_json("/query", {"question": question, "k": 5})
    return encode_s, time.perf_counter() - t, status, body


def _interleaved(service: LiveService, peer: StPeer, client, raw: RawClient, distinct: Distinct, plan: Plan,
                 s: Samples, log: Log) -> None:
    """A bare encode, then the same (never asked) question over HTTP; a bare sentence-transformers encode,
    then its question over HTTP; now and then an in-process search: all see the same machine load."""
    from index import Query

    n = plan.e2e_distinct
    every = max(1, n // plan.inproc_searches)
    for i in range(n):
        encode_s, post_s, status, body = encode_then_post(service.embedder, raw, distinct())
        s.bare.append(encode_s)
        s.raw.append(post_s)
        if status == 200:
            s.took.append(json.loads(body)["took_ms"] / 1000)
        else:
            s.errors += 1
        t = time.perf_counter()
        r = client.post("/query", json={"question": distinct(), "k": 5})
        s.httpx.append(time.perf_counter() - t)
        s.errors += r.status_code != 200
        for single, encodes, posts in ((False, s.st, s.st_post), (True, s.st1, s.st1_post)):
            pair = peer_then_post(peer, raw, {"question": distinct(), "k": 5}, single)
            encodes.append(pair.encode_s)
            posts.append(pair.post_s)
            s.st_quiet.append(pair.quiet_s)
            s.errors += pair.status != 200
        if i % every == 0:
            q2 = distinct()
            t = time.perf_counter()
            service.retriever.search(Query(q2, 5, RetrievalMode.HYBRID))
            s.inproc.append(time.perf_counter() - t)
        if (i + 1) % max(1, n // 4) == 0:
            log(f"  distinct questions: {i + 1}/{n}")


def _floor_and_cached(client, plan: Plan, s: Samples) -> None:
    for _ in range(plan.e2e_cached):  # HTTP + framework with no work: the async /healthz route
        t = time.perf_counter()
        r = client.get("/healthz")
        s.floor.append(time.perf_counter() - t)
        s.errors += r.status_code != 200
    client.post("/query", json={"question": QUESTIONS[0], "k": 5}).raise_for_status()  # fill the cache
    for _ in range(plan.e2e_cached):
        t = time.perf_counter()
        r = client.post("/query", json={"question": QUESTIONS[0], "k": 5})
        s.cached.append(time.perf_counter() - t)
        s.errors += r.status_code != 200


def full_precision_what_if(service: LiveService, serve_settings, start_service: StartService, distinct: Distinct,
                           plan: Plan, log: Log) -> dict:
    """What-if: the same index served with fp32 questions (the int8 encode is so short that the
    fixed cost of HTTP and search weighs more in the ratio); interleaved the same way."""
    n = max(20, plan.e2e_distinct // 2)
    log(f"  what-if: fp32 questions, {n} distinct questions")
    embedder = service.embedder.full_precision()
    other = start_service(serve_settings, embedder)
    try:
        raw = RawClient.to(other.url)
        for _ in range(WARM_UP_REQUESTS):
            raw.post_json("/query", {"question": distinct(), "k": 5})
        bare, e2e = [], []
        for _ in range(n):
            encode_s, post_s, status, _ = encode_then_post(embedder, raw, distinct())
            bare.append(encode_s)
            e2e.append(post_s)
            if status != 200:
                raise RuntimeError(f"what-if fp32 server answered {status}")
        raw.close()
    finally:
        other.stop()
    s_bare, s_e2e = latency_stats(bare), latency_stats(e2e)
    return {"bare": s_bare, "e2e": s_e2e, "ratio": round(s_e2e["median_ms"] / s_bare["median_ms"], 3)}


def _summary(s: Samples, encode: dict, fp32: dict | None, peer: dict) -> dict:
    st = {name: latency_stats(getattr(s, name))
          for name in ("raw", "httpx", "took", "cached", "inproc", "bare", "floor", "st", "st_post", "st1", "st1_post",
                       "st_quiet")}
    bare_median = st["bare"]["median_ms"]
    section2 = encode.get("median_ms")
    return {
        "distinct": st["raw"], "distinct_httpx": st["httpx"],
        "ratio_httpx_p50_to_bare_encode": round(st["httpx"]["median_ms"] / bare_median, 3) if bare_median else None,
        "server_took": st["took"], "cached_repeat": st["cached"], "inprocess_search": st["inproc"],
        "bare_encode_interleaved": st["bare"], "healthz": st["floor"], "errors": s.errors,
        "bare_encode_median_ms": bare_median,
        "ratio_p50_to_bare_encode": round(st["raw"]["median_ms"] / bare_median, 3) if bare_median else None,
        "section1_encode_median_ms": section2,
        "ratio_p50_to_section1_encode": round(st["raw"]["median_ms"] / section2, 3) if section2 else None,
        "what_if_fp32": fp32,
        "st_encode_interleaved": st["st"], "distinct_after_st_encode": st["st_post"], "st_peer": peer,
        "st_encode_median_ms": st["st"]["median_ms"], "quiet_wait_after_st_encode": st["st_quiet"],
        "ratio_p50_to_st_encode": ratio(st["st_post"]["median_ms"], st["st"]["median_ms"]),
        "ratio_all_p50_to_st_encode": ratio(st["raw"]["median_ms"], st["st"]["median_ms"]),
        "st_encode_1_thread": st["st1"], "distinct_after_st_encode_1_thread": st["st1_post"],
        "ratio_p50_to_st_encode_1_thread": ratio(st["st1_post"]["median_ms"], st["st1"]["median_ms"]),
        "st_stalled": stall_note(st["st"]["median_ms"], st["st1"]["median_ms"]),
    }


def _table(d: dict, encode: dict) -> str:
    def row(label, st):
        return [label, st["n"], st["median_ms"], st["p95_ms"], st["p99_ms"]]

    fp32, bare_median = d["what_if_fp32"], d["bare_encode_median_ms"]
    rows = [row("POST /query, distinct questions (socket client)", d["distinct"]),
            row("POST /query, distinct questions (httpx client)", d["distinct_httpx"]),
            row("  server-side took_ms (same requests)", d["server_took"]),
            row("Retriever.search in-process (no HTTP)", d["inprocess_search"]),
            row("POST /query, cached repeat", d["cached_repeat"]),
            row("GET /healthz (HTTP + middleware floor)", d["healthz"]),
            row("bare encode, interleaved with the above", d["bare_encode_interleaved"]),
            ["bare encode (section 2)", encode.get("n"), encode.get("median_ms"), encode.get("p95_ms"),
             encode.get("p99_ms")],
            row("bare sentence-transformers encode (torch), interleaved", d["st_encode_interleaved"]),
            row("POST /query after each of those (socket client)", d["distinct_after_st_encode"]),
            row("  wait for this process's threads to go quiet in between", d["quiet_wait_after_st_encode"]),
            row("what-if: bare ST encode on 1 torch thread, interleaved", d["st_encode_1_thread"]),
            row("  POST /query after each of those (socket client)", d["distinct_after_st_encode_1_thread"])]
    if fp32:
        rows += [row("what-if fp32 questions (--encoder onnx): POST /query", fp32["e2e"]),
                 row("  bare fp32 encode, interleaved", fp32["bare"])]
    notes = [f"ratio p50(POST /query, socket client) / median(interleaved bare encode) = "
             f"{fmt(d['ratio_p50_to_bare_encode'], 2)} (target <= {TARGET_E2E_RATIO}); with the httpx client "
             f"{fmt(d['ratio_httpx_p50_to_bare_encode'], 2)}; against section 2's median: "
             f"{fmt(d['ratio_p50_to_section1_encode'], 2)}",
             f"ratio p50(POST /query after an ST encode, once its threads stopped spinning) / median(bare "
             f"sentence-transformers encode of the same question) = {fmt(d['ratio_p50_to_st_encode'], 2)} "
             f"(target <= {TARGET_E2E_TO_ST_RATIO}; with every "
             f"socket request's p50 {fmt(d['ratio_all_p50_to_st_encode'], 2)}; against the 1-thread ST encode "
             f"{fmt(d['ratio_p50_to_st_encode_1_thread'], 2)}); threads: sentence-transformers on "
             f"torch {d['st_peer']['torch_threads']} (torch's default, as the product's torch engine), the service's "
             f"questions {d['st_peer']['question_encoder']}",
             f"errors: {d['errors']}; k=5, mode hybrid; each distinct question = a report question + ' #<counter>'"]
    if d["st_stalled"]:
        notes.append(d["st_stalled"])
    if fp32 and bare_median:
        notes.append(f"what-if: the same server with fp32 questions: ratio {fmt(fp32['ratio'], 2)}; the work around "
                     f"the encode costs about the same, the int8 encode is "
                     f"{fmt(fp32['bare']['median_ms'] / bare_median, 2)}x faster")
    return table(TITLE, ["what", "n", "p50 ms", "p95 ms", "p99 ms"], rows, notes)


def run(service: LiveService | None, serve_settings, start_service: StartService, encode: dict, plan: Plan,
        log: Log) -> SectionResult:
    """``encode``: section 2's numbers, to compare against."""
    import httpx

    if service is None:
        raise RuntimeError("no server (section 1 failed)")
    distinct, s = Distinct(), Samples()
    log("  loading the sentence-transformers peer (torch)")
    peer = StPeer.load(serve_settings)
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for _ in range(WARM_UP_REQUESTS):  # connection, first requests
            client.post("/query", json={"question": distinct(), "k": 5}).raise_for_status()
        raw = RawClient.to(service.url)
        _interleaved(service, peer, client, raw, distinct, plan, s, log)
        _floor_and_cached(client, plan, s)
        raw.close()
    fp32 = None
    if service.embedder.backend == EncoderEngine.ONNX_INT8:
        fp32 = full_precision_what_if(service, serve_settings, start_service, distinct, plan, log)
    data = _summary(s, encode, fp32, {"load_s": round(peer.load_seconds, 2), "torch_threads": peer.threads,
                                      "question_encoder": question_threads_label(service.embedder)})
    return SectionResult("e2e", data, _table(data, encode))
