"""The ``torch`` and ``torch-bf16`` engines: sentence-transformers on PyTorch, as the model folder ships;
``torch-bf16`` runs the matrix products in bfloat16 (``torch.autocast``), the weights and the pooling stay
float32."""
from __future__ import annotations

import contextlib
import logging

import numpy as np

from index.embed.base import EncoderEngineBase, TokenStates, content_states
from settings import EncoderEngine

log = logging.getLogger("reportqa.embedder")


class TorchEncoder(EncoderEngineBase):
    """sentence-transformers on PyTorch (pooling and normalisation as the model folder configures them).

    With ``bfloat16``: on a CPU with native bf16 instructions (AVX-512 BF16, AMX) the encode takes ~0.6x
    the float32 time at cosine >= 0.9999 to the float32 vectors (README, "Encoder backends"); without
    them PyTorch emulates bf16, slower than float32, and a warning says so."""

    def __init__(self, model_path: str, threads: int = 0, bfloat16: bool = False):
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.bfloat16 = bfloat16
        self.engine = EncoderEngine.TORCH_BF16 if bfloat16 else EncoderEngine.TORCH
        self.backend = self.engine  # the name callers read (Embedder.backend)
        if bfloat16 and not native_bf16():
            log.warning("torch-bf16: this CPU has no native bfloat16 instructions; PyTorch emulates them and "
                        "the encode is slower than float32 (use onnx)")
        self.model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)

    def _precision(self):
        import torch

        if self.bfloat16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        if not self.bfloat16:
            return self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False).astype(np.float32, copy=False)
        with self._precision():
            vectors = self.model.encode(texts, batch_size=len(texts), convert_to_numpy=False, convert_to_tensor=True,
                                        show_progress_bar=False)
        return unit_rows(vectors.float().numpy())  # normalised in float32: autocast leaves bf16 rounding behind

    def encode_batch_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
        import torch

        # The model's own modules (transformer, pooling, normalisation) on features tokenised here, because
        # sentence-transformers' tokenize() does not return the offset mapping.
        features = self.model.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                                        return_offsets_mapping=True, return_special_tokens_mask=True,
                                        return_tensors="pt")
        offsets = features.pop("offset_mapping").numpy()
        special = features.pop("special_tokens_mask").numpy().astype(bool)
        with torch.inference_mode(), self._precision():
            out = self.model(dict(features))
        vectors = unit_rows(out["sentence_embedding"].float().numpy())
        content = features["attention_mask"].numpy().astype(bool) & ~special
        return vectors, content_states(out["token_embeddings"].float().numpy(),
                                                                     offsets, content)

    def count_pieces(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length, float32."""
    return (vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (else PyTorch emulates it)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
