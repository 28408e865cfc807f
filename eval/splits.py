"""The bundled report's eval set, split once into a fit half and a held-out half.

Anything tuned or fitted on the report's questions (fusion weights, the no-answer model) may use the
``fit`` half only; ``reportqa eval`` reports the ``heldout`` half by default. The split is stratified
by question type and deterministic: within each type the questions are ordered by
sha256(``SALT`` + id) and alternate heldout, fit, heldout, ... . It was computed once and stored in
``eval/splits.json``; a question missing from that file is refused (an explicit assignment, not a
silent re-shuffle of everyone else), and ``tests/test_splits.py`` checks the file against the rule.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
SPLITS_FILE = EVAL_DIR / "splits.json"
SALT = "reportqa-split-v1:"
SPLITS = ("heldout", "fit", "all")
DEFAULT_SPLIT = "heldout"


class SplitError(ValueError):
    """An unknown split name, or questions the stored split does not assign."""


def baseline_file(split: str) -> Path:
    """The committed baseline a run on ``split`` is checked against ("all": the historical eval/baseline.json)."""
    return EVAL_DIR / ("baseline.json" if split == "all" else f"baseline-{split}.json")


def assign_splits(questions: list[tuple[str, str]]) -> dict[str, str]:
    """(id, type) pairs -> {id: "heldout" | "fit"}: per type, hash order, alternating from heldout."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for qid, qtype in questions:
        by_type[qtype].append(qid)
    out = {}
    for ids in by_type.values():
        ordered = sorted(ids, key=lambda i: hashlib.sha256((SALT + i).encode()).hexdigest())
        for n, qid in enumerate(ordered):
            out[qid] = "heldout" if n % 2 == 0 else "fit"
    return out


def stored_splits(path: Path = SPLITS_FILE) -> dict[str, str]:
    data = json.loads(path.read_text())
    return {qid: name for name in ("heldout", "fit") for qid in data[name]}


def write_splits(questions: list[tuple[str, str]], path: Path = SPLITS_FILE) -> None:
    """Store the split (done once; the file is committed)."""
    assigned = assign_splits(questions)
    data = {"rule": f"per type, sorted by sha256('{SALT}' + id), alternating heldout/fit",
            "heldout": sorted(q for q, s in assigned.items() if s == "heldout"),
            "fit": sorted(q for q, s in assigned.items() if s == "fit")}
    path.write_text(json.dumps(data, indent=1) + "\n")


def select(questions: list, split: str, path: Path = SPLITS_FILE) -> list:
    """The questions (records with an ``id``) of ``split``; "all" keeps every one."""
    if split not in SPLITS:
        raise SplitError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    if split == "all":
        return list(questions)
    stored = stored_splits(path)
    missing = [q.id for q in questions if q.id not in stored]
    if missing:
        raise SplitError(f"{len(missing)} question(s) not in {path.name} (first: {missing[0]}); assign them to a split")
    return [q for q in questions if stored[q.id] == split]
