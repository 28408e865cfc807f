"""The peer of the issues' latency target: a bare sentence-transformers encode of the question.

What a user of the plain recipe pays per question: ``SentenceTransformer(<the same local model folder>,
device="cpu").encode(question)`` on PyTorch, nothing around it. Issue 15 and 16 ask for ``POST /query`` p50
<= 0.6x this, measured on the same questions at the same time (each encode just before the request of the
same question, so both see the same machine load).

Between the two, the bench waits until this process is quiet again (``wait_until_quiet``): after an encode,
torch's OpenMP workers and the tokenizer's pool keep spinning for several milliseconds (measured here: about
1.9 cores busy for 6-8 ms after each encode, with every thread of this process asleep), and on 2 cores that
spin runs inside the server's request, a cost a user's server does not have: the peer in their program is
not running beside it. The wait is measured and reported, never a fixed sleep.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from eval.bench.http import RawClient


@dataclass
class StPeer:
    model: object  # sentence_transformers.SentenceTransformer
    load_seconds: float
    threads: int  # torch threads per encode, fixed at load: what a torch user's program gets

    @classmethod
    def load(cls, settings) -> "StPeer":
        """The model folder the product serves, loaded offline; torch threads as the product's torch engine
        sets them (``encoder_threads``, 0 = torch's default), so the peer gets what a torch user gets."""
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.encoder_threads:
            torch.set_num_threads(settings.encoder_threads)
        started = time.perf_counter()
        model = SentenceTransformer(settings.resolved_model_path, device="cpu", local_files_only=True)
        model.encode("warm up")  # the first call allocates; not what a question costs
        return cls(model, time.perf_counter() - started, torch.get_num_threads())

    def encode_seconds(self, question: str, threads: int | None = None) -> float:
        """One encode on ``threads`` torch threads (default: the peer's own). Set before every encode
        because the count can change under the peer: FAISS's ``omp_set_num_threads`` (the served index's
        ``faiss_threads``) reaches torch's OpenMP pool too when both use one libgomp (seen here: a peer
        loaded before the service then ran on 1 thread)."""
        import torch

        torch.set_num_threads(threads or self.threads)
        started = time.perf_counter()
        self.model.encode(question)
        return time.perf_counter() - started

    def single_thread_seconds(self, question: str) -> float:
        """The same encode on one torch thread (the next default encode sets its own count back). Why: on a machine
        whose cores other processes use, torch's default pool waits at its barriers for descheduled threads
        and a short encode takes 10-50x longer, a peer that would flatter the ratio; one thread cannot."""
        return self.encode_seconds(question, threads=1)


QUIET_CPU_SHARE = 0.2  # CPU seconds per wall second of this process below which its threads count as asleep
QUIET_STEP_S = 0.002  # one look at the process's CPU time
QUIET_STEPS = 3  # that many quiet looks in a row: a spinning pool can look idle for one step between spins
QUIET_MAX_S = 0.2  # give up waiting (a busy server thread, a pool that never sleeps): the request goes anyway


def wait_until_quiet(step_s: float = QUIET_STEP_S, steps: int = QUIET_STEPS, max_s: float = QUIET_MAX_S) -> float:
    """Sleep until this process's threads use under ``QUIET_CPU_SHARE`` of a core for ``steps`` looks in a row
    (or ``max_s`` has passed); returns the seconds waited. ``time.process_time`` counts every thread."""
    started = time.perf_counter()
    wall, cpu, quiet = started, time.process_time(), 0
    while quiet < steps and wall - started < max_s:
        time.sleep(step_s)
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        quiet = quiet + 1 if (now_cpu - cpu) < QUIET_CPU_SHARE * (now_wall - wall) else 0
        wall, cpu = now_wall, now_cpu
    return wall - started


@dataclass
class PeerPair:
    """One question: the peer's encode, the wait for quiet after it, the request of the same question."""
    encode_s: float
    quiet_s: float
    post_s: float
    status: int
    body: bytes


def peer_then_post(peer: StPeer, raw: RawClient, body: dict, single_thread: bool = False) -> PeerPair:
    """A bare sentence-transformers encode of ``body["question"]`` (on one torch thread if asked), a wait
    until this process is quiet, then ``POST /query`` of ``body``."""
    question = body["question"]
    encode_s = peer.single_thread_seconds(question) if single_thread else peer.encode_seconds(question)
    quiet_s = wait_until_quiet()
    started = time.perf_counter()
    status, answer = raw.post_json("/query", body)
    return PeerPair(encode_s, quiet_s, time.perf_counter() - started, status, answer)


def question_threads_label(embedder) -> str:
    """How many threads the service's question encoder uses, in words (0 = the engine's default)."""
    threads = getattr(embedder, "threads", 0)
    engine = getattr(embedder, "backend", "?")
    if threads:
        return f"{engine} on {threads} thread(s)"
    if str(engine).startswith("onnx"):
        return f"{engine} on ONNX Runtime's default threads (one per physical core; {os.cpu_count()} CPUs here)"
    return f"{engine} on torch's default threads"


STALL_FACTOR = 3.0  # the default-threads encode this many times slower than on one thread: its pool stalled


def stall_note(default_ms: float | None, single_ms: float | None) -> str | None:
    """A warning when torch's default pool stalled (other processes hold the cores): the peer is then slow
    for a reason a plain recipe on an idle machine does not have, and the ratio against it flatters."""
    if default_ms and single_ms and default_ms > STALL_FACTOR * single_ms:
        return (f"the sentence-transformers encode on torch's default threads ({default_ms:.0f} ms) was "
                f"{default_ms / single_ms:.0f}x slower than on 1 thread ({single_ms:.0f} ms): its thread pool "
                "stalled on a shared machine, so the ratio against it flatters; read the 1-thread ratio")
    return None


def ratio(numerator_ms: float | None, denominator_ms: float | None) -> float | None:
    return round(numerator_ms / denominator_ms, 3) if numerator_ms and denominator_ms else None
