"""The :class:`Embedder`: the one object the rest of the product encodes text with, whatever the engine."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from index.embed.base import TokenStates
from index.embed.factory import create_engine
from index.embed.model import check_model_folder, model_fingerprint, model_name
from settings import EncoderEngine, engine_precision


class Embedder:
    """Encodes text into L2-normalised float32 vectors with a local sentence-transformers model.

    ``backend`` picks the engine (``torch``, ``onnx`` or ``onnx-int8``). torch and
    onnx give the same vectors (cosine ≥ 0.9999) from the same weights; onnx-int8
    vectors land within cosine ~0.99 of them. The fingerprint is the weights', the
    same for every backend; a build records its passages' :attr:`precision` beside
    it. The ONNX engines keep their files under ``cache_dir``."""

    def __init__(self, model_path: str, threads: int = 0, backend: str = EncoderEngine.TORCH,
                 cache_dir: str | Path | None = None):
        folder = check_model_folder(model_path)
        if backend not in list(EncoderEngine):
            raise ValueError(f"unknown encoder backend {backend!r} (choose from {', '.join(EncoderEngine)})")
        started = time.perf_counter()
        self.model_path = str(folder)
        self.backend = EncoderEngine(backend)
        self.threads, self.cache_dir = threads, cache_dir
        self._fingerprint: str | None = None
        self._siblings: dict[str, Embedder] = {}
        self.encoder = create_engine(self.backend, self.model_path, threads, cache_dir,
                                     self.fingerprint if self.backend != EncoderEngine.TORCH else "")
        self.dimension = self.encoder.dimension
        self.max_seq_length = self.encoder.max_seq_length
        self.name = model_name(self.model_path)
        self.load_seconds = time.perf_counter() - started

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8`` (settings.engine_precision): what a build records for its passages."""
        return engine_precision(self.backend)

    def sibling(self, backend: str) -> "Embedder":
        """An encoder of the same model on ``backend``: this one if it already runs there, else one loaded
        once (same threads and cache) and kept, e.g. the passage engine beside a question engine."""
        if backend == self.backend:
            return self
        if backend not in self._siblings:
            self._siblings[backend] = Embedder(self.model_path, self.threads, backend, self.cache_dir)
        return self._siblings[backend]

    def for_passages(self, engine: str) -> "Embedder":
        """An encoder making the passage vectors ``engine`` makes: this one if it has that precision (torch
        and onnx give the same vectors), else :meth:`sibling`."""
        return self if engine_precision(engine) == self.precision else self.sibling(engine)

    def full_precision(self) -> "Embedder":
        """This encoder, or for onnx-int8 the fp32 ONNX model beside it: the reference a what-if or a peer
        system encodes with, whatever precision the passages of a build use."""
        return self if self.precision == "fp32" else self.sibling(EncoderEngine.ONNX)

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
        for start, rows in _batches(texts, batch_size):
            out[rows] = self.encoder.encode_batch([texts[i] for i in rows])
            if progress:
                progress(start + len(rows), len(texts))
        return out

    def encode_tokens(self, texts: list[str], batch_size: int = 32
                      ) -> Iterator[tuple[int, list[int], np.ndarray, list[TokenStates]]]:
        """Batch by batch (batched as :meth:`encode`): (texts done, their rows, their vectors, their token
        states), so a caller pools spans of each batch and memory stays bounded."""
        for start, rows in _batches(texts, batch_size):
            vectors, states = self.encoder.encode_batch_tokens([texts[i] for i in rows])
            yield start + len(rows), rows, vectors, states

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def count_pieces(self, texts: list[str]) -> list[int]:
        """Word pieces per text as this encoder's tokenizer cuts them (special tokens included, untruncated)."""
        return self.encoder.count_pieces(texts) if texts else []


def _batches(texts: list[str], batch_size: int) -> Iterator[tuple[int, list[int]]]:
    """(position, rows) per batch, longest texts first, so each batch pads to a similar length."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(texts), batch_size):
        yield start, order[start:start + batch_size]
