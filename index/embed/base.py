"""The encoder-engine interface: what the :class:`~index.embed.embedder.Embedder` needs from an engine."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np


class EncoderEngineBase(ABC):
    """One way to run the model: text in, L2-normalised float32 vectors out, with the model's own tokenizer."""

    engine: ClassVar[str]
    dimension: int
    max_seq_length: int

    @abstractmethod
    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length; texts past the window are truncated."""

    @abstractmethod
    def count_pieces(self, texts: list[str]) -> list[int]:
        """Word pieces per text (special tokens included, untruncated)."""
