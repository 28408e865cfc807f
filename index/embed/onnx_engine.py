"""The ``onnx`` and ``onnx-int8`` engines: ONNX Runtime (CPU) over the cached export of the model's
transformer, fp32 or with int8 weights; tokenising, mean pooling and L2 normalisation are done here.
Once the export exists, this path imports neither torch nor transformers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from index.embed.base import EncoderEngineBase, TokenStates
from index.embed.export import ensure_onnx_export, ensure_quantized
from index.embed.model import ModelUnavailable
from index.embed.onnx_session import (ONNX_INPUTS, check_mean_pooling, load_tokenizer, new_session, run_session,
                                      run_session_tokens)
from settings import EncoderEngine


class OnnxEncoder(EncoderEngineBase):
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
        check_mean_pooling(model_path)
        self.threads, self.cache_dir = threads, cache_dir
        self.max_seq_length = model_max_seq_length(Path(model_path))
        self.onnx_path, self.exported = ensure_onnx_export(model_path, cache_dir, fingerprint, self.max_seq_length)
        self.engine = self.backend = EncoderEngine.ONNX_INT8 if quantized else EncoderEngine.ONNX
        if quantized:
            self.onnx_path = ensure_quantized(self.onnx_path, fingerprint, model_path, self.max_seq_length)
        try:
            self.session = new_session(self.onnx_path, threads)
        except Exception as exc:  # checksum matched, so the file is the one exported: a runtime mismatch
            raise ModelUnavailable(f"ONNX Runtime cannot load {self.onnx_path} ({type(exc).__name__}: {exc}); "
                                   f"delete {self.onnx_path.parent} to export it again") from exc
        names = {i.name for i in self.session.get_inputs()}
        if names != set(ONNX_INPUTS):
            raise ModelUnavailable(f"{self.onnx_path} takes inputs {sorted(names)}, expected {list(ONNX_INPUTS)}")
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.tokenizer = load_tokenizer(model_path, self.max_seq_length)
        self._counter = load_tokenizer(model_path, None)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return run_session(self.session, self.tokenizer, texts)

    def encode_batch_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
        return run_session_tokens(self.session, self.tokenizer, texts)

    def count_pieces(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts)]
