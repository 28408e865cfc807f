"""Synthetic workloads for the benchmarks: clustered unit vectors, Zipf pseudo-text, shuffled chunks.

Deterministic for a seed, so two runs (or two backends) see the same data."""
from __future__ import annotations

import math

import numpy as np

DIM = 384
NOISE = 1.0  # synthetic vectors: centre + NOISE * gaussian(0, 1/dim), then normalised


def clustered_unit_vectors(n: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``n`` unit vectors around gaussian centres (plus ``n_queries`` fresh draws from the same clusters).

    Centres: standard normal, normalised. Each point: centre + NOISE * N(0, I/dim), normalised
    (cosine to its centre ~0.7). Queries are new points from random centres, so their neighbours are
    members of one cluster, as with real questions near real chunks."""
    rng = np.random.default_rng(seed)
    n_centres = int(min(5_000, max(1_000, n // 200)))
    centres = rng.standard_normal((n_centres, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scale = np.float32(NOISE / math.sqrt(DIM))
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        block = rng.standard_normal((m, DIM), dtype=np.float32)
        block *= scale
        block += centres[rng.integers(0, n_centres, m)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + m] = block
    queries = rng.standard_normal((n_queries, DIM), dtype=np.float32) * scale
    queries += centres[rng.integers(0, n_centres, n_queries)]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return out, queries, n_centres


_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["tra", "pla", "sto", "gri", "mun", "ver"]


def vocabulary(size: int, seed: int) -> list[str]:
    """``size`` distinct alphabetic pseudo-words of 2-4 syllables."""
    rng = np.random.default_rng(seed)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(2, 5))
        word = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), n))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_texts(n: int, vocab: list[str], seed: int, words_min: int = 60, words_max: int = 120) -> list[str]:
    """``n`` pseudo-sentences with Zipf(1.0)-distributed words, as long as real chunks (60-120 words)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
    p = 1.0 / (ranks + 2.7)
    p /= p.sum()
    cdf = np.cumsum(p)
    words = np.asarray(vocab, dtype=object)
    lengths = rng.integers(words_min, words_max + 1, n)
    texts: list[str] = []
    step = 20_000
    for start in range(0, n, step):
        block = lengths[start:start + step]
        idx = np.searchsorted(cdf, rng.random(int(block.sum())))
        idx = np.minimum(idx, len(vocab) - 1)
        pos = 0
        for length in block:
            texts.append(" ".join(words[idx[pos:pos + length]]) + ".")
            pos += length
    return texts


def synthetic_chunks(base: list[str], n: int, seed: int) -> list[str]:
    """``n`` distinct chunk-like texts: the words of real chunks, shuffled (same length distribution)."""
    rng = np.random.default_rng(seed)
    split = [b.split() for b in base if b.strip()]
    out = []
    for i in range(n):
        words = list(split[i % len(split)])
        rng.shuffle(words)
        out.append(" ".join(words))
    return out
