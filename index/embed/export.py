"""Making the ONNX files: the fp32 export of the model's transformer (``torch.onnx``, ONNX Runtime's fused
BERT operators, checked against torch) and its int8 quantization (checked against fp32), both kept in
the file cache (:mod:`index.embed.cache`) keyed by the model fingerprint and the recipe version.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from index.embed.cache import ensure_cached, install
from index.embed.model import ModelUnavailable
from index.embed.onnx_session import ONNX_INPUTS, load_tokenizer, new_session, run_session
from index.files import file_sha256, temp_beside

log = logging.getLogger("reportqa.embedder")

ONNX_OPSET = 17
ONNX_EXPORT_VERSION = 2  # bump when the export recipe changes, so old cached exports are not reused (2: fused ops)


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


def quantized_path(fp32_path: Path) -> Path:
    return fp32_path.with_name("model.int8.onnx")


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
    tmp = temp_beside(target)
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
        tokenizer = load_tokenizer(model_path, max_seq_length)
        sample = ["What does the report say about data security?",
                  "A longer passage about international cooperation in cyberspace governance, " * 3]
        got = run_session(new_session(tmp, 1), tokenizer, sample)
        enc = tokenizer.encode_batch(sample)
        ids, mask, types = (torch.tensor([getattr(e, k) for e in enc]) for k in ("ids", "attention_mask", "type_ids"))
        with torch.no_grad():  # eval mode again: the exporter restores the wrapper's mode, train for a new module
            hidden = model.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        m = mask[:, :, None].float()
        want = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=1).numpy()
        cosine = float(np.min(np.sum(got * want, axis=1)))
        if cosine < 0.9999:
            raise ModelUnavailable(f"the ONNX export of {model_path} disagrees with torch (cosine {cosine:.6f})")
        install(tmp, target, fingerprint, {"opset": ONNX_OPSET, "export_version": ONNX_EXPORT_VERSION,
                                           "torch": torch.__version__,
                                           "export_seconds": round(time.perf_counter() - started, 2)})
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s in %.1fs", model_path, target, time.perf_counter() - started)


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

    return target, ensure_cached(target, fingerprint, export, "ONNX export")


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
    tmp = temp_beside(target)
    try:
        # DefaultTensorType: the fused operators' outputs carry no inferred type; they are all float.
        quantize_dynamic(str(fp32_path), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": 1})
        tokenizer = load_tokenizer(model_path, max_seq_length)
        sample = list(_CHECK_SENTENCES)
        want = run_session(new_session(fp32_path, 1), tokenizer, sample)
        got = run_session(new_session(tmp, 1), tokenizer, sample)
        cosine = float(np.min(np.sum(got * want, axis=1)))
        if cosine < QUANTIZED_MIN_COSINE:
            raise ModelUnavailable(f"the int8 model disagrees with fp32 (cosine {cosine:.4f} < "
                                   f"{QUANTIZED_MIN_COSINE}); use encoder backend 'onnx'")
        install(tmp, target, fingerprint, {"quantized_from": file_sha256(fp32_path),
                                           "min_cosine_to_fp32": round(cosine, 5),
                                           "quantize_seconds": round(time.perf_counter() - started, 2)})
    finally:
        tmp.unlink(missing_ok=True)
    log.info("quantized %s to %s in %.1fs (min cosine to fp32 %.4f)", fp32_path, target,
             time.perf_counter() - started, cosine)


def ensure_quantized(fp32_path: Path, fingerprint: str, model_path: str, max_seq_length: int) -> Path:
    """The int8 file beside the fp32 export (made now if missing or damaged), under the export's lock."""
    target = quantized_path(fp32_path)
    ensure_cached(target, fingerprint,
                   lambda: quantize_onnx(fp32_path, target, fingerprint, model_path, max_seq_length), "int8 model")
    return target
