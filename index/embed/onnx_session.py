"""ONNX Runtime plumbing shared by the engine and the export checks: the model folder's fast tokenizer,
a CPU session, and one encode (tokenise, run, mean-pool over real tokens, L2-normalise)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from index.embed.base import TokenStates, content_states
from index.embed.model import ModelUnavailable

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_tokenizer(model_path: str, max_length: int | None):
    """The model folder's fast tokenizer: truncated to ``max_length`` and padded to the batch's longest
    (tokenizer.json's own fixed 128-piece padding and truncation are replaced); None = no truncation."""
    from tokenizers import Tokenizer

    tokenizer_file = Path(model_path) / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelUnavailable(f"no tokenizer.json in model folder {model_path}")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    if max_length is None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    tokenizer.enable_truncation(max_length=max_length)
    pad = (tokenizer.padding or {}).get("pad_token", "[PAD]")
    pad_id = tokenizer.token_to_id(pad)
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)
    return tokenizer


def check_mean_pooling(model_path: str) -> None:
    """The ONNX path pools by the attention-masked mean; refuse a model configured otherwise."""
    config = Path(model_path) / "1_Pooling" / "config.json"
    if config.is_file():
        pooling = json.loads(config.read_text())
        if not pooling.get("pooling_mode_mean_tokens", False) or any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
        ):
            raise ModelUnavailable(f"the onnx backend supports mean pooling only; {config} asks for {pooling}")


def run_session(session, tokenizer, texts: list[str]) -> np.ndarray:
    """Tokenise, run the transformer, mean-pool over real tokens, L2-normalise: float32 (n, dim)."""
    return run_session_tokens(session, tokenizer, texts)[0]


def run_session_tokens(session, tokenizer, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
    """:func:`run_session`'s vectors and, from the same run, each text's content-token states and offsets."""
    encodings = tokenizer.encode_batch(texts)
    feed = {
        "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
    }
    hidden = session.run(["last_hidden_state"], feed)[0]
    mask = feed["attention_mask"][:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
    content = feed["attention_mask"].astype(bool) & ~np.asarray([e.special_tokens_mask for e in encodings], dtype=bool)
    offsets = np.asarray([e.offsets for e in encodings], dtype=np.int64)
    return vectors, content_states(hidden, offsets, content)


def new_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = ONNX Runtime's default (one per physical core)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: a spinning pool burns the CPU that concurrent
    # requests (and the other server workers) need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
