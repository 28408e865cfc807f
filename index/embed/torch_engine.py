"""The ``torch`` engine: sentence-transformers on PyTorch, as the model folder ships."""
from __future__ import annotations

import numpy as np

from index.embed.base import EncoderEngineBase, TokenStates, content_states
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

    def encode_batch_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
        import torch

        # The model's own modules (transformer, pooling, normalisation) on features tokenised here, because
        # sentence-transformers' tokenize() does not return the offset mapping.
        features = self.model.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                                        return_offsets_mapping=True, return_special_tokens_mask=True,
                                        return_tensors="pt")
        offsets = features.pop("offset_mapping").numpy()
        special = features.pop("special_tokens_mask").numpy().astype(bool)
        with torch.inference_mode():
            out = self.model(dict(features))
        vectors = out["sentence_embedding"].float().numpy()
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        content = features["attention_mask"].numpy().astype(bool) & ~special
        return vectors.astype(np.float32, copy=False), content_states(out["token_embeddings"].float().numpy(),
                                                                     offsets, content)

    def count_pieces(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
