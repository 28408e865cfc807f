"""Engine name -> engine: the one place that branches on the encoder engine's name."""
from __future__ import annotations

from pathlib import Path

from index.embed.base import EncoderEngineBase
from index.embed.model import ModelUnavailable
from settings import EncoderEngine


def create_engine(engine: str, model_path: str, threads: int, cache_dir: str | Path | None,
                  fingerprint: str) -> EncoderEngineBase:
    """The engine called ``engine`` over the model folder (ONNX engines keep their files under ``cache_dir``)."""
    try:
        engine = EncoderEngine(engine)
    except ValueError:
        raise ValueError(f"unknown encoder backend {engine!r} (choose from {', '.join(EncoderEngine)})") from None
    if engine in (EncoderEngine.TORCH, EncoderEngine.TORCH_BF16):
        from index.embed.torch_engine import TorchEncoder

        return TorchEncoder(model_path, threads, bfloat16=engine == EncoderEngine.TORCH_BF16)
    if cache_dir is None:
        raise ModelUnavailable(f"encoder backend {engine!r} needs a cache folder for its ONNX files")
    from index.embed.onnx_engine import OnnxEncoder

    return OnnxEncoder(model_path, threads, cache_dir, fingerprint, quantized=engine == EncoderEngine.ONNX_INT8)
