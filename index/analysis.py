"""Query and passage analysis, one analyzer for every backend: normalisation (accent folding, lowercase,
words), the stop list, Snowball English stemming, acronyms a report defines, typo correction.

Chunks are indexed and questions searched through these same functions, whichever backend holds the
index (FAISS + bm25s, or Milvus's BM25 function over pre-analysed text).
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from typing import Callable

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
    if text.isascii():  # nothing to fold; the per-character loop below was most of a search's highlight time
        text = text.lower()
    else:
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


_WORD = re.compile(r"[\w-]+")
_ALNUM = re.compile(r"\w+")


class AcronymTable:
    """An index's acronyms keyed by what a question must contain for each to apply, built once per index.

    A library defines hundreds of acronyms (438 at 400 QASPER papers); trying each one against every question
    took 0.09 ms a question there, this 0.02 ms, with the same result on 3,747 QASPER and report questions.
    A question's own words pick the few entries that can apply: the acronym itself (as written, or lowered
    with 3+ letters) or its expansion's first word (or a prefix of a word: "network" in "networks")."""

    def __init__(self, acronyms: dict[str, str]):
        self.entries = [(a, e, e.lower()) for a, e in acronyms.items()]
        self._as_written: dict[str, list[int]] = defaultdict(list)
        self._lowered: dict[str, list[int]] = defaultdict(list)
        self._first_word: dict[str, list[int]] = defaultdict(list)
        for i, (acronym, _, expansion_lower) in enumerate(self.entries):
            self._as_written[acronym].append(i)
            if len(acronym) >= 3:
                self._lowered[acronym.lower()].append(i)
            first = _ALNUM.search(expansion_lower)
            if first:
                self._first_word[first.group(0)].append(i)

    def expand(self, question: str) -> str:
        """Add the other form of every defined acronym the question uses, in either direction (in the
        order the acronyms were defined).

        An acronym matches as written, or in lower case when it has 3+ letters ("cac", not "un"); an
        expansion matches when it occurs in the lowered question from the start of a word."""
        words = set(_WORD.findall(question))
        lowered_words = {w.lower() for w in words}
        used: set[int] = set()
        for w in words:
            used.update(self._as_written.get(w, ()))
        for w in lowered_words:
            used.update(self._lowered.get(w, ()))
        lowered = question.lower()
        named = set()
        for w in set(_ALNUM.findall(lowered)):  # an expansion's first word may be a prefix ("network" in "networks")
            for end in range(1, len(w) + 1):
                named.update(self._first_word.get(w[:end], ()))
        additions = []
        for i in sorted(used | named):
            acronym, expansion, expansion_lower = self.entries[i]
            if i in used:
                if expansion_lower not in lowered:
                    additions.append(expansion)
            elif expansion_lower in lowered:
                additions.append(acronym)
        return f"{question} ({'; '.join(additions)})" if additions else question


def expand_acronyms(question: str, acronyms: dict[str, str] | AcronymTable) -> str:
    """:meth:`AcronymTable.expand` (a dict is indexed on the fly; a retriever keeps its table)."""
    table = acronyms if isinstance(acronyms, AcronymTable) else AcronymTable(acronyms)
    return table.expand(question)


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


class QueryAnalyzer:
    """A question's BM25 terms against one index's vocabulary: normalised, typo-corrected, unknown ones dropped."""

    def __init__(self, vocabulary: list[str]):
        self.vocabulary = set(vocabulary)
        self._corrector = TypoCorrector(vocabulary)

    def terms(self, question: str) -> list[str]:
        terms: list[str] = []
        for term in normalise(question):
            terms.extend(self._corrector.correct(term))
        return [t for t in terms if t in self.vocabulary]

    def known_terms(self, question: str) -> tuple[int, int]:
        return count_known(question, self.terms)


def count_known(question: str, query_terms: Callable[[str], list[str]]) -> tuple[int, int]:
    """(terms the index knows, all terms) of the question after normalisation and typo correction."""
    terms = normalise(question)
    return sum(1 for t in terms if query_terms(t)), len(terms)
