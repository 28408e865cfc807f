"""Lexical retrieval: BM25 (bm25s) over exactly the text that is embedded, with one normaliser
for chunks and questions, acronym expansion and typo-tolerant query terms."""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the this to was were will "
    "with what which who whom how when where why does did do can could should would may might shall about "
    "been being their there they them these those than then such not no nor also our we you your i me my".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> list[str]:
    """Lowercased, accent-folded, stemmed word tokens without stopwords (chunks and questions alike)."""
    if len(text) <= _MEMO_MAX_CHARS:  # one question is normalised by several steps of a search
        return list(_normalise_short(text))
    return _normalise(text)


_MEMO_MAX_CHARS = 300


@functools.lru_cache(maxsize=4096)
def _normalise_short(text: str) -> tuple[str, ...]:
    return tuple(_normalise(text))


def _normalise(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    words = [w for w in _TOKEN.findall(text) if w not in _STOPWORDS]
    return _STEMMER.stemWords(words)


# "Cyberspace Administration (CAC)", "the Internet Society (ISOC)", "Ministry of Commerce (MOC)"
_DEFINITION = re.compile(r"((?:[A-Z][\w'’-]*[ ,]+(?:(?:of|and|for|the|on|in|&)[ ]+)*){1,10})\(([A-Z][A-Za-z]*[A-Z]s?)\)")
_SMALL = {"of", "and", "for", "the", "on", "in", "&"}


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(c in it for c in needle)


def find_acronyms(texts: list[str]) -> dict[str, str]:
    """Acronyms a report defines in parentheses, mapped to their expansion.

    The expansion is the shortest run of preceding capitalised words whose initials spell the
    acronym in order (small words and unprinted letters may be skipped), so "by the Ministry of Commerce
    (MOC)" gives "Ministry of Commerce" and "the Cyberspace Administration (CAC)" "Cyberspace Administration"."""
    found: dict[str, str] = {}
    for text in texts:
        text = re.sub(r"(\w)\(", r"\1 (", text)  # "Development(UNCTAD)"
        for m in _DEFINITION.finditer(text):
            acronym = m.group(2)
            letters = [c for c in acronym if c.isupper()]
            words = m.group(1).replace(",", " ").split()
            for start in range(len(words) - 1, -1, -1):
                candidate = words[start:]
                if candidate[0].lower() in _SMALL:
                    continue
                initials = [w[0].upper() for w in candidate if w.lower() not in _SMALL]
                if initials[0] == letters[0] and _is_subsequence(initials, letters) and 2 * len(initials) >= len(letters):
                    found.setdefault(acronym, " ".join(candidate))
                    break
    return found


def expand_acronyms(question: str, acronyms: dict[str, str]) -> str:
    """Add the other form of every defined acronym the question uses, in either direction.

    An acronym matches as written, or in lower case when it has 3+ letters ("cac", not "un")."""
    additions = []
    lowered = question.lower()
    words = set(re.findall(r"[\w-]+", question))
    lowered_words = {w.lower() for w in words}
    for acronym, expansion in acronyms.items():
        if acronym in words or (len(acronym) >= 3 and acronym.lower() in lowered_words):
            if expansion.lower() not in lowered:
                additions.append(expansion)
        elif expansion.lower() in lowered:
            additions.append(acronym)
    return f"{question} ({'; '.join(additions)})" if additions else question


class TypoCorrector:
    """Maps an unknown query term to known vocabulary terms one edit away (delete-neighbourhood index)."""

    def __init__(self, vocabulary: list[str], min_length: int = 5):
        self.vocabulary = set(vocabulary)
        self.min_length = min_length
        self._deletes: dict[str, set[str]] = defaultdict(set)
        for term in vocabulary:
            if len(term) >= min_length - 1 and term.isalpha():
                for variant in self._variants(term):
                    self._deletes[variant].add(term)

    @staticmethod
    def _variants(term: str) -> set[str]:
        return {term} | {term[:i] + term[i + 1:] for i in range(len(term))}

    def correct(self, term: str) -> list[str]:
        if term in self.vocabulary or len(term) < self.min_length or not term.isalpha():
            return [term]
        matches: set[str] = set()
        for variant in self._variants(term):
            matches |= self._deletes.get(variant, set())
        return sorted(matches) or [term]


class LexicalIndex:
    """BM25 over tokenised chunk texts. Files: bm25s's own (numpy + json, no pickle)."""

    def __init__(self, model: bm25s.BM25, vocabulary: list[str]):
        self.model = model
        self.vocabulary = vocabulary
        self._corrector = TypoCorrector(vocabulary)

    @classmethod
    def build(cls, texts: list[str], k1: float, b: float) -> "LexicalIndex":
        tokens = [normalise(t) for t in texts]
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        # bm25s needs every document non-empty to keep ids aligned; an empty one gets a placeholder.
        model.index([t or ["\u2205"] for t in tokens], show_progress=False)
        vocabulary = sorted(model.vocab_dict)
        return cls(model, vocabulary)

    def query_terms(self, question: str) -> list[str]:
        terms: list[str] = []
        for term in normalise(question):
            terms.extend(self._corrector.correct(term))
        return [t for t in terms if t in self.model.vocab_dict]

    def scores(self, question: str) -> np.ndarray:
        terms = self.query_terms(question)
        if not terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.model.get_scores(terms), dtype=np.float32)

    @property
    def size(self) -> int:
        return int(self.model.scores["num_docs"])

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), allow_pickle=False)
        (folder / "vocabulary.json").write_text(json.dumps(self.vocabulary))

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "LexicalIndex":
        model = bm25s.BM25.load(str(folder), mmap=mmap, allow_pickle=False, load_corpus=False)
        vocabulary = json.loads((folder / "vocabulary.json").read_text())
        return cls(model, vocabulary)


class FieldedLexicalIndex:
    """BM25 over documents with several fields (e.g. title and body), one index per field, scores summed.

    This is the "multifield" scheme of Pyserini's BEIR baselines (Lucene sums a term's per-field BM25
    scores); each field keeps its own length normalisation, so a short title is not diluted by its body."""

    def __init__(self, fields: list[LexicalIndex]):
        self.fields = fields

    @classmethod
    def build(cls, fields: list[list[str]], k1: float, b: float) -> "FieldedLexicalIndex":
        return cls([LexicalIndex.build(texts, k1, b) for texts in fields])

    def query_terms(self, question: str) -> list[str]:
        terms: list[str] = []
        for field in self.fields:
            terms.extend(t for t in field.query_terms(question) if t not in terms)
        return terms

    def scores(self, question: str) -> np.ndarray:
        return np.sum([field.scores(question) for field in self.fields], axis=0, dtype=np.float32)

    @property
    def size(self) -> int:
        return self.fields[0].size
