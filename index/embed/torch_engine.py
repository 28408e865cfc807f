"""The ``torch`` engine: sentence-transformers on PyTorch, as the model folder ships."""
from __future__ import annotations

import numpy as np

from index.embed.base import EncoderEngineBase
from settings import EncoderEngine


class TorchEncoder(EncoderEngineBase):
    """sentence-transformers on PyTorch (pooling and normalisation as the model folder configures them)."""

    engine = EncoderEngine.TORCH
    backend = engine  # the name callers read (Embedder.backend)

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
