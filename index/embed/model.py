"""The model's identity: which weights a folder holds (the fingerprint every build records) and its name."""
from __future__ import annotations

import hashlib
from pathlib import Path

from index.files import BLOCK

FINGERPRINTED = {".json", ".txt", ".safetensors", ".bin", ".onnx"}  # configs, vocabulary and weights


class ModelUnavailable(RuntimeError):
    """The model cannot be loaded or run; the message says why."""


def check_model_folder(model_path: str) -> Path:
    folder = Path(model_path)
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise ModelUnavailable(f"no sentence-transformers model in {model_path} (modules.json missing)")
    return folder


def model_fingerprint(model_path: str) -> str:
    """Identity of a model folder: hash of its config files and weights (names, sizes, content)."""
    folder = Path(model_path)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix in FINGERPRINTED:
            digest.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(BLOCK), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def model_name(model_path: str) -> str:
    """A readable name: the folder's name, or its parent's for a folder called ``model`` (as wheels ship it)."""
    folder = Path(model_path)
    if folder.name == "model" and folder.parent.name:
        return folder.parent.name
    return folder.name
