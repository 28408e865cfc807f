"""What changed between two editions of a document, section by section.

Sections are matched by printed number and title together first, then by title alone (a renumbered
section), then by number alone when the texts are still alike (a retitled one). What is left of the old
edition was removed, of the new one added. A matched section is *changed* when its own text differs (with
the similarity of the two texts, 0-1, over words) and *moved* when its number or parent changed or it
left the reading order the other matched sections keep (the longest run in the same order stays put).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

from ingest import Chunk, Section

SIMILAR_FOR_RETITLED = 0.5  # a section matched by number alone must keep at least this much of its text


@dataclass(frozen=True)
class SectionRef:
    id: str
    number: str
    title: str
    path: tuple[str, ...]

    @classmethod
    def of(cls, s: Section) -> "SectionRef":
        return cls(s.id, s.number, s.title, tuple(s.path))


@dataclass(frozen=True)
class SectionChange:
    kind: str  # "added", "removed", "moved" or "changed"
    old: SectionRef | None
    new: SectionRef | None
    similarity: float | None = None  # changed / moved: how alike the two texts are (1.0 = the same)


@dataclass(frozen=True)
class EditionDiff:
    key: str
    from_edition: str
    to_edition: str
    added: tuple[SectionChange, ...] = ()
    removed: tuple[SectionChange, ...] = ()
    moved: tuple[SectionChange, ...] = ()
    changed: tuple[SectionChange, ...] = ()
    unchanged: int = 0  # matched sections neither moved nor changed

    @property
    def changes(self) -> tuple[SectionChange, ...]:
        return self.added + self.removed + self.moved + self.changed


@dataclass
class _Side:
    sections: list[Section]
    texts: dict[str, str] = field(default_factory=dict)


def section_texts(sections: list[Section], chunks: list[Chunk]) -> dict[str, str]:
    """Each section's own text (its chunks' clean text in order; not its subsections')."""
    parts: dict[str, list[tuple[int, str]]] = {}
    for c in chunks:
        parts.setdefault(c.section_id, []).append((c.ordinal, c.text))
    return {s.id: " ".join(t for _, t in sorted(parts.get(s.id, []))) for s in sections}


def similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    return round(SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio(), 3)


def _pair(old: list[Section], new: list[Section], key, matched: dict[str, str], accept=None) -> None:
    """Match still-unmatched sections whose ``key`` agrees, in document order (``accept`` may refuse a pair)."""
    taken = set(matched.values())
    waiting: dict[object, list[Section]] = {}
    for s in new:
        if s.id not in taken and key(s) is not None:
            waiting.setdefault(key(s), []).append(s)
    for s in old:
        if s.id in matched or key(s) is None:
            continue
        candidates = waiting.get(key(s), [])
        for i, n in enumerate(candidates):
            if accept is None or accept(s, n):
                matched[s.id] = n.id
                candidates.pop(i)
                break


def _in_order(sequence: list[int]) -> set[int]:
    """Positions of one longest increasing subsequence of ``sequence`` (the sections that kept their order)."""
    tails: list[int] = []
    tail_at: list[int] = []
    parent = [-1] * len(sequence)
    from bisect import bisect_left

    for i, value in enumerate(sequence):
        j = bisect_left(tails, value)
        if j == len(tails):
            tails.append(value)
            tail_at.append(i)
        else:
            tails[j], tail_at[j] = value, i
        parent[i] = tail_at[j - 1] if j else -1
    keep, i = set(), tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return keep


def diff_editions(key: str, from_edition: str, to_edition: str, old_sections: list[Section], old_chunks: list[Chunk],
                  new_sections: list[Section], new_chunks: list[Chunk]) -> EditionDiff:
    old_text, new_text = section_texts(old_sections, old_chunks), section_texts(new_sections, new_chunks)
    matched: dict[str, str] = {}  # old section id -> new section id
    _pair(old_sections, new_sections, lambda s: (s.number, s.title), matched)
    _pair(old_sections, new_sections, lambda s: s.title or None, matched)
    _pair(old_sections, new_sections, lambda s: s.number or None, matched,
          accept=lambda o, n: similarity(old_text[o.id], new_text[n.id]) >= SIMILAR_FOR_RETITLED)
    old_by_id = {s.id: s for s in old_sections}
    new_by_id = {s.id: s for s in new_sections}
    new_position = {s.id: i for i, s in enumerate(new_sections)}
    old_position = {s.id: i for i, s in enumerate(old_sections)}
    pairs = sorted(((old_by_id[o], new_by_id[n]) for o, n in matched.items()), key=lambda p: old_position[p[0].id])
    kept_order = _in_order([new_position[n.id] for _, n in pairs])
    parent_of_new = {o_parent: n_parent for o_parent, n_parent in matched.items()}

    moved, changed, unchanged = [], [], 0
    for i, (o, n) in enumerate(pairs):
        alike = similarity(old_text[o.id], new_text[n.id])
        same_parent = parent_of_new.get(o.parent_id, None) == n.parent_id if o.parent_id else n.parent_id is None
        if o.number != n.number or not same_parent or i not in kept_order:
            moved.append(SectionChange("moved", SectionRef.of(o), SectionRef.of(n), alike))
        if alike < 1.0 or o.title != n.title:
            changed.append(SectionChange("changed", SectionRef.of(o), SectionRef.of(n), alike))
        if o.number == n.number and same_parent and i in kept_order and alike == 1.0 and o.title == n.title:
            unchanged += 1
    new_matched = set(matched.values())
    removed = [SectionChange("removed", SectionRef.of(s), None) for s in old_sections if s.id not in matched]
    added = [SectionChange("added", None, SectionRef.of(s)) for s in new_sections if s.id not in new_matched]
    return EditionDiff(key, from_edition, to_edition, tuple(added), tuple(removed), tuple(moved), tuple(changed),
                       unchanged)
