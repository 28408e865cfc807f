"""The encoder-engine interface: what the :class:`~index.embed.embedder.Embedder` needs from an engine."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class TokenStates:
    """One text's last hidden states over its content tokens (no special or padding tokens), with each
    token's character span in the text (the tokenizer's offset mapping). A text past the model's window
    is cut: its tokens end before ``len(text)``."""

    hidden: np.ndarray  # (n_tokens, dimension) float32
    offsets: np.ndarray  # (n_tokens, 2) int64: [start, end) character offsets into the text


class EncoderEngineBase(ABC):
    """One way to run the model: text in, L2-normalised float32 vectors out, with the model's own tokenizer."""

    engine: ClassVar[str]
    dimension: int
    max_seq_length: int

    @abstractmethod
    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length; texts past the window are truncated."""

    @abstractmethod
    def encode_batch_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
        """The same vectors as :meth:`encode_batch` from the same forward pass, plus each text's token
        states, so spans inside a text (its sentences) can be pooled without encoding them again."""

    @abstractmethod
    def count_pieces(self, texts: list[str]) -> list[int]:
        """Word pieces per text (special tokens included, untruncated)."""


def content_states(hidden: np.ndarray, offsets: np.ndarray, content: np.ndarray) -> list[TokenStates]:
    """Per text of a padded batch, the rows of its content tokens. ``hidden`` (n, seq, dim), ``offsets``
    (n, seq, 2), ``content`` (n, seq) true for real, non-special tokens."""
    return [TokenStates(np.ascontiguousarray(hidden[i][content[i]], dtype=np.float32),
                        np.asarray(offsets[i][content[i]], dtype=np.int64)) for i in range(len(hidden))]
