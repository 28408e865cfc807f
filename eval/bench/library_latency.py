"""The library suite's last section (issue 16): ``POST /query`` p50 at the library's size against a bare
sentence-transformers encode of the same question (target <= 0.6x, ``TARGET_E2E_TO_ST_RATIO``).

The real service is started on the library build (the N papers, after the add and the remove), one client
over a plain socket. The questions are the QASPER questions of the library's papers, round-robin over the
papers (every paper's first question, then every second one, ...), up to ``LATENCY_QUESTIONS`` per set:

* **filtered**: each question restricted to its own paper (the ``document`` field, the paper's key);
* **whole library**: the distinct question texts, unfiltered.

Each request follows a bare sentence-transformers encode of its question (and the wait for its threads to
stop spinning, ``st_peer.wait_until_quiet``): on torch's default threads (the
target's peer) for every other question, on one torch thread for the rest (a what-if that a loaded machine
cannot slow the way it slows torch's thread pool); the two sets alternate, so every sample sees the same load. None of the questions was asked of this server before (its answer
cache cannot help): pairs in the filtered set and texts in the unfiltered set are distinct.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from eval.bench.http import RawClient
from eval.bench.plan import TARGET_E2E_TO_ST_RATIO
from eval.bench.procstats import latency_stats, loadavg
from eval.bench.runner import SectionResult
from eval.bench.service_start import StartService
from eval.bench.st_peer import StPeer, peer_then_post, question_threads_label, ratio, stall_note
from eval.bench.tables import fmt, table

LATENCY_QUESTIONS = 200  # per set: enough for a stable p50/p95, ~20 s at 400 papers
WARM_UP_REQUESTS = 5
K = 5


@dataclass
class LatencySet:
    """Every other question is paired with the encode on torch's default threads (the target's peer), the
    rest with the encode on one thread (the what-if), so each request follows its own peer's encode."""

    post: list = field(default_factory=list)  # POST /query seconds, after a default-threads encode
    st: list = field(default_factory=list)  # the bare sentence-transformers encode right before it
    post1: list = field(default_factory=list)  # POST /query seconds, after a one-thread encode
    st1: list = field(default_factory=list)  # that encode
    took: list = field(default_factory=list)  # the server's took_ms of all requests, in seconds
    quiet: list = field(default_factory=list)  # the waits for this process's threads to go quiet before each
    errors: int = 0
    first_error: str = ""

    def add(self, peer: StPeer, raw: RawClient, body: dict) -> None:
        single = len(self.post) > len(self.post1)
        pair = peer_then_post(peer, raw, body, single)
        (self.st1 if single else self.st).append(pair.encode_s)
        (self.post1 if single else self.post).append(pair.post_s)
        self.quiet.append(pair.quiet_s)
        if pair.status == 200:
            self.took.append(json.loads(pair.body)["took_ms"] / 1000)
        else:
            self.errors += 1
            self.first_error = self.first_error or f"HTTP {pair.status}: {pair.body[:200]!r}"

    def summary(self) -> dict:
        post, st, post1, st1 = (latency_stats(x) for x in (self.post, self.st, self.post1, self.st1))
        value = ratio(post.get("median_ms"), st.get("median_ms"))
        return {"post": post, "st_encode": st, "server_took": latency_stats(self.took), "ratio_p50_to_st_encode": value,
                "quiet_wait": latency_stats(self.quiet),
                "post_1_thread": post1, "st_encode_1_thread": st1,
                "ratio_p50_to_st_encode_1_thread": ratio(post1.get("median_ms"), st1.get("median_ms")),
                "st_stalled": stall_note(st.get("median_ms"), st1.get("median_ms")),
                "target_met": value is not None and value <= TARGET_E2E_TO_ST_RATIO, "errors": self.errors,
                "first_error": self.first_error}


def question_sets(papers: list[tuple[str, list[str]]], limit: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(question, document key) pairs and distinct question texts, round-robin over ``papers``
    ((key, questions) pairs), at most ``limit`` of each."""
    pairs: list[tuple[str, str]] = []
    depth = max((len(questions) for _, questions in papers), default=0)
    for j in range(depth):
        pairs += [(questions[j], key) for key, questions in papers if j < len(questions) and questions[j].strip()]
    pairs = list(dict.fromkeys(pairs))
    return pairs[:limit], list(dict.fromkeys(q for q, _ in pairs))[:limit]


def measure(peer: StPeer, url: str, pairs: list[tuple[str, str]], texts: list[str], log) -> tuple[LatencySet,
                                                                                                  LatencySet]:
    """The two sets, alternating, each request after a bare encode of its question."""
    raw = RawClient.to(url)
    try:
        for i in range(WARM_UP_REQUESTS):  # the connection and the first requests, with questions of no set
            raw.post_json("/query", {"question": f"warm-up question number {i}", "k": K})
        filtered, whole = LatencySet(), LatencySet()
        n = max(len(pairs), len(texts))
        for i in range(n):
            if i < len(pairs):
                filtered.add(peer, raw, {"question": pairs[i][0], "k": K, "document": pairs[i][1]})
            if i < len(texts):
                whole.add(peer, raw, {"question": texts[i], "k": K})
            if (i + 1) % max(1, n // 4) == 0:
                log(f"  library latency: {i + 1}/{n}")
        return filtered, whole
    finally:
        raw.close()


def latency_section(settings, papers: list[tuple[str, list[str]]], start_service: StartService | None,
                    log) -> SectionResult:
    """``settings``: the library build's; ``papers``: (document key, QASPER questions) of its papers."""
    if start_service is None:
        raise RuntimeError("no service starter given (the command line passes service.server.start_in_thread)")
    pairs, texts = question_sets(papers, LATENCY_QUESTIONS)
    if not pairs:
        raise RuntimeError("the library's papers have no QASPER questions")
    log("library latency: loading the sentence-transformers peer (torch)")
    peer = StPeer.load(settings)
    log("library latency: starting the service on the library build")
    service = start_service(settings)
    try:
        served = {"documents": len(service.retriever.index.documents), "chunks": len(service.retriever.index.chunks),
                  "start_to_ready_s": round(service.timings.get("start_to_ready_s", 0.0), 2)}
        load_start = loadavg()
        filtered, whole = measure(peer, service.url, pairs, texts, log)
        threads = {"st_torch_threads": peer.threads, "question_encoder": question_threads_label(service.embedder)}
    finally:
        service.stop()
    data = {"served": served, "filtered": filtered.summary(), "whole_library": whole.summary(), **threads,
            "st_load_s": round(peer.load_seconds, 2), "target": TARGET_E2E_TO_ST_RATIO,
            "loadavg_start": load_start, "loadavg_end": loadavg()}
    return SectionResult("latency", data, render_table(data))


def render_table(d: dict) -> str:
    def rows(label: str, s: dict) -> list[list]:
        post, st = s["post"], s["st_encode"]
        verdict = "met" if s["target_met"] else "NOT met"
        return [[f"POST /query, {label}", post["n"], post["median_ms"], post["p95_ms"],
                 fmt(s["ratio_p50_to_st_encode"], 2), f"<= {d['target']}: {verdict}"],
                ["  server took_ms (all of this set's requests)", s["server_took"]["n"], s["server_took"].get("median_ms"),
                 s["server_took"].get("p95_ms"), "", ""],
                ["  bare sentence-transformers encode before each", st["n"], st["median_ms"], st["p95_ms"], "", ""],
                ["  wait for this process's threads to go quiet in between", s["quiet_wait"]["n"],
                 s["quiet_wait"].get("median_ms"), s["quiet_wait"].get("p95_ms"), "", ""],
                ["  what-if: POST /query after an ST encode on 1 torch thread", s["post_1_thread"].get("n", 0),
                 s["post_1_thread"].get("median_ms"), s["post_1_thread"].get("p95_ms"),
                 fmt(s["ratio_p50_to_st_encode_1_thread"], 2), ""],
                ["    that ST encode on 1 torch thread", s["st_encode_1_thread"].get("n", 0),
                 s["st_encode_1_thread"].get("median_ms"), s["st_encode_1_thread"].get("p95_ms"), "", ""]]

    served = d["served"]
    notes = [f"ratio = p50(POST /query) / median(bare sentence-transformers encode of the same questions, each "
             f"before its request, once its threads stopped spinning); every other question is paired with the "
             f"encode on torch's default threads, the rest with the 1-thread what-if; one client (socket), k={K}, "
             f"mode hybrid; the two sets alternate",
             f"threads: sentence-transformers on torch {d['st_torch_threads']} (torch's default, as the product's "
             f"torch engine; the what-if row: 1), the service's questions {d['question_encoder']}",
             f"errors: filtered {d['filtered']['errors']}, whole library {d['whole_library']['errors']}; "
             f"service start-to-ready {served['start_to_ready_s']} s; load average {d['loadavg_start']} -> "
             f"{d['loadavg_end']}"]
    notes += [s["st_stalled"] for s in (d["filtered"], d["whole_library"]) if s["st_stalled"]][:1]
    return table(f"Library: POST /query at {served['documents']} papers ({served['chunks']:,} chunks) against a bare "
                 "sentence-transformers encode", ["what", "n", "p50 ms", "p95 ms", "ratio", "target"],
                 rows("filtered to the question's paper", d["filtered"]) + rows("whole library", d["whole_library"]),
                 notes)
