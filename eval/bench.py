"""``reportqa bench``: how fast is ReportQA, and where does the time go?

One run measures, in this order (tables are printed in section order at the end):

4. ingest of the bundled report split by stage (read+parse+chunk, model load, embed, index write),
   index load time, service start-to-ready time, peak / delta RSS;
1. the model alone: ``embedder.encode_query`` over short questions;
2. ``POST /query`` over HTTP against a real uvicorn server (started in-process on a free port),
   with distinct questions (the server's LRU cache cannot answer them) and, separately, cached repeats;
3. throughput with 1, 4, 16 and 64 concurrent HTTP clients;
5. ingest-style batched embedding of synthetic chunk texts;
6. scaling on synthetic clustered unit vectors and Zipf pseudo-text: FAISS exact vs HNSW, recall, memory,
   memory-mapped loading, and BM25.

Progress goes to stderr; tables to stdout; ``--json FILE`` gets every number. Missed targets are
reported in the final "targets" table, never by the exit code (always 0 once the run completes).
The benchmark only reads the index in ``settings.index_dir``; its own ingest goes to a temporary folder.
"""
from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from settings import EncoderEngine, RetrievalMode

# ---------------------------------------------------------------- questions

# Short, realistic questions about the bundled report
# (data/cyberspace-community-decade-review.md); fifty of them, all different.
QUESTIONS = [
    "When did President Xi propose the vision of a community with a shared future in cyberspace?",
    "What are the four principles for reforming global Internet governance?",
    "What is the five-point proposal for a shared future in cyberspace?",
    "What are the four joint efforts in Internet development?",
    "What are the three advocates put forward at the Wuzhen Summit?",
    "What is the Global Governance Initiative?",
    "Why is cyberspace not an ungoverned global common?",
    "Which laws has China enacted on cybersecurity and data?",
    "What does the International Strategy of Cooperation on Cyberspace say?",
    "Which international organizations accept sovereignty in cyberspace?",
    "How does China oppose the militarization of cyberspace?",
    "What did China say about a cyberspace arms race at the UN?",
    "How does China attract foreign businesses to its digital economy?",
    "What is the Silk Road E-commerce platform?",
    "How many countries have e-commerce cooperation mechanisms with China?",
    "How many households in Africa gained broadband access?",
    "What are the Guidelines for Outbound Investment and Cooperation on Digital Economy?",
    "How is critical information infrastructure protected?",
    "When did the critical information infrastructure regulations take effect?",
    "How many universities offer cybersecurity programs?",
    "What is the global deployment rate of IPv6?",
    "How many active IPv6 users are there in China?",
    "Which Internet registries did China work with on domain names?",
    "How are algorithmic recommendation services regulated?",
    "What filing requirements apply to large-scale models?",
    "How does China combat cybercrime and cyber terrorism?",
    "What did the UN General Assembly adopt on cybercrime in December 2024?",
    "Which neighbouring countries cooperate with China against transboundary crime?",
    "How have cross-border data flow pilots been explored?",
    "What is the Global Initiative on Data Security?",
    "What did CAC agree with the European Commission on data flows?",
    "What is China's role on submarine cable resilience?",
    "How does China support a UN-centered cyberspace governance system?",
    "What is the multi-stakeholder approach to cyberspace governance?",
    "How does China improve civility in cyberspace?",
    "What digital public goods promote cultural exchange?",
    "How many Internet users does China have and what is the penetration rate?",
    "How many 5G base stations has China built?",
    "What is Express Cloud Networking?",
    "What does sovereign equality in cyberspace mean for global governance?",
    "What new model of cybersecurity governance does China advocate?",
    "How does China oppose digital protectionism and technology blockades?",
    "Which digital trade rules does China promote at the WTO and UNCTAD?",
    "What is the Digital Silk Road?",
    "What should a global data security governance system cover?",
    "How can AI be kept secure and used for good?",
    "How can the Global South take part in cyberspace governance?",
    "How will infrastructure resilience be improved?",
    "What are the action initiatives oriented to the future?",
    "Why should countries strengthen cooperation on technical standards?",
]

# Targets from the brief; checked in the final table.
TARGET_E2E_RATIO = 1.3
TARGET_RPS_AT_16 = 200.0
TARGET_1M_MS = 5.0
TARGET_1M_RECALL = 0.95
TARGET_1M_MEMORY_MB = 1024.0
TARGET_FULL_SECONDS = 15 * 60
TARGET_QUICK_SECONDS = 60

DIM = 384
NOISE = 1.0  # synthetic vectors: centre + NOISE * gaussian(0, 1/dim), then normalised


@dataclass
class Plan:
    quick: bool
    encode_repeats: int
    e2e_distinct: int
    e2e_cached: int
    inproc_searches: int
    levels: tuple[int, ...]
    level_seconds: float | None  # duration-bounded levels (full)
    level_requests: int  # per-level cap on requests (quick: the exact count)
    embed_n: int
    embed_budget_s: float | None
    sizes: list[int]
    million: bool
    queries: int = 200

    @classmethod
    def from_args(cls, args) -> "Plan":
        quick = bool(getattr(args, "quick", False))
        scale = getattr(args, "scale", None)
        sizes = _parse_sizes(scale) if scale else ([2_000] if quick else [10_000, 100_000])
        million = bool(getattr(args, "million", False))
        if million and 1_000_000 not in sizes:
            sizes.append(1_000_000)
        if quick:
            return cls(True, 1, 20, 10, 20, (1, 4), None, 20, 200, None, sizes, million)
        return cls(False, 5, 300, 100, 100, (1, 4, 16, 64), 10.0, 20_000, 10_000, 480.0, sizes, million)


def _parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in str(text).split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            mult, part = 1_000, part[:-1]
        elif part.endswith("m"):
            mult, part = 1_000_000, part[:-1]
        value = int(float(part) * mult)
        if value < 100:
            raise ValueError(f"scale size {value} is too small (at least 100)")
        sizes.append(value)
    if not sizes:
        raise ValueError("--scale needs at least one size")
    return sizes


# ---------------------------------------------------------------- helpers

_T0 = time.perf_counter()


def _log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def _mem() -> dict[str, float]:
    """Current resident memory in MiB: total, anonymous and file-backed (Linux /proc)."""
    out = {"rss_mb": float("nan"), "anon_mb": float("nan"), "file_mb": float("nan")}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                name = {"VmRSS": "rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb"}.get(key)
                if name:
                    out[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def _mapped(path: Path) -> bool | None:
    """Is ``path`` memory-mapped into this process right now? (None where /proc is unavailable.)"""
    try:
        with open("/proc/self/maps") as fh:
            target = str(Path(path).resolve())
            return any(line.rstrip("\n").endswith(target) for line in fh)
    except OSError:
        return None


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _delta(after: dict, before: dict) -> dict[str, float]:
    return {k: round(after[k] - before[k], 1) for k in before}


def _stats(seconds: list[float]) -> dict:
    """Latency summary in milliseconds."""
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    return {
        "n": int(len(ms)), "mean_ms": round(float(ms.mean()), 3), "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "min_ms": round(float(ms.min()), 3), "max_ms": round(float(ms.max()), 3),
    }


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_sample() -> tuple[float, int, int] | None:
    """(wall seconds, busy ticks of the whole machine, ticks used by this process and its finished
    children, e.g. the server processes of section 3) from /proc."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:9]]
        with open("/proc/self/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return time.perf_counter(), f[0] + f[1] + f[2] + f[5] + f[6] + f[7], sum(int(x) for x in rest[11:15])
    except (OSError, ValueError, IndexError):
        return None


def _others_cpu_share(before, after) -> float | None:
    """Fraction of all CPUs used by OTHER processes between two samples (contention from outside the bench)."""
    if not before or not after:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    wall = after[0] - before[0]
    if wall <= 0:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, others / tick / (wall * (os.cpu_count() or 1))), 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _RawClient:
    """A minimal HTTP/1.1 keep-alive client on a socket: what a load balancer or curl costs, so the
    measured time is the server's and not a Python client library's (httpx adds ~0.8 ms per request here)."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def post_json(self, path: str, body: dict) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        self.sock.sendall(f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        status = int(self.reader.readline().split()[1])
        length = 0
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, self.reader.read(length)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _encode_then_post(embedder, raw: _RawClient, question: str) -> tuple[float, float, int, bytes]:
    """A bare encode of ``question``, then the same question over HTTP: (encode s, request s, status, body),
    so both see the same machine load."""
    t = time.perf_counter()
    embedder.encode_query(question)
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    status, body = raw.post_json("/query", {"question": question, "k": 5})
    return encode_s, time.perf_counter() - t, status, body


async def _raw_client_loop(host: str, port: int, questions, deadline: float, cap, latencies: list,
                           errors: list) -> None:
    """One concurrent client (asyncio, keep-alive): POST /query with the next question until the deadline."""
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and next(cap, None) is not None:
            data = json.dumps({"question": next(questions), "k": 5}).encode()
            started = time.perf_counter()
            writer.write(b"POST /query HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(data) + data)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status.split()[1:2] != [b"200"]:
                errors.append(status.decode(errors="replace").strip())
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


class _StartupCounter:
    """Counts uvicorn's "Application startup complete." lines on a server's stderr (one per worker
    process) in a thread, keeping the last lines for error messages."""

    def __init__(self, stream):
        self.count = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.tail.append(line)
            if "Application startup complete" in line:
                self.count += 1


class _Heartbeat:
    """Prints "still <label>" on stderr every ``every`` seconds while a long, silent call runs."""

    def __init__(self, label: str, every: float = 20.0):
        self.label, self.every = label, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.wait(self.every):
            _log(f"  ... still {self.label} ({time.perf_counter() - started:.0f}s)")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=1)


def _fmt(value, digits: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "n/a"
        if digits is None:
            a = abs(value)
            digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
        return f"{value:,.{digits}f}"
    return str(value)


def _table(title: str, headers: list[str], rows: list[list], notes: list[str] | None = None) -> str:
    """Plain-text table: text columns left-aligned, numeric columns right-aligned."""
    ncol = len(headers)
    def looks_numeric(c) -> bool:
        if not isinstance(c, str):
            return True
        c = c.strip().replace(",", "").rstrip("%").lstrip("+")
        if c in ("", "-", "n/a"):
            return True
        try:
            float(c)
            return True
        except ValueError:
            return False

    numeric = [all(looks_numeric(r[i]) for r in rows) if rows else False for i in range(ncol)]
    cells = [[c if isinstance(c, str) else _fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(row):
        return "  ".join(c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()

    out = [title, "=" * len(title), line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    for note in notes or []:
        out.append(f"  note: {note}")
    return "\n".join(out)


def _mib(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ---------------------------------------------------------------- synthetic data


def _clustered_unit_vectors(n: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``n`` unit vectors around gaussian centres (plus ``n_queries`` fresh draws from the same clusters).

    Centres: standard normal, normalised. Each point: centre + NOISE * N(0, I/dim), normalised
    (cosine to its centre ~0.7). Queries are new points from random centres, so their neighbours are
    members of one cluster, as with real questions near real chunks."""
    rng = np.random.default_rng(seed)
    n_centres = int(min(5_000, max(1_000, n // 200)))
    centres = rng.standard_normal((n_centres, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scale = np.float32(NOISE / math.sqrt(DIM))
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        block = rng.standard_normal((m, DIM), dtype=np.float32)
        block *= scale
        block += centres[rng.integers(0, n_centres, m)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + m] = block
    queries = rng.standard_normal((n_queries, DIM), dtype=np.float32) * scale
    queries += centres[rng.integers(0, n_centres, n_queries)]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return out, queries, n_centres


_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["tra", "pla", "sto", "gri", "mun", "ver"]


def _vocabulary(size: int, seed: int) -> list[str]:
    """``size`` distinct alphabetic pseudo-words of 2-4 syllables."""
    rng = np.random.default_rng(seed)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(2, 5))
        word = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), n))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _zipf_texts(n: int, vocab: list[str], seed: int, words_min: int = 60, words_max: int = 120) -> list[str]:
    """``n`` pseudo-sentences with Zipf(1.0)-distributed words, as long as real chunks (60-120 words)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
    p = 1.0 / (ranks + 2.7)
    p /= p.sum()
    cdf = np.cumsum(p)
    words = np.asarray(vocab, dtype=object)
    lengths = rng.integers(words_min, words_max + 1, n)
    texts: list[str] = []
    step = 20_000
    for start in range(0, n, step):
        block = lengths[start:start + step]
        idx = np.searchsorted(cdf, rng.random(int(block.sum())))
        idx = np.minimum(idx, len(vocab) - 1)
        pos = 0
        for length in block:
            texts.append(" ".join(words[idx[pos:pos + length]]) + ".")
            pos += length
    return texts


def _synthetic_chunks(base: list[str], n: int, seed: int) -> list[str]:
    """``n`` distinct chunk-like texts: the words of real chunks, shuffled (same length distribution)."""
    rng = np.random.default_rng(seed)
    split = [b.split() for b in base if b.strip()]
    out = []
    for i in range(n):
        words = list(split[i % len(split)])
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


# ---------------------------------------------------------------- the benchmark


@dataclass
class Bench:
    args: object
    settings: object
    plan: Plan
    results: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    # shared between sections
    state: object = None
    server: "BackgroundServer | None" = None
    serve_settings: object = None
    chunk_texts: list = field(default_factory=list)
    tmp: Path | None = None

    # -------------------------------------------------------------- driver
    def run(self) -> None:
        started = time.perf_counter()
        cpu0 = _cpu_sample()
        self.tmp = Path(tempfile.mkdtemp(prefix="reportqa-bench-"))
        self.results["meta"] = self._meta()
        try:
            try:
                self._section("ingest", self.section_ingest)
                self._section("encode", self.section_encode)
                self._section("e2e", self.section_e2e)
                self._section("throughput", self.section_throughput)
            finally:
                if self.server is not None:
                    _log("stopping the server")
                    self.server.stop()
                    self.server = None
            self._section("embedding", self.section_embedding)
            self.state = None
            gc.collect()
            self._section("scaling", self.section_scaling)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        total = time.perf_counter() - started
        million_seconds = self.results.get("scaling", {}).get("million_seconds", 0.0) or 0.0
        self.results["meta"].update({
            "total_seconds": round(total, 1),
            "total_seconds_without_1m": round(total - million_seconds, 1),
            "model_load_seconds": round(self._model_load_seconds(), 1),
            "loadavg_end": _loadavg(),
            "others_cpu_share": _others_cpu_share(cpu0, _cpu_sample()),
            "peak_rss_mb": round(_peak_mb(), 1),
        })
        self.results["targets"] = self._targets()

    def _section(self, name: str, func) -> None:
        _log(f"section {name}: start (load average {_loadavg()})")
        started = time.perf_counter()
        cpu0 = _cpu_sample()
        try:
            func()
        except Exception as exc:  # one failing section must not hide the others
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            _log(f"section {name}: FAILED: {detail}")
            traceback.print_exc(file=sys.stderr)
            self.results[name] = {"error": detail}
            self.tables[name] = f"{name}: FAILED ({detail})"
        share = _others_cpu_share(cpu0, _cpu_sample())
        self.results.setdefault(name, {})["section_seconds"] = round(time.perf_counter() - started, 2)
        self.results[name]["others_cpu_share"] = share
        _log(f"section {name}: done in {time.perf_counter() - started:.1f}s"
             + (f" (other processes used {share:.0%} of the CPUs meanwhile)" if share is not None else ""))

    def _meta(self) -> dict:
        import faiss
        import torch

        return {
            "quick": self.plan.quick, "sizes": self.plan.sizes, "million": self.plan.million,
            "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
            "loadavg_start": _loadavg(), "index_dir": str(self.settings.index_dir),
            "model_path": self.settings.resolved_model_path,
            "embed_batch_size": self.settings.embed_batch_size, "exact_search_max": self.settings.exact_search_max,
            "encoder_backend": self.settings.encoder_backend,
            "ingest_encoder_backend": self.settings.ingest_encoder_backend,
            "query_cache_size": self.settings.query_cache_size,
        }

    def _model_load_seconds(self) -> float:
        ingest = self.results.get("ingest", {})
        return float(ingest.get("stages_s", {}).get("model_load", 0.0) or 0.0) + \
            float(ingest.get("service", {}).get("model_load_s", 0.0) or 0.0)

    # -------------------------------------------------------------- 4. ingest, load, start
    def section_ingest(self) -> None:
        from index import IndexUnavailable, build_index, load_current_index, load_embedder
        from ingest import Chunker, ingest_paths
        from service.app import create_app, load_state
        from settings import BUNDLED_REPORT

        res: dict = {}
        build_settings = self.settings.model_copy(update={"index_dir": self.tmp / "index"})
        mem0 = _mem()

        _log("ingest: read + parse + chunk the bundled report")
        t = time.perf_counter()
        chunker = Chunker.from_settings(build_settings)
        t_chunker = time.perf_counter() - t
        t = time.perf_counter()
        result = ingest_paths([BUNDLED_REPORT], chunker)
        t_parse = time.perf_counter() - t
        if result.failures:
            raise RuntimeError(f"bundled report failed to ingest: {result.failures[0].reason}")
        self.chunk_texts = [c.embed_text for c in result.chunks]

        _log("ingest: load the model")
        t = time.perf_counter()
        embedder = load_embedder(build_settings, ingest=True)
        t_model = time.perf_counter() - t

        n_sentences = sum(len(c.sentences) for c in result.chunks)
        _log(f"ingest: embed {len(result.chunks)} chunks + {n_sentences} sentences and write the index")
        last = {}

        def progress(stage, done, total):
            pct = int(100 * done / max(total, 1))
            if pct // 25 != last.get(stage, -1) // 25 or done >= total:
                last[stage] = pct
                _log(f"  {stage}: {done}/{total}")

        t = time.perf_counter()
        build_dir, timings = build_index(build_settings, result, embedder, progress)
        t_build = time.perf_counter() - t
        index_bytes = sum(p.stat().st_size for p in build_dir.rglob("*") if p.is_file())
        res["chunks"] = len(result.chunks)
        res["sentences"] = n_sentences
        res["sections"] = len(result.sections)
        res["index_bytes"] = index_bytes
        res["stages_s"] = {
            "tokenizers_load": round(t_chunker, 3),
            "read_parse_chunk": round(t_parse, 3),
            "model_load": round(t_model, 3),
            "embed": round(timings["embed"], 3),
            "index_build_save": round(timings["index"], 3),
            "metadata_checksums_fsync": round(t_build - timings["embed"] - timings["index"], 3),
            "index_write_total": round(t_build - timings["embed"], 3),
        }
        res["stages_s"]["total"] = round(t_chunker + t_parse + t_model + t_build, 3)
        res["embed_items_per_s"] = round((len(result.chunks) + n_sentences) / max(timings["embed"], 1e-9), 1)
        res["ingest_peak_rss_mb"] = round(_peak_mb(), 1)
        res["ingest_rss_delta_mb"] = _delta(_mem(), mem0)
        del embedder, chunker, result
        gc.collect()

        # which index the server reads: the configured one, else the build just made
        self.serve_settings = self.settings
        try:
            load_current_index(self.settings, verify=False)
            res["served_index"] = str(self.settings.index_dir)
        except IndexUnavailable as exc:
            _log(f"no usable index in {self.settings.index_dir} ({exc}); serving the bench's own build")
            self.serve_settings = build_settings
            res["served_index"] = f"{build_settings.index_dir} (bench build; configured index unusable: {exc})"

        _log("index load (load_current_index)")
        loads = {}
        for label, kwargs in (("verify", {"verify": True}), ("no_verify", {"verify": False}),
                              ("mmap_no_verify", {"verify": False, "mmap": True})):
            times = []
            for _ in range(1 if self.plan.quick else 3):
                t = time.perf_counter()
                loaded = load_current_index(self.serve_settings, **kwargs)
                times.append(time.perf_counter() - t)
                del loaded
            loads[label] = round(float(np.median(times)) * 1000, 2)
        res["index_load_ms"] = loads

        _log("service start: load_state + create_app + uvicorn until /readyz is 200")
        gc.collect()
        mem_before = _mem()
        t0 = time.perf_counter()
        state = load_state(self.serve_settings)
        t1 = time.perf_counter()
        app = create_app(state)
        t2 = time.perf_counter()
        from service.app import BackgroundServer

        self.server = BackgroundServer(app, _free_port()).start()
        t3 = time.perf_counter()
        mem_after = _mem()
        self.state = state
        res["service"] = {
            "start_to_ready_s": round(t3 - t0, 3),
            "load_state_s": round(t1 - t0, 3),
            "model_load_s": round(state.embedder.load_seconds, 3),
            "create_app_s": round(t2 - t1, 3),
            "server_start_to_ready_s": round(t3 - t2, 3),
            "rss_delta_mb": _delta(mem_after, mem_before),
            "rss_after_mb": round(mem_after["rss_mb"], 1),
            "url": self.server.url,
        }
        res["peak_rss_mb_after_start"] = round(_peak_mb(), 1)
        self.results["ingest"] = res

        s = res["stages_s"]
        rows = [
            ["tokenizers load (tiktoken + word pieces)", s["tokenizers_load"] * 1000, ""],
            ["read + parse + chunk", s["read_parse_chunk"] * 1000, f"{res['chunks']} chunks, {res['sections']} sections"],
            ["model load", s["model_load"] * 1000, "first load in this process (includes torch / ST imports)"],
            ["embed (chunks + sentences)", s["embed"] * 1000, f"{res['chunks']} + {res['sentences']} texts, "
                                                             f"{res['embed_items_per_s']:.1f} texts/s"],
            ["index build + save (FAISS, BM25)", s["index_build_save"] * 1000, ""],
            ["metadata, checksums, fsync, switch", s["metadata_checksums_fsync"] * 1000, ""],
            ["= index write", s["index_write_total"] * 1000, f"{index_bytes / 2**20:.2f} MiB on disk"],
            ["= ingest total", s["total"] * 1000, ""],
            ["index load, verified (load_current_index)", loads["verify"], "checksums every file"],
            ["index load, verify=False", loads["no_verify"], ""],
            ["index load, verify=False, mmap=True", loads["mmap_no_verify"], ""],
            ["service start-to-ready", res["service"]["start_to_ready_s"] * 1000,
             "load_state + create_app + uvicorn + warm-up, until /readyz 200"],
            ["  of which load_state", res["service"]["load_state_s"] * 1000,
             f"model load {res['service']['model_load_s'] * 1000:,.0f} ms (second load: imports and files warm)"],
            ["  of which uvicorn start + warm-up", res["service"]["server_start_to_ready_s"] * 1000, ""],
        ]
        mem_rows = [
            ["peak RSS after ingest (ru_maxrss)", _mib(res["ingest_peak_rss_mb"]), ""],
            ["RSS delta of the server (load_state..ready)", _mib(res["service"]["rss_delta_mb"]["rss_mb"]),
             f"anon {res['service']['rss_delta_mb']['anon_mb']:+.0f}, file {res['service']['rss_delta_mb']['file_mb']:+.0f}"],
            ["RSS with the server ready", _mib(res["service"]["rss_after_mb"]), ""],
            ["peak RSS so far (ru_maxrss)", _mib(res["peak_rss_mb_after_start"]), ""],
        ]
        self.tables["ingest"] = (
            _table("4. Ingest of the bundled report, index load, service start", ["stage", "ms", "detail"], rows,
                   [f"served index: {res['served_index']}",
                    "a fresh `reportqa serve` process also pays the first model load (row 'model load') "
                    "before it is ready"])
            + "\n\n" + _table("4b. Memory", ["what", "MiB", "detail"], mem_rows)
        )

    # -------------------------------------------------------------- 1. bare encode
    def section_encode(self) -> None:
        embedder = self._embedder()
        embedder.encode_query("warm-up question")
        times = []
        total = len(QUESTIONS) * self.plan.encode_repeats
        cpu0 = time.process_time()
        for r in range(self.plan.encode_repeats):
            for q in QUESTIONS:
                t = time.perf_counter()
                embedder.encode_query(q)
                times.append(time.perf_counter() - t)
            _log(f"  encode_query: {len(times)}/{total}")
        cpu_ms = (time.process_time() - cpu0) / len(times) * 1000
        st = _stats(times)

        # What micro-batching would give: several questions per forward pass.
        reps = 3 if self.plan.quick else 8
        batch = (QUESTIONS * (16 // len(QUESTIONS) + 1))[:16]
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            embedder.encode(batch, batch_size=16)
            ts.append((time.perf_counter() - t) / 16)
        b16 = _stats(ts)
        cpus = os.cpu_count() or 1
        ceiling = cpus * 1000 / cpu_ms if cpu_ms else None
        self.results["encode"] = {"questions": len(QUESTIONS), "repeats": self.plan.encode_repeats,
                                  "backend": embedder.backend, "threads": self.settings.encoder_threads, **st,
                                  "cpu_ms_per_question": round(cpu_ms, 2), "batch16_per_question": b16,
                                  "requests_per_s_ceiling": round(ceiling, 1) if ceiling else None}
        rows = [
            [f"encode_query, {embedder.backend} (product)", st["n"], st["median_ms"], st["p95_ms"], st["p99_ms"],
             st["max_ms"], cpu_ms],
            ["what-if: 16 per call (per question)", b16["n"], b16["median_ms"], b16["p95_ms"], b16["p99_ms"],
             b16["max_ms"], ""],
        ]
        self.tables["encode"] = _table(
            "1. Bare query encode (embedder.encode_query, model alone)",
            ["what", "n", "median ms", "p95 ms", "p99 ms", "max ms", "CPU ms"], rows,
            [f"{len(QUESTIONS)} distinct questions x {self.plan.encode_repeats} repeat(s); CPU ms = process CPU "
             f"time per question (all threads)",
             f"encoding alone caps a {cpus}-core machine at ~{_fmt(ceiling, 0)} questions/s "
             "(cores x 1000 / CPU ms), before any search or HTTP work"],
        )

    def _embedder(self):
        if self.state is not None:
            return self.state.embedder
        from index import load_embedder

        self.state = type("S", (), {})()
        self.state.embedder = load_embedder(self.settings)
        return self.state.embedder

    # -------------------------------------------------------------- 2. end to end
    def section_e2e(self) -> None:
        import httpx

        from index import Query

        if self.server is None:
            raise RuntimeError("no server (section 4 failed)")
        counter = itertools.count()

        def distinct() -> str:
            n = next(counter)
            return f"{QUESTIONS[n % len(QUESTIONS)]} #{n}"

        with httpx.Client(base_url=self.server.url, timeout=60) as client:
            for _ in range(5):  # warm-up (connection, first requests)
                client.post("/query", json={"question": distinct(), "k": 5}).raise_for_status()
            # Interleaved: a bare encode, then the same (never asked) question over HTTP, and now and
            # then an in-process search, so all three see the same machine load at the same time.
            embedder = self.state.embedder
            retriever = self.state.retriever
            lat, took, bare, inproc, errors = [], [], [], [], 0
            raw_lat = []
            host, port = self.server.url.rsplit("//", 1)[1].split(":")
            raw = _RawClient(host, int(port))
            n = self.plan.e2e_distinct
            every = max(1, n // self.plan.inproc_searches)
            for i in range(n):
                encode_s, post_s, status, body = _encode_then_post(embedder, raw, distinct())
                bare.append(encode_s)
                raw_lat.append(post_s)
                if status == 200:
                    took.append(json.loads(body)["took_ms"] / 1000)
                else:
                    errors += 1
                t = time.perf_counter()
                r = client.post("/query", json={"question": distinct(), "k": 5})
                lat.append(time.perf_counter() - t)
                errors += r.status_code != 200
                if i % every == 0:
                    q2 = distinct()
                    t = time.perf_counter()
                    retriever.search(Query(q2, 5, RetrievalMode.HYBRID))
                    inproc.append(time.perf_counter() - t)
                if (i + 1) % max(1, n // 4) == 0:
                    _log(f"  distinct questions: {i + 1}/{n}")
            floor = []  # HTTP + framework with no work: the async /healthz route
            for _ in range(self.plan.e2e_cached):
                t = time.perf_counter()
                r = client.get("/healthz")
                floor.append(time.perf_counter() - t)
                errors += r.status_code != 200
            cached_q = QUESTIONS[0]
            client.post("/query", json={"question": cached_q, "k": 5}).raise_for_status()  # fill the cache
            cached = []
            for _ in range(self.plan.e2e_cached):
                t = time.perf_counter()
                r = client.post("/query", json={"question": cached_q, "k": 5})
                cached.append(time.perf_counter() - t)
                errors += r.status_code != 200
            raw.close()
        fp32 = self._e2e_full_precision(distinct) if self.state.embedder.backend == EncoderEngine.ONNX_INT8 else None

        encode = self.results.get("encode", {})
        s_lat, s_took, s_cached, s_inproc, s_bare = _stats(lat), _stats(took), _stats(cached), _stats(inproc), \
            _stats(bare)
        s_raw = _stats(raw_lat)
        bare_median = s_bare["median_ms"]
        ratio = round(s_raw["median_ms"] / bare_median, 3) if bare_median else None
        ratio_httpx = round(s_lat["median_ms"] / bare_median, 3) if bare_median else None
        section1 = encode.get("median_ms")
        self.results["e2e"] = {
            "distinct": s_raw, "distinct_httpx": s_lat, "ratio_httpx_p50_to_bare_encode": ratio_httpx,
            "server_took": s_took, "cached_repeat": s_cached, "inprocess_search": s_inproc,
            "bare_encode_interleaved": s_bare, "healthz": _stats(floor), "errors": errors, "bare_encode_median_ms": bare_median,
            "ratio_p50_to_bare_encode": ratio, "section1_encode_median_ms": section1,
            "ratio_p50_to_section1_encode": round(s_raw["median_ms"] / section1, 3) if section1 else None,
            "what_if_fp32": fp32,
        }
        rows = [
            ["POST /query, distinct questions (socket client)", s_raw["n"], s_raw["median_ms"], s_raw["p95_ms"],
             s_raw["p99_ms"]],
            ["POST /query, distinct questions (httpx client)", s_lat["n"], s_lat["median_ms"], s_lat["p95_ms"],
             s_lat["p99_ms"]],
            ["  server-side took_ms (same requests)", s_took["n"], s_took["median_ms"], s_took["p95_ms"], s_took["p99_ms"]],
            ["Retriever.search in-process (no HTTP)", s_inproc["n"], s_inproc["median_ms"], s_inproc["p95_ms"],
             s_inproc["p99_ms"]],
            ["POST /query, cached repeat", s_cached["n"], s_cached["median_ms"], s_cached["p95_ms"], s_cached["p99_ms"]],
            ["GET /healthz (HTTP + middleware floor)", len(floor), *(self.results["e2e"]["healthz"][k] for k in
                                                                    ("median_ms", "p95_ms", "p99_ms"))],
            ["bare encode, interleaved with the above", s_bare["n"], bare_median, s_bare["p95_ms"], s_bare["p99_ms"]],
            ["bare encode (section 1)", encode.get("n"), section1, encode.get("p95_ms"), encode.get("p99_ms")],
        ]
        if fp32:
            rows += [["what-if fp32 questions (--encoder onnx): POST /query", fp32["e2e"]["n"],
                      fp32["e2e"]["median_ms"], fp32["e2e"]["p95_ms"], fp32["e2e"]["p99_ms"]],
                     ["  bare fp32 encode, interleaved", fp32["bare"]["n"], fp32["bare"]["median_ms"],
                      fp32["bare"]["p95_ms"], fp32["bare"]["p99_ms"]]]
        self.tables["e2e"] = _table(
            "2. End-to-end POST /query over HTTP, one client", ["what", "n", "p50 ms", "p95 ms", "p99 ms"], rows,
            [f"ratio p50(POST /query, socket client) / median(interleaved bare encode) = {_fmt(ratio, 2)} (target <= "
             f"{TARGET_E2E_RATIO}); with the httpx client {_fmt(ratio_httpx, 2)}; against section 1's median: "
             f"{_fmt(self.results['e2e']['ratio_p50_to_section1_encode'], 2)}",
             f"errors: {errors}; k=5, mode hybrid; each distinct question = a report question + ' #<counter>'"]
            + ([f"what-if: the same server with fp32 questions: ratio {_fmt(fp32['ratio'], 2)}; the work around the "
                f"encode costs about the same, the int8 encode is {_fmt(fp32['bare']['median_ms'] / bare_median, 2)}x "
                "faster"] if fp32 and bare_median else []),
        )

    def _e2e_full_precision(self, distinct) -> dict:
        """What-if: the same index served with fp32 questions (the int8 encode is so short that the
        fixed cost of HTTP and search weighs more in the ratio); interleaved the same way."""
        from service.app import BackgroundServer, create_app, load_state

        n = max(20, self.plan.e2e_distinct // 2)
        _log(f"  what-if: fp32 questions, {n} distinct questions")
        embedder = self.state.embedder.full_precision()
        server = BackgroundServer(create_app(load_state(self.serve_settings, embedder)), _free_port()).start()
        try:
            host, port = server.url.rsplit("//", 1)[1].split(":")
            raw = _RawClient(host, int(port))
            for _ in range(5):
                raw.post_json("/query", {"question": distinct(), "k": 5})
            bare, e2e = [], []
            for _ in range(n):
                encode_s, post_s, status, _ = _encode_then_post(embedder, raw, distinct())
                bare.append(encode_s)
                e2e.append(post_s)
                if status != 200:
                    raise RuntimeError(f"what-if fp32 server answered {status}")
            raw.close()
        finally:
            server.stop()
        s_bare, s_e2e = _stats(bare), _stats(e2e)
        return {"bare": s_bare, "e2e": s_e2e, "ratio": round(s_e2e["median_ms"] / s_bare["median_ms"], 3)}

    # -------------------------------------------------------------- 3. throughput
    def section_throughput(self) -> None:
        """Concurrent clients against `reportqa serve` in its own process(es), as deployed: the clients
        (asyncio sockets in a child process) share the 2 cores but not the server's Python lock."""
        configs = [("1 worker (default)", 1, self.settings.encoder_threads)]
        if not self.plan.quick:
            configs.append(("2 workers x 1 thread", 2, 1))
        first_question = 1_000_000  # never collides with section 2's questions
        results = []
        for label, workers, threads in configs:
            with self._server_process(workers, threads) as port:
                _log(f"  server: {label}")
                for clients in self.plan.levels:
                    level = self._load_level(port, clients, first_question)
                    first_question += level["requests"] + clients
                    results.append({"server": label, "workers": workers, "encoder_threads": threads, **level})
                    _log(f"  {label}, {clients} client(s): {level['rps']} req/s, p50 {level.get('median_ms')} ms, "
                         f"errors {level['errors']}")
        self.results["throughput"] = {"levels": results}
        rows = [[lv["server"], lv["clients"], lv["requests"], lv["seconds"], lv["rps"], lv.get("median_ms"),
                 lv.get("p99_ms"), lv["errors"]] for lv in results]
        notes = ["distinct questions (no cache hits); each level runs for "
                 + (f"{self.plan.level_seconds:.0f} s" if self.plan.level_seconds else f"{self.plan.level_requests} requests")
                 + "; the server is `reportqa serve` in its own process(es); clients are asyncio keep-alive "
                 "sockets in a separate lean process (python -m eval.bench load), on the same 2 cores"]
        for lv in results:
            if lv["error_samples"]:
                notes.append(f"{lv['server']}, {lv['clients']} clients, errors e.g.: {'; '.join(lv['error_samples'])}")
        self.tables["throughput"] = _table(
            "3. Throughput, concurrent HTTP clients (POST /query)",
            ["server", "clients", "requests", "seconds", "req/s", "p50 ms", "p99 ms", "errors"], rows, notes)

    def _load_level(self, port: int, clients: int, first_question: int) -> dict:
        """One load level, driven from a separate lean process (``python -m eval.bench load``): in this
        process, full of the ingest's objects and models, the clients themselves ran slower (measured
        one-client p50 8.9 ms here vs 6.3 ms from a fresh process against the same server)."""
        import subprocess

        seconds = self.plan.level_seconds or 3600.0
        out = subprocess.run(
            [sys.executable, "-m", "eval.bench", "load", str(port), str(clients), str(seconds),
             str(self.plan.level_requests), str(first_question)],
            cwd=str(Path(__file__).parent.parent), capture_output=True, text=True, timeout=seconds + 300)
        if out.returncode != 0:
            raise RuntimeError(f"load client failed: {out.stderr[-500:]}")
        got = json.loads(out.stdout)
        latencies, errors, wall = got["latencies"], got["errors"], got["seconds"]
        return {"clients": clients, "requests": len(latencies), "seconds": round(wall, 3),
                "rps": round(len(latencies) / wall, 2) if wall > 0 else None, "errors": len(errors),
                "error_samples": errors[:3], **_stats(latencies)}

    @contextlib.contextmanager
    def _server_process(self, workers: int, threads: int):
        """`reportqa serve` on the benchmark's index in a child process; yields its port once /readyz is 200."""
        import subprocess

        import httpx

        from service.cli import settings_environment

        port = _free_port()
        env = {**os.environ, **settings_environment(self.serve_settings), "REPORTQA_PORT": str(port),
               "REPORTQA_WORKERS": str(workers), "REPORTQA_ENCODER_THREADS": str(threads)}
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--log-level", "info"], env=env,
                                cwd=str(Path(__file__).parent.parent), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True, text=True)
        started = _StartupCounter(proc.stderr)
        try:
            deadline = time.perf_counter() + 180
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"server did not start: {''.join(started.tail)[-500:]}")
                time.sleep(0.2)
            # /readyz answers as soon as one worker is up; connections made before the others are
            # ready all go to it and stay there (keep-alive): measured, 16:0 splits and 124 req/s.
            while started.count < workers:
                if proc.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"workers did not start: {''.join(started.tail)[-500:]}")
                time.sleep(0.2)
            for _ in range(3 * workers):  # warm each worker's first request
                httpx.post(f"http://127.0.0.1:{port}/query", json={"question": "warm-up question"}, timeout=60)
            yield port
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    # -------------------------------------------------------------- 5. embedding throughput
    def section_embedding(self) -> None:
        from index import load_embedder

        embedder = load_embedder(self.settings, ingest=True)  # the engine ingest uses
        base = self.chunk_texts or QUESTIONS
        n = self.plan.embed_n
        texts = _synthetic_chunks(base, n, seed=5)
        batch = self.settings.embed_batch_size
        sample = texts[: min(len(texts), 500)]
        pieces = [min(p, embedder.max_seq_length) for p in embedder.count_pieces(sample)]
        budget = self.plan.embed_budget_s
        slice_size = batch * 10
        done = 0
        _log(f"  embedding {n} synthetic chunks, batch {batch}" + (f", time budget {budget:.0f}s" if budget else ""))
        t0 = time.perf_counter()
        while done < n:
            part = texts[done:done + slice_size]
            embedder.encode(part, batch)
            done += len(part)
            elapsed = time.perf_counter() - t0
            _log(f"  embedded {done}/{n} ({done / elapsed:.1f} chunks/s)")
            if budget and elapsed > budget and done < n:
                _log(f"  stopping early: over the {budget:.0f}s budget that keeps the full run under 15 minutes")
                break
        elapsed = time.perf_counter() - t0
        rate = done / elapsed
        res = {"requested": n, "encoded": done, "seconds": round(elapsed, 2), "chunks_per_s": round(rate, 2),
               "batch_size": batch, "encoder_backend": embedder.backend, "mean_word_pieces": round(float(np.mean(pieces)), 1),
               "max_seq_length": embedder.max_seq_length, "stopped_early": done < n,
               "projected_seconds_for_requested": round(n / rate, 1)}
        self.results["embedding"] = res
        notes = [f"texts: words of the report's real chunks, shuffled; mean {res['mean_word_pieces']} word pieces "
                 f"(max_seq_length {res['max_seq_length']}); encoder backend {embedder.backend} (the ingest one)"]
        if res["stopped_early"]:
            notes.append(f"stopped after {done:,} of {n:,} (time budget {budget:.0f}s); "
                         f"{n:,} would take ~{res['projected_seconds_for_requested']:,.0f}s at this rate")
        self.tables["embedding"] = _table(
            "5. Embedding throughput (ingest-style batched encode of synthetic chunks)",
            ["chunks", "batch", "seconds", "chunks/s", "ms/chunk"],
            [[done, batch, res["seconds"], res["chunks_per_s"], 1000 / rate]], notes)

    # -------------------------------------------------------------- 6. scaling
    def section_scaling(self) -> None:
        res = {"sizes": [], "noise": NOISE, "dim": DIM, "queries": self.plan.queries}
        self.results["scaling"] = res
        million_seconds = 0.0
        for n in self.plan.sizes:
            started = time.perf_counter()
            try:
                entry = self._scale_dense(n)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                entry = {"n": n, "error": f"{type(exc).__name__}: {exc}"}
            gc.collect()
            try:
                entry["bm25"] = self._scale_bm25(n)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                entry["bm25"] = {"error": f"{type(exc).__name__}: {exc}"}
            gc.collect()
            entry["seconds"] = round(time.perf_counter() - started, 1)
            if n >= 1_000_000 and self.plan.million:
                million_seconds += entry["seconds"]
            res["sizes"].append(entry)
        res["million_seconds"] = round(million_seconds, 1)
        self.tables["scaling"] = self._scaling_tables(res)

    def _scale_dense(self, n: int) -> dict:
        import faiss

        from index.backends.base import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
        from index.backends.faiss import DenseIndex

        nq = self.plan.queries
        _log(f"scaling {n:,}: generating clustered unit vectors")
        t = time.perf_counter()
        vectors, queries, n_centres = _clustered_unit_vectors(n, nq, seed=n)
        entry: dict = {"n": n, "centres": n_centres, "generate_s": round(time.perf_counter() - t, 2)}
        folder = self.tmp / f"scale-{n}"
        folder.mkdir(parents=True, exist_ok=True)

        # the kind the product picks at this size, and both kinds forced
        entry["product_kind"] = "flat" if n <= self.settings.exact_search_max else "hnsw"
        kinds = {}
        truth = None
        for kind, exact_max in (("flat", max(n, self.settings.exact_search_max)), ("hnsw", 0)):
            gc.collect()
            m0 = _mem()
            _log(f"scaling {n:,}: building {kind}" + (f" (M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION})"
                                                         if kind == "hnsw" else ""))
            t = time.perf_counter()
            with _Heartbeat(f"building {kind} over {n:,} vectors"):
                index = DenseIndex.build(vectors, exact_max)
            build_s = time.perf_counter() - t
            m1 = _mem()
            assert index.kind == kind, (index.kind, kind)
            if kind == "flat":  # exact ground truth, batched
                _, truth = index.index.search(queries, 10)
            times, found = [], []
            for q in queries:
                t = time.perf_counter()
                _, ids = index.search(q, 10)
                times.append(time.perf_counter() - t)
                found.append(ids)
            recall = float(np.mean([len(set(f.tolist()) & set(g.tolist())) / 10 for f, g in zip(found, truth)]))
            threads = faiss.omp_get_max_threads()
            times_1 = []
            try:  # what-if: FAISS limited to one OpenMP thread (one query per request needs no more)
                faiss.omp_set_num_threads(1)
                for q in queries:
                    t = time.perf_counter()
                    index.search(q, 10)
                    times_1.append(time.perf_counter() - t)
            finally:
                faiss.omp_set_num_threads(threads)
            path = folder / f"{kind}.faiss"
            t = time.perf_counter()
            index.save(path)
            save_s = time.perf_counter() - t
            info = {
                "build_s": round(build_s, 3), "save_s": round(save_s, 3), "file_mb": round(path.stat().st_size / 2**20, 1),
                "rss_delta_mb": _delta(m1, m0), "query": _stats(times), "query_1thread": _stats(times_1),
                "faiss_threads": threads, "recall_at_10": round(recall, 4),
                "raw_vectors_mb": round(n * DIM * 4 / 2**20, 1),
            }
            if kind == "flat":
                nn = index.index.search(queries, 1)[0][:, 0]
                entry["nn_cosine_median"] = round(float(np.median(nn)), 3)
            if kind == "hnsw":
                info.update({"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH})
            del index
            gc.collect()
            info.update(self._load_checks(path, kind, queries, found, n))
            kinds[kind] = info
            _log(f"scaling {n:,}: {kind}: build {build_s:.1f}s, median {info['query']['median_ms']:.3f} ms, "
                 f"recall@10 {recall:.3f}, file {info['file_mb']} MiB, mmap: {info['mmap']['verdict']}")
        entry.update(kinds)
        del vectors, queries
        shutil.rmtree(folder, ignore_errors=True)
        return entry

    def _load_checks(self, path: Path, kind: str, queries: np.ndarray, expected: list, n: int) -> dict:
        """DenseIndex.load in RAM vs with mmap=True; is the mmap load really memory-mapped? Also FAISS's
        IO_FLAG_MMAP_IFC (zero-copy mmap of the vectors), the flag that does map HNSW/flat storage."""
        import faiss

        from index.backends.faiss import DenseIndex

        out: dict = {}
        file_mb = path.stat().st_size / 2**20
        sub = queries[: min(len(queries), 50)]

        def check(load) -> dict:
            gc.collect()
            m0 = _mem()
            t = time.perf_counter()
            try:
                index = load()
            except Exception as exc:  # noqa: BLE001 - report, don't crash
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            load_s = time.perf_counter() - t
            mapped = _mapped(path)
            times, same = [], 0
            for q, want in zip(sub, expected):
                t = time.perf_counter()
                _, ids = index.search(q, 10)
                times.append(time.perf_counter() - t)
                same += int(np.array_equal(ids, want))
            m1 = _mem()
            del index
            gc.collect()
            return {"ok": True, "load_s": round(load_s, 3), "rss_delta_mb": _delta(m1, m0), "file_mapped": mapped,
                    "query": _stats(times), "same_results": same == len(sub)}

        out["load_ram"] = check(lambda: DenseIndex.load(path, kind, mmap=False))
        out["load_mmap"] = check(lambda: DenseIndex.load(path, kind, mmap=True))
        ifc = getattr(faiss, "IO_FLAG_MMAP_IFC", None)
        if ifc is not None:
            out["load_mmap_ifc"] = check(lambda: DenseIndex(faiss.read_index(str(path), ifc | faiss.IO_FLAG_READ_ONLY),
                                                            kind))
        mm = out["load_mmap"]
        if not mm["ok"]:
            verdict = f"FAILED: {mm['error']}"
        elif mm["file_mapped"] is None:  # no /proc: judge by anonymous memory growth
            verdict = "NOT mapped (read into RAM)" if mm["rss_delta_mb"]["anon_mb"] > 0.5 * file_mb else "mapped?"
        else:
            verdict = "mapped" if mm["file_mapped"] else "NOT mapped: FAISS read it into RAM"
        out["mmap"] = {"verdict": verdict, "file_mb": round(file_mb, 1),
                       "ifc_mapped": out.get("load_mmap_ifc", {}).get("file_mapped")}
        return out

    def _scale_bm25(self, n: int) -> dict:
        from index.backends.faiss import LexicalIndex

        vocab = _vocabulary(20_000, seed=7)
        _log(f"scaling {n:,}: generating {n:,} Zipf pseudo-sentences for BM25")
        t = time.perf_counter()
        texts = _zipf_texts(n, vocab, seed=n + 1)
        gen_s = time.perf_counter() - t
        gc.collect()
        m0 = _mem()
        _log(f"scaling {n:,}: LexicalIndex.build")
        t = time.perf_counter()
        with _Heartbeat(f"building BM25 over {n:,} texts"):
            lexical = LexicalIndex.build(texts, self.settings.bm25_k1, self.settings.bm25_b)
        build_s = time.perf_counter() - t
        m1 = _mem()
        rng = np.random.default_rng(n + 2)
        questions = []
        for _ in range(self.plan.queries):
            k = int(rng.integers(3, 7))
            words = [vocab[i] for i in rng.integers(20, 5_000, k)]  # mid-frequency content words
            questions.append("what about " + " ".join(words) + "?")
        scores_t, top_t = [], []
        depth = self.settings.candidates
        for q in questions:
            t = time.perf_counter()
            scores = lexical.scores(q)
            t1 = time.perf_counter()
            top = np.argpartition(-scores, depth - 1)[:depth] if len(scores) > depth else np.arange(len(scores))
            top[np.argsort(-scores[top], kind="stable")]  # what FaissBackend.rank does with them
            t2 = time.perf_counter()
            scores_t.append(t1 - t)
            top_t.append(t2 - t)
        del texts, lexical
        gc.collect()
        res = {"generate_s": round(gen_s, 2), "build_s": round(build_s, 3), "rss_delta_mb": _delta(m1, m0),
               "scores_query": _stats(scores_t), "scores_plus_topk_query": _stats(top_t),
               "vocabulary": len(vocab)}
        _log(f"scaling {n:,}: bm25 build {build_s:.1f}s, median scores {res['scores_query']['median_ms']:.2f} ms, "
             f"+top-k {res['scores_plus_topk_query']['median_ms']:.2f} ms")
        return res

    def _scaling_tables(self, res: dict) -> str:
        dense_rows, mem_rows, bm25_rows = [], [], []
        for e in res["sizes"]:
            n = e["n"]
            if "error" in e:
                dense_rows.append([f"{n:,}", "error", e["error"], "", "", "", "", ""])
                continue
            for kind in ("flat", "hnsw"):
                k = e[kind]
                label = kind + (" *" if e["product_kind"] == kind else "")
                dense_rows.append([f"{n:,}", label, k["build_s"], k["query"]["median_ms"], k["query"]["p95_ms"],
                                   k["query_1thread"]["median_ms"], k["recall_at_10"], k["file_mb"]])
                mm = k["load_mmap"]
                ifc = k.get("load_mmap_ifc", {})
                mem_rows.append([
                    f"{n:,}", kind, _mib(k["rss_delta_mb"]["rss_mb"]),
                    _mib(k["load_ram"].get("rss_delta_mb", {}).get("anon_mb")),
                    _mib(mm.get("rss_delta_mb", {}).get("anon_mb")) if mm.get("ok") else "error",
                    k["mmap"]["verdict"],
                    (f"anon {ifc['rss_delta_mb']['anon_mb']:+.0f} / file {ifc['rss_delta_mb']['file_mb']:+.0f}"
                     + ("" if ifc.get("same_results") else " (results differ!)")) if ifc.get("ok") else
                    (ifc.get("error", "-") if ifc else "-"),
                ])
            b = e.get("bm25", {})
            if "error" in b:
                bm25_rows.append([f"{n:,}", "error", b["error"], "", ""])
            else:
                bm25_rows.append([f"{n:,}", b["build_s"], b["scores_query"]["median_ms"],
                                  b["scores_plus_topk_query"]["median_ms"], _mib(b["rss_delta_mb"]["rss_mb"])])
        notes = [f"synthetic: {DIM}-d unit vectors around 1,000-5,000 gaussian centres (noise {NOISE}), "
                 f"{res['queries']} queries drawn from the same clusters; recall@10 vs exact search",
                 "* = the kind the product builds at this size (exact_search_max "
                 f"{self.settings.exact_search_max:,}); query = DenseIndex.search(q, 10), one query at a time"]
        nn = [f"{e['n']:,}: {e['nn_cosine_median']}" for e in res["sizes"] if "nn_cosine_median" in e]
        if nn:
            notes.append("median cosine query -> nearest neighbour: " + ", ".join(nn))
        notes.append("p50 1-thr = the same queries with FAISS limited to 1 OpenMP thread (what-if; the product "
                     f"uses FAISS's default, {self.results['meta']['faiss_threads']} here)")
        out = _table("6. Scaling: dense index (FAISS)", ["vectors", "kind", "build s", "p50 ms", "p95 ms",
                                                         "p50 1-thr", "recall@10", "file MiB"], dense_rows, notes)
        out += "\n\n" + _table(
            "6b. Scaling: dense index memory (MiB) and memory-mapped load",
            ["vectors", "kind", "RSS build", "anon load", "anon mmap load", "DenseIndex.load(mmap=True)",
             "IO_FLAG_MMAP_IFC load"], mem_rows,
            ["RSS build = RSS growth while building; anon load = anonymous RSS growth after DenseIndex.load "
             "(+50 queries); the product's mmap flags are IO_FLAG_MMAP|IO_FLAG_READ_ONLY",
             "IO_FLAG_MMAP_IFC column: FAISS's zero-copy mmap of the vector storage (not used by the product)"])
        out += "\n\n" + _table(
            "6c. Scaling: BM25 (LexicalIndex over Zipf pseudo-sentences, 20k-word vocabulary)",
            ["texts", "build s", "p50 scores ms", "p50 +top-k ms", "RSS build MiB"], bm25_rows,
            ["texts of 60-120 words; questions of 3-6 mid-frequency words; '+top-k' adds the partial sort "
             "(argpartition) FaissBackend.rank does"])
        return out

    # -------------------------------------------------------------- targets
    def _targets(self) -> list[dict]:
        targets = []

        def add(name, status, value, reason):
            targets.append({"target": name, "status": status, "value": value, "reason": reason})

        e2e = self.results.get("e2e", {})
        ratio = e2e.get("ratio_p50_to_bare_encode")
        if ratio is None:
            add(f"POST /query p50 / bare encode median <= {TARGET_E2E_RATIO}", "not measured", None,
                e2e.get("error", "section 2 did not run"))
        else:
            met = ratio <= TARGET_E2E_RATIO
            add(f"POST /query p50 / bare encode median <= {TARGET_E2E_RATIO}", "met" if met else "NOT met", ratio,
                f"p50 {e2e['distinct']['median_ms']:.1f} ms vs interleaved encode {e2e['bare_encode_median_ms']:.1f} ms; "
                f"in-process search {e2e['inprocess_search']['median_ms']:.1f} ms, server took_ms "
                f"{e2e['server_took']['median_ms']:.1f} ms; GET /healthz {e2e['healthz']['median_ms']:.1f} ms"
                + (f"; with fp32 questions the ratio is {e2e['what_if_fp32']['ratio']:.2f}" if e2e.get("what_if_fp32")
                   else ""))

        ceiling = self.results.get("encode", {}).get("requests_per_s_ceiling")
        all_levels = self.results.get("throughput", {}).get("levels", [])
        at16 = [lv for lv in all_levels if lv["clients"] == 16]
        levels = {(lv["server"], lv["clients"]): lv for lv in all_levels}
        if at16:
            lv = max(at16, key=lambda x: x["rps"] or 0)
            met = lv["rps"] >= TARGET_RPS_AT_16
            add(f">= {TARGET_RPS_AT_16:.0f} req/s at 16 clients", "met" if met else "NOT met", lv["rps"],
                f"{lv['server']}: {lv['requests']} requests in {lv['seconds']:.1f}s, p50 {_fmt(lv.get('median_ms'))} ms"
                + ("" if met or not ceiling else f"; encoding alone caps this machine near {ceiling:.0f} questions/s "
                   "(section 1), before search and HTTP"))
        else:
            add(f">= {TARGET_RPS_AT_16:.0f} req/s at 16 clients", "not measured", None,
                "quick mode runs 1 and 4 clients only" if self.plan.quick else "section 3 did not run")
        if levels:
            errs = sum(lv["errors"] for lv in levels.values())
            add("no errors under concurrency", "met" if errs == 0 else "NOT met", errs,
                f"levels {', '.join(f'{c} ({w})' for w, c in levels)}" + ("" if errs == 0 else
                "; " + "; ".join(s for lv in levels.values() for s in lv["error_samples"][:1])))

        sizes = {e["n"]: e for e in self.results.get("scaling", {}).get("sizes", [])}
        big = sizes.get(1_000_000)
        names = (f"1M: HNSW median query <= {TARGET_1M_MS:.0f} ms", f"1M: HNSW recall@10 >= {TARGET_1M_RECALL}",
                 f"1M: vector index resident <= {TARGET_1M_MEMORY_MB / 1024:.0f} GiB")
        if big is None or "hnsw" not in big:
            why = "run with --million" if big is None else big.get("error", "1M case failed")
            for name in names:
                add(name, "not measured", None, why)
        else:
            h = big["hnsw"]
            med = h["query"]["median_ms"]
            add(names[0], "met" if med <= TARGET_1M_MS else "NOT met", med, f"p95 {h['query']['p95_ms']} ms, "
                f"efSearch {h['ef_search']}")
            add(names[1], "met" if h["recall_at_10"] >= TARGET_1M_RECALL else "NOT met", h["recall_at_10"],
                f"{self.plan.queries} queries vs exact search")
            resident = max(h["rss_delta_mb"]["rss_mb"], h["load_ram"].get("rss_delta_mb", {}).get("rss_mb", 0.0),
                           h["file_mb"])
            add(names[2], "met" if resident <= TARGET_1M_MEMORY_MB else "NOT met", round(resident, 1),
                f"MiB = max(RSS growth building {h['rss_delta_mb']['rss_mb']:.0f}, loading "
                f"{h['load_ram'].get('rss_delta_mb', {}).get('rss_mb', 0.0):.0f}, file {h['file_mb']:.0f}); "
                f"raw float32 vectors alone {h['raw_vectors_mb']:.0f} MiB; "
                f"DenseIndex.load(mmap=True): {h['mmap']['verdict']}")

        meta = self.results["meta"]
        if self.plan.quick:
            took = meta["total_seconds_without_1m"] - self._model_load_seconds()
            add(f"quick run < {TARGET_QUICK_SECONDS} s (excluding model load)",
                "met" if took < TARGET_QUICK_SECONDS else "NOT met", round(took, 1),
                f"total {meta['total_seconds']} s incl. any 1M case, model loads {self._model_load_seconds():.1f} s")
        else:
            took = meta["total_seconds_without_1m"]
            add(f"full run (without 1M) < {TARGET_FULL_SECONDS // 60} min", "met" if took < TARGET_FULL_SECONDS
                else "NOT met", round(took, 1), f"total {meta['total_seconds']} s incl. any 1M case")
        return targets

    # -------------------------------------------------------------- output
    def render(self) -> str:
        parts = []
        order = [("encode", "1"), ("e2e", "2"), ("throughput", "3"), ("ingest", "4"), ("embedding", "5"),
                 ("scaling", "6")]
        for key, number in order:
            parts.append(self.tables.get(key, f"{number}. {key}: not run"))
        rows = [[t["target"], t["status"], t["value"] if t["value"] is not None else "-", t["reason"]]
                for t in self.results.get("targets", [])]
        m = self.results["meta"]
        notes = []
        share = m.get("others_cpu_share")
        if share is not None and share > 0.05:
            per = ", ".join(f"{k} {self.results[k]['others_cpu_share']:.0%}" for k in
                            ("ingest", "encode", "e2e", "throughput", "embedding", "scaling")
                            if self.results.get(k, {}).get("others_cpu_share") is not None)
            notes.append(f"the machine was shared: other processes used {share:.0%} of the CPUs during the run "
                         f"({per}); latency and throughput numbers are pessimistic")
        parts.append(_table("Targets", ["target", "status", "value", "reason"], rows, notes))
        m = self.results["meta"]
        parts.append(
            f"total run time {m['total_seconds']:.1f} s ({m['total_seconds'] / 60:.1f} min"
            + (f"; {m['total_seconds_without_1m']:.1f} s without the 1M case" if self.plan.million else "")
            + f"); model loads {m['model_load_seconds']:.1f} s; peak RSS {m['peak_rss_mb']:,.0f} MiB\n"
            f"machine: {m['cpus']} CPUs, torch {m['torch']} with {m['torch_threads']} threads, faiss {m['faiss']} "
            f"with {m['faiss_threads']} threads; encoders: {m.get('encoder_backend', 'torch')} for questions, "
            f"{m.get('ingest_encoder_backend', 'torch')} for ingest\n"
            f"load average at start {m['loadavg_start']}, end {m['loadavg_end']}; "
            f"CPU share used by other processes during the run: "
            + ("n/a" if m.get("others_cpu_share") is None else f"{m['others_cpu_share']:.0%}")
        )
        return "\n\n".join(parts)


def run_load(port: int, clients: int, seconds: float, max_requests: int, first_question: int) -> dict:
    """Concurrent keep-alive clients POSTing distinct questions to 127.0.0.1:port until the deadline or
    ``max_requests``; returns every latency (seconds), the errors and the wall time."""
    import asyncio

    latencies: list[float] = []
    errors: list[str] = []
    cap = iter(range(max_requests))
    questions = (f"{QUESTIONS[n % len(QUESTIONS)]} #{n}" for n in itertools.count(first_question))

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_raw_client_loop("127.0.0.1", port, questions, started + seconds, cap,
                                                latencies, errors) for _ in range(clients)))
        return time.perf_counter() - started

    wall = asyncio.run(run())
    return {"latencies": latencies, "errors": errors, "seconds": wall}


def run_cli(args, settings) -> int:
    """Run every section, print the tables (stdout), optionally write JSON; 0 even when targets are missed."""
    try:
        plan = Plan.from_args(args)
    except ValueError as exc:
        print(f"reportqa bench: error: {exc}", file=sys.stderr)
        return 2
    _log(f"{'quick' if plan.quick else 'full'} run; scaling sizes {', '.join(f'{n:,}' for n in plan.sizes)}")
    bench = Bench(args, settings, plan)
    bench.run()
    print(bench.render(), flush=True)
    out = getattr(args, "json", None)
    if out:
        path = Path(out)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_jsonable(bench.results), indent=2))
        _log(f"results written to {path}")
    return 0


if __name__ == "__main__":  # the load-generating child of section 3: python -m eval.bench load PORT CLIENTS ...
    if sys.argv[1:2] != ["load"] or len(sys.argv) != 7:
        sys.exit("usage: python -m eval.bench load PORT CLIENTS SECONDS MAX_REQUESTS FIRST_QUESTION "
                 "(the full benchmark is `reportqa bench`)")
    print(json.dumps(run_load(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
                              int(sys.argv[6]))))
