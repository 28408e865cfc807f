"""The embedding model boundary: load a local sentence-transformers model, turn text into unit vectors.

Three engines encode with the same weights:

* ``torch``: sentence-transformers on PyTorch, as the model folder ships.
* ``onnx``: ONNX Runtime over an export of the model's transformer, made once
  with ``torch.onnx`` and cached under ``cache_dir`` keyed by the model
  fingerprint; tokenising (``tokenizers``), mean pooling and L2 normalisation
  are done here. Once the export exists, this path imports neither torch nor
  transformers.
* ``onnx-int8``: the same export with its weights quantized to int8 per output
  channel (activations quantized per call): about a third of the fp32 CPU
  time per question on this machine's VNNI cores (2.8 vs 8.6 ms, one thread),
  vectors at cosine ~0.99 to fp32. For questions only: the index's passages
  stay fp32.

The hub is switched off before sentence-transformers is imported, so a model
that is not on disk fails at once with a clear message instead of trying the
network.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Literal

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


class ModelUnavailable(RuntimeError):
    pass


def model_fingerprint(model_path: str) -> str:
    """Identity of a model folder: hash of its config files and weights (names, sizes, content)."""
    folder = Path(model_path)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix in {".json", ".txt", ".safetensors", ".bin", ".onnx"}:
            digest.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def model_name(model_path: str) -> str:
    """A readable name: the folder's README model id if present, else the folder name."""
    folder = Path(model_path)
    config = folder / "config_sentence_transformers.json"
    name = folder.name
    if folder.name == "model" and folder.parent.name:
        name = folder.parent.name
    if config.is_file():
        try:
            json.loads(config.read_text())
        except ValueError:
            pass
    return name


Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")

log = logging.getLogger("reportqa.embedder")


# ---------------------------------------------------------------------------------------------- torch


class TorchEncoder:
    """sentence-transformers on PyTorch (pooling and normalisation as the model folder configures them)."""

    backend = "torch"

    def __init__(self, model_path: str, threads: int = 0):
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False).astype(np.float32, copy=False)

    def count_pieces(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]]


# ---------------------------------------------------------------------------------------------- onnx

ONNX_OPSET = 17
ONNX_EXPORT_VERSION = 2  # bump when the export recipe changes, so old cached exports are not reused (2: fused ops)
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_export_path(cache_dir: str | Path, fingerprint: str) -> Path:
    """Where the export of the model with ``fingerprint`` is cached (beside it: ``model.onnx.json``)."""
    return Path(cache_dir) / "onnx" / f"{fingerprint}-opset{ONNX_OPSET}-v{ONNX_EXPORT_VERSION}" / "model.onnx"


def remove_stale_exports(current: Path, fingerprint: str) -> list[Path]:
    """Delete this model's exports made by another recipe (older opset or export version) once ``current``
    exists: a version bump would otherwise leave ~100 MB behind in the cache for every model. Other models'
    exports are left alone. A process still running an old export keeps working: ONNX Runtime has read it."""
    pattern = re.compile(rf"{re.escape(fingerprint)}-opset\d+-v\d+")
    removed = []
    for folder in current.parent.parent.iterdir():
        if folder != current.parent and folder.is_dir() and pattern.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            log.info("removed the stale ONNX export %s", folder)
    return removed


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (also used for the index files' checksums)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def quantized_path(fp32_path: Path) -> Path:
    return fp32_path.with_name("model.int8.onnx")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def export_problem(path: Path, fingerprint: str) -> str | None:
    """Why the cached export at ``path`` cannot be used (None: it is complete and intact).

    The sidecar written after the export records its size and SHA-256, so a
    truncated, partly overwritten or foreign file is caught before ONNX Runtime
    sees it."""
    if not path.is_file():
        return "no export yet"
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return "its checksum record is missing or unreadable"
    if meta.get("fingerprint") != fingerprint:
        return "it was exported from another model"
    if path.stat().st_size != meta.get("bytes"):
        return f"it has {path.stat().st_size} bytes, the export wrote {meta.get('bytes')}"
    if file_sha256(path) != meta.get("sha256"):
        return "its checksum does not match"
    return None


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """An inter-process lock (flock): one process exports while the others wait for its file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic replace still keeps readers safe, exports may just repeat
        yield
        return
    with lock_path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_tokenizer(model_path: str, max_length: int | None):
    """The model folder's fast tokenizer: truncated to ``max_length`` and padded to the batch's longest
    (tokenizer.json's own fixed 128-piece padding and truncation are replaced); None = no truncation."""
    from tokenizers import Tokenizer

    tokenizer_file = Path(model_path) / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelUnavailable(f"no tokenizer.json in model folder {model_path}")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    if max_length is None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    tokenizer.enable_truncation(max_length=max_length)
    pad = (tokenizer.padding or {}).get("pad_token", "[PAD]")
    pad_id = tokenizer.token_to_id(pad)
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)
    return tokenizer


def _check_mean_pooling(model_path: str) -> None:
    """The ONNX path pools by the attention-masked mean; refuse a model configured otherwise."""
    config = Path(model_path) / "1_Pooling" / "config.json"
    if config.is_file():
        pooling = json.loads(config.read_text())
        if not pooling.get("pooling_mode_mean_tokens", False) or any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
        ):
            raise ModelUnavailable(f"the onnx backend supports mean pooling only; {config} asks for {pooling}")


def _run_session(session, tokenizer, texts: list[str]) -> np.ndarray:
    """Tokenise, run the transformer, mean-pool over real tokens, L2-normalise: float32 (n, dim)."""
    encodings = tokenizer.encode_batch(texts)
    feed = {
        "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
    }
    hidden = session.run(["last_hidden_state"], feed)[0]
    mask = feed["attention_mask"][:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


def _new_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = ONNX Runtime's default (one per physical core)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: a spinning pool burns the CPU that concurrent
    # requests (and the other server workers) need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _fuse_transformer_ops(path: Path, config) -> None:
    """Rewrite the graph with ONNX Runtime's fused BERT operators (attention, layer norm, GELU): the same
    numbers (max difference ~1e-6) about 20% sooner per question here."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=1)
    fused.save_model_to_file(str(path))


def export_onnx(model_path: str, target: Path, fingerprint: str, max_seq_length: int) -> None:
    """Export the model's transformer (input ids, attention mask, token types → last hidden state; dynamic
    batch and sequence axes) with torch.onnx, check it against torch, then move it into place atomically."""
    import torch
    from transformers import AutoModel

    started = time.perf_counter()
    model = AutoModel.from_pretrained(model_path, local_files_only=True, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in range(2)) + (torch.zeros((2, 8), dtype=torch.long),)
    axes = {0: "batch", 1: "sequence"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes about constant shapes and the legacy exporter
            torch.onnx.export(
                LastHiddenState(model).eval(), dummy, str(tmp), input_names=list(ONNX_INPUTS),
                output_names=["last_hidden_state"], dynamic_axes={n: axes for n in (*ONNX_INPUTS, "last_hidden_state")},
                opset_version=ONNX_OPSET, do_constant_folding=True,
                dynamo=False,  # the TorchScript exporter: needs the onnx package, not onnxscript
            )
        _fuse_transformer_ops(tmp, model.config)
        # Check the file against torch on a padded batch before anyone can use it.
        tokenizer = _load_tokenizer(model_path, max_seq_length)
        sample = ["What does the report say about data security?",
                  "A longer passage about international cooperation in cyberspace governance, " * 3]
        got = _run_session(_new_session(tmp, 1), tokenizer, sample)
        enc = tokenizer.encode_batch(sample)
        ids, mask, types = (torch.tensor([getattr(e, k) for e in enc]) for k in ("ids", "attention_mask", "type_ids"))
        with torch.no_grad():  # eval mode again: the exporter restores the wrapper's mode, train for a new module
            hidden = model.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        m = mask[:, :, None].float()
        want = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=1).numpy()
        cosine = float(np.min(np.sum(got * want, axis=1)))
        if cosine < 0.9999:
            raise ModelUnavailable(f"the ONNX export of {model_path} disagrees with torch (cosine {cosine:.6f})")
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        meta = {"fingerprint": fingerprint, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp),
                "opset": ONNX_OPSET, "export_version": ONNX_EXPORT_VERSION, "torch": torch.__version__,
                "export_seconds": round(time.perf_counter() - started, 2)}
        os.replace(tmp, target)
        _atomic_write_bytes(_sidecar(target), json.dumps(meta, indent=2).encode())
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s in %.1fs", model_path, target, time.perf_counter() - started)


def _ensure_cached(target: Path, fingerprint: str, make: Callable[[], None], what: str) -> bool:
    """Make the cached file ``target`` with ``make`` if it is missing or damaged; whether this call made it.

    Readers never see a partial file (``make`` writes a temp file, then os.replace); a lock makes
    concurrent processes wait for one maker instead of each making their own."""
    try:
        if export_problem(target, fingerprint) is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.parent / ".export.lock"):
            problem = export_problem(target, fingerprint)  # another process may have finished it meanwhile
            if problem is None:
                return False
            if target.exists():
                log.warning("cached %s %s is unusable (%s); making it again", what, target, problem)
            try:
                make()
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"making the {what} {target.name} failed: {type(exc).__name__}: {exc}"
                                       ) from exc
    except OSError as exc:
        raise ModelUnavailable(f"cannot use the ONNX export cache {target.parent} ({exc.strerror or exc}); "
                               "set REPORTQA_CACHE_DIR to a writable folder") from exc
    return True


def ensure_onnx_export(model_path: str, cache_dir: str | Path, fingerprint: str, max_seq_length: int
                       ) -> tuple[Path, bool]:
    """The cached export for this model (made now if missing or damaged) and whether this call made it."""
    target = onnx_export_path(cache_dir, fingerprint)

    def export() -> None:
        try:
            export_onnx(model_path, target, fingerprint, max_seq_length)
        except ImportError as exc:
            raise ModelUnavailable(f"exporting the model to ONNX needs torch, transformers and onnx: {exc}") from exc
        remove_stale_exports(target, fingerprint)

    return target, _ensure_cached(target, fingerprint, export, "ONNX export")


# The quantized file must stay this close to fp32 on the check sentences (measured: min 0.991, mean 0.994
# over the eval set's 149 questions; a per-tensor quantization scored 0.949 and moved rankings).
QUANTIZED_MIN_COSINE = 0.98
_CHECK_SENTENCES = (
    "What does the report say about data security?",
    "How many internet users were there at the end of the year?",
    "IPv6 deployment and the number of active users",
    "A longer passage about international cooperation in cyberspace governance, " * 3,
)


def quantize_onnx(fp32_path: Path, target: Path, fingerprint: str, model_path: str, max_seq_length: int) -> None:
    """Quantize the fp32 export's MatMul and Attention weights to int8 per output channel (ONNX Runtime's
    dynamic quantization: activations are scaled per call, no calibration data), check it against the fp32
    file, then move it into place atomically with its checksum record."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.perf_counter()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # DefaultTensorType: the fused operators' outputs carry no inferred type; they are all float.
        quantize_dynamic(str(fp32_path), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": 1})
        tokenizer = _load_tokenizer(model_path, max_seq_length)
        sample = list(_CHECK_SENTENCES)
        want = _run_session(_new_session(fp32_path, 1), tokenizer, sample)
        got = _run_session(_new_session(tmp, 1), tokenizer, sample)
        cosine = float(np.min(np.sum(got * want, axis=1)))
        if cosine < QUANTIZED_MIN_COSINE:
            raise ModelUnavailable(f"the int8 model disagrees with fp32 (cosine {cosine:.4f} < "
                                   f"{QUANTIZED_MIN_COSINE}); use encoder backend 'onnx'")
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        meta = {"fingerprint": fingerprint, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp),
                "quantized_from": file_sha256(fp32_path), "min_cosine_to_fp32": round(cosine, 5),
                "quantize_seconds": round(time.perf_counter() - started, 2)}
        os.replace(tmp, target)
        _atomic_write_bytes(_sidecar(target), json.dumps(meta, indent=2).encode())
    finally:
        tmp.unlink(missing_ok=True)
    log.info("quantized %s to %s in %.1fs (min cosine to fp32 %.4f)", fp32_path, target,
             time.perf_counter() - started, cosine)


def ensure_quantized(fp32_path: Path, fingerprint: str, model_path: str, max_seq_length: int) -> Path:
    """The int8 file beside the fp32 export (made now if missing or damaged), under the export's lock."""
    target = quantized_path(fp32_path)
    _ensure_cached(target, fingerprint,
                   lambda: quantize_onnx(fp32_path, target, fingerprint, model_path, max_seq_length), "int8 model")
    return target


class OnnxEncoder:
    """ONNX Runtime (CPU) over the cached export (fp32, or int8 with ``quantized``); tokenising, pooling
    and normalisation done here."""

    def __init__(self, model_path: str, threads: int, cache_dir: str | Path, fingerprint: str,
                 quantized: bool = False):
        from ingest.tokens import model_max_seq_length

        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ModelUnavailable("encoder backend 'onnx' needs the onnxruntime package "
                                   "(pip install -r requirements.txt)") from exc
        _check_mean_pooling(model_path)
        self.threads, self.cache_dir = threads, cache_dir
        self.max_seq_length = model_max_seq_length(Path(model_path))
        self.onnx_path, self.exported = ensure_onnx_export(model_path, cache_dir, fingerprint, self.max_seq_length)
        self.backend = "onnx-int8" if quantized else "onnx"
        if quantized:
            self.onnx_path = ensure_quantized(self.onnx_path, fingerprint, model_path, self.max_seq_length)
        try:
            self.session = _new_session(self.onnx_path, threads)
        except Exception as exc:  # checksum matched, so the file is the one exported: a runtime mismatch
            raise ModelUnavailable(f"ONNX Runtime cannot load {self.onnx_path} ({type(exc).__name__}: {exc}); "
                                   f"delete {self.onnx_path.parent} to export it again") from exc
        names = {i.name for i in self.session.get_inputs()}
        if names != set(ONNX_INPUTS):
            raise ModelUnavailable(f"{self.onnx_path} takes inputs {sorted(names)}, expected {list(ONNX_INPUTS)}")
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.tokenizer = _load_tokenizer(model_path, self.max_seq_length)
        self._counter = _load_tokenizer(model_path, None)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return _run_session(self.session, self.tokenizer, texts)

    def count_pieces(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts)]


# ---------------------------------------------------------------------------------------------- facade


class Embedder:
    """Encodes text into L2-normalised float32 vectors with a local sentence-transformers model.

    ``backend`` picks the engine (``torch``, ``onnx`` or ``onnx-int8``). torch and
    onnx give the same vectors (cosine ≥ 0.9999) from the same weights; onnx-int8
    questions land within cosine ~0.99 of them and search an fp32 index. The
    fingerprint, and with it the index a build is valid for, does not depend on
    the backend."""

    def __init__(self, model_path: str, threads: int = 0, backend: Backend = "torch",
                 cache_dir: str | Path | None = None):
        folder = Path(model_path)
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise ModelUnavailable(f"no sentence-transformers model in {model_path} (modules.json missing)")
        if backend not in BACKENDS:
            raise ValueError(f"unknown encoder backend {backend!r} (choose from {', '.join(BACKENDS)})")
        started = time.perf_counter()
        self.model_path = str(folder)
        self.backend = backend
        self._fingerprint: str | None = None
        self._full: Embedder | None = None
        if backend in ("onnx", "onnx-int8"):
            if cache_dir is None:
                from settings import DEFAULT_CACHE_DIR

                cache_dir = DEFAULT_CACHE_DIR
            self.encoder: TorchEncoder | OnnxEncoder = OnnxEncoder(self.model_path, threads, cache_dir,
                                                                   self.fingerprint, backend == "onnx-int8")
        else:
            self.encoder = TorchEncoder(self.model_path, threads)
        self.dimension = self.encoder.dimension
        self.max_seq_length = self.encoder.max_seq_length
        self.name = model_name(self.model_path)
        self.load_seconds = time.perf_counter() - started

    def full_precision(self) -> "Embedder":
        """An encoder for passages: this one, or for onnx-int8 the fp32 ONNX model beside it (an index's
        passages are always encoded at full precision; int8 is for questions)."""
        if self.backend != "onnx-int8":
            return self
        if self._full is None:
            encoder = self.encoder
            assert isinstance(encoder, OnnxEncoder)
            self._full = Embedder(self.model_path, encoder.threads, "onnx", encoder.cache_dir)
        return self._full

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_path)
        return self._fingerprint

    def encode(
        self, texts: list[str], batch_size: int = 32, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Vectors for ``texts`` in order, computed batch by batch so memory stays bounded.

        Texts are batched longest first, so each batch pads to a similar length."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self.encoder.encode_batch([texts[i] for i in rows])
            if progress:
                progress(start + len(rows), len(texts))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def count_pieces(self, texts: list[str]) -> list[int]:
        """Word pieces per text as this encoder's tokenizer cuts them (special tokens included, untruncated)."""
        return self.encoder.count_pieces(texts) if texts else []
