"""The embedding cache: vectors already computed, keyed by the model's fingerprint and the exact text embedded.

A library change (``reportqa add``/``remove``) asks :func:`cached_vectors` for the vectors of every text
of the new build; only texts the cache has never seen go to the embedder. So adding a report embeds its
own chunks and sentences only, re-adding a changed one embeds the chunks whose text changed, and
removing one embeds nothing. The vectors it hands back for a known text are the stored ones, bit for bit.

On disk, beside the builds (``<index>/embeddings/<model fingerprint>[-int8]/<kind>/``: int8 passage vectors
are kept apart from fp32 ones, which never mix in one build), append-only segments:
``<segment>.npy`` (the vectors, plain numpy, never pickled) and ``<segment>.keys.json`` (each row's text
digest), listed with their SHA-256 in ``index.json``, which is replaced atomically after the segment
files are on disk. A crash leaves at most an unlisted segment (deleted by the next save); a damaged
segment fails its checksum and is dropped with a warning (its texts are embedded again). Past
``max_segments`` segments, a save merges them into one, so lookups stay a handful of files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from index.files import atomic_write_text, file_sha256, fsync_file

log = logging.getLogger("reportqa.cache")

CACHE_FOLDER = "embeddings"
CACHE_FORMAT = 1
FINGERPRINT_CHARS = 16  # folder name: the fingerprint's prefix (the full one is checked in index.json)


class Encodes(Protocol):
    fingerprint: str
    dimension: int
    precision: str

    def encode(self, texts: list[str], batch_size: int = 32,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray: ...


def text_digest(text: str) -> str:
    """The cache key of one text (with the model fingerprint in the folder): SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_name(fingerprint: str, precision: str) -> str:
    """The cache folder of one model and precision: fp32 keeps the plain fingerprint prefix (the folder caches
    made before int8 passages existed), any other precision gets its own folder."""
    prefix = fingerprint[:FINGERPRINT_CHARS]
    return prefix if precision == "fp32" else f"{prefix}-{precision}"


@dataclass(frozen=True)
class Segment:
    name: str
    rows: int
    vectors_sha256: str
    keys_sha256: str


class EmbeddingCache:
    """Vectors of one kind (``chunks`` float32, ``sentences`` float16: what the build stores) for one model."""

    def __init__(self, index_dir: Path, fingerprint: str, kind: str, dimension: int, dtype: str = "float32",
                 max_segments: int = 8, load: bool = True, precision: str = "fp32"):
        self.folder = Path(index_dir) / CACHE_FOLDER / cache_name(fingerprint, precision) / kind
        self.fingerprint, self.kind, self.dimension, self.precision = fingerprint, kind, dimension, precision
        self.dtype = np.dtype(dtype)
        self.max_segments = max_segments
        self.segments: list[Segment] = []
        self._arrays: list[np.ndarray] = []
        self._where: dict[str, tuple[int, int]] = {}  # digest -> (segment, row)
        self._pending: dict[str, np.ndarray] = {}  # computed or seeded since the last save
        self.hits = self.misses = 0
        if load:  # load=False: an in-memory cache for one change (the persistent cache is switched off)
            self._load()

    # ------------------------------------------------------------------ reading
    def _load(self) -> None:
        try:
            meta = json.loads((self.folder / "index.json").read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            log.warning("embedding cache %s: index.json unreadable; starting it again", self.folder)
            return
        # A cache from before the precision was recorded held fp32 vectors (int8 passages were refused then).
        if (meta.get("format"), meta.get("fingerprint"), meta.get("dimension"), meta.get("dtype"),
                meta.get("precision", "fp32")) != \
                (CACHE_FORMAT, self.fingerprint, self.dimension, self.dtype.name, self.precision):
            log.warning("embedding cache %s was made for another model or format; starting it again", self.folder)
            return
        for entry in meta.get("segments", []):
            segment = Segment(**entry)
            problem = self._check(segment)
            if problem:
                log.warning("embedding cache segment %s dropped: %s", segment.name, problem)
                continue
            keys = json.loads((self.folder / f"{segment.name}.keys.json").read_text())
            array = np.load(self.folder / f"{segment.name}.npy", allow_pickle=False, mmap_mode="r")
            n = len(self.segments)
            self.segments.append(segment)
            self._arrays.append(array)
            for row, digest in enumerate(keys):
                self._where[digest] = (n, row)

    def _check(self, segment: Segment) -> str | None:
        vectors, keys = self.folder / f"{segment.name}.npy", self.folder / f"{segment.name}.keys.json"
        if not vectors.is_file() or not keys.is_file():
            return "its files are missing"
        if file_sha256(vectors) != segment.vectors_sha256 or file_sha256(keys) != segment.keys_sha256:
            return "checksum mismatch"
        return None

    def __len__(self) -> int:
        return len(self._where) + sum(1 for d in self._pending if d not in self._where)

    def __contains__(self, text: str) -> bool:
        digest = text_digest(text)
        return digest in self._pending or digest in self._where

    def get(self, digest: str) -> np.ndarray | None:
        vector = self._pending.get(digest)
        if vector is not None:
            return vector
        at = self._where.get(digest)
        return None if at is None else np.asarray(self._arrays[at[0]][at[1]])

    # ------------------------------------------------------------------ writing
    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        """Remember these texts' vectors (kept in memory until :meth:`save`); known texts are left as they are."""
        for text, vector in zip(texts, vectors):
            digest = text_digest(text)
            if digest not in self._where and digest not in self._pending:
                self._pending[digest] = np.asarray(vector, dtype=self.dtype)

    def save(self) -> int:
        """Write what was put since the last save as one new segment (merging all when there are too many);
        returns the rows written. The caller holds the index's writer lock."""
        if not self._pending and len(self.segments) <= self.max_segments:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        fresh = {d: v for d, v in self._pending.items() if d not in self._where}
        if len(self.segments) + bool(fresh) > self.max_segments:
            merged = {d: np.asarray(self._arrays[s][r]) for d, (s, r) in self._where.items()} | fresh
            segments, written, keep = [self._write_segment(merged)], merged, []
        else:
            segments, written, keep = [*self.segments, self._write_segment(fresh)], fresh, self.segments
        meta = {"format": CACHE_FORMAT, "fingerprint": self.fingerprint, "kind": self.kind,
                "dimension": self.dimension, "dtype": self.dtype.name, "precision": self.precision,
                "segments": [s.__dict__ for s in segments]}
        atomic_write_text(self.folder / "index.json", json.dumps(meta, indent=1))
        self._drop_unlisted({s.name for s in segments})
        # The segments just written were checksummed as they were made: open the new one, don't re-verify all.
        if not keep:
            self.segments, self._arrays, self._where = [], [], {}
        new_segment = segments[-1]
        self.segments.append(new_segment)
        self._arrays.append(np.load(self.folder / f"{new_segment.name}.npy", allow_pickle=False, mmap_mode="r"))
        for row, digest in enumerate(written):
            self._where[digest] = (len(self.segments) - 1, row)
        self._pending = {}
        return len(written)

    def _write_segment(self, vectors: dict[str, np.ndarray]) -> Segment:
        name = f"seg-{uuid.uuid4().hex[:12]}"
        keys = list(vectors)
        array = (np.vstack([vectors[k] for k in keys]).astype(self.dtype) if keys
                 else np.empty((0, self.dimension), dtype=self.dtype))
        npy, keys_file = self.folder / f"{name}.npy", self.folder / f"{name}.keys.json"
        np.save(npy, array, allow_pickle=False)
        keys_file.write_text(json.dumps(keys))
        fsync_file(npy)
        fsync_file(keys_file)
        return Segment(name, len(keys), file_sha256(npy), file_sha256(keys_file))

    def _drop_unlisted(self, keep: set[str]) -> None:
        """Segment files no index names: replaced by a merge, or left by a crash before index.json moved."""
        for path in self.folder.glob("seg-*"):
            if path.name.split(".")[0] not in keep:
                path.unlink(missing_ok=True)


def cached_vectors(texts: list[str], embedder: Encodes, cache: EmbeddingCache | None, batch_size: int = 32,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Vectors for ``texts`` in order (float32): the cache's where it has them, the embedder's for the rest
    (each distinct missing text embedded once, then put in the cache). ``cache=None`` embeds everything."""
    if cache is None:
        return embedder.encode(texts, batch_size, progress)
    if getattr(embedder, "precision", "fp32") != cache.precision:
        raise ValueError(f"a {embedder.precision} encoder cannot fill the {cache.precision} embedding cache "
                         f"{cache.folder}")
    digests = [text_digest(t) for t in texts]
    missing: dict[str, str] = {}
    for text, digest in zip(texts, digests):
        if cache.get(digest) is None and digest not in missing:
            missing[digest] = text
    cache.hits += len(texts) - sum(1 for d in digests if d in missing)
    cache.misses += len(missing)
    if missing:
        computed = embedder.encode(list(missing.values()), batch_size, progress)
        cache.put(list(missing.values()), computed)
    elif progress:
        progress(len(texts), len(texts))
    out = np.empty((len(texts), cache.dimension), dtype=np.float32)
    for i, digest in enumerate(digests):
        out[i] = cache.get(digest)
    return out
