"""Embedding: a local sentence-transformers model turned into unit vectors by one of three engines.

``embedder`` (the :class:`Embedder` everyone uses), ``base`` + ``factory`` (the engine interface and
name -> engine), ``torch_engine`` / ``onnx_engine`` (the engines), ``export`` (the ONNX export and int8
quantization), ``cache`` (checksummed, locked cached files), ``model`` (the model's fingerprint and
name), ``runtime`` (:func:`configure_runtime`: the environment the model libraries need, set by entry
points; importing this package sets nothing).
"""
from index.embed.embedder import Embedder
from index.embed.model import ModelUnavailable, model_fingerprint, model_name
from index.embed.runtime import configure_runtime

__all__ = ["Embedder", "ModelUnavailable", "configure_runtime", "model_fingerprint", "model_name"]
