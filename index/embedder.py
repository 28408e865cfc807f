"""The embedding model boundary: load a local sentence-transformers model, turn text into unit vectors.

The hub is switched off before sentence-transformers is imported, so a model
that is not on disk fails at once with a clear message instead of trying the
network.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

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


class Embedder:
    """Encodes text with a local sentence-transformers model into L2-normalised float32 vectors."""

    def __init__(self, model_path: str, threads: int = 0):
        folder = Path(model_path)
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise ModelUnavailable(f"no sentence-transformers model in {model_path} (modules.json missing)")
        started = time.perf_counter()
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.model_path = str(folder)
        self.model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)
        self.name = model_name(self.model_path)
        self.load_seconds = time.perf_counter() - started
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_path)
        return self._fingerprint

    def encode(
        self, texts: list[str], batch_size: int = 32, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Vectors for ``texts`` in order, computed batch by batch so memory stays bounded."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            out[start:start + len(batch)] = self.model.encode(
                batch, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
            if progress:
                progress(start + len(batch), len(texts))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
