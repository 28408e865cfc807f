"""Does the report answer the question at all? Features of the retrieved evidence and a logistic model.

A near-miss question ("How many staff does CNCERT/CC employ?") retrieves on-topic passages with a
high cosine, so similarity alone cannot tell it from an answerable one. What gives it away is a
constraint of the question the evidence does not meet: a name, year or term absent from the best
passages, a "how many" with no number in the best sentence, a "how many graduates" whose passages
count universities but not graduates, a "what percentage" with no percentage, a "how much funding"
with no money amount in the best passages. The features measure those; the
weights and threshold come from ``reportqa eval --calibrate`` (``index/answerability.json``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from index.analysis import normalise
from index.fusion import FusionWeights

# Words that say what kind of answer is wanted, not what it is about: they need not occur in the evidence.
_QUESTION_WORDS = frozenset(normalise(
    "many much number percentage share proportion rate amount how what which who whom when where why "
    "main key role report document describe explain say mention according kind type way ways"
))
_QUANTITY = re.compile(
    r"\b(how (?:many|much|large|big|long|often)|what (?:percentage|share|proportion|fraction|number|amount)"
    r"|what is the (?:number|rate|share|budget|cost|size|total))\b", re.IGNORECASE)
# Asking for an amount of money: "how much funding / did it cost", "what fines / budget / price".
_ASKS_MONEY = re.compile(
    r"\bhow much\b.*?\b(?:fund|money|invest|cost|spen[dt]|pa(?:y|id)|allocat|budget|worth|earn|rais)"
    r"|\b(?:what|which)\b(?:\s+[\w'-]+){0,4}?\s+(?:budgets?|costs?|prices?|fines?|fees?|funding|revenues?"
    r"|salar(?:y|ies)|spending)\b", re.IGNORECASE)
_MONEY = re.compile(r"[$€£¥]|\b(?:US\$|USD|RMB|CNY|EUR|GBP|yuan|renminbi|dollars?|euros?|pounds sterling)\b",
                    re.IGNORECASE)
# "How many <what is counted> <verb or preposition> ...": the counted words end at the first of these.
_HOW_MANY = re.compile(r"\bhow many\s+(.+)", re.IGNORECASE)
_COUNT_SPAN_ENDS = frozenset(
    "do does did have has had is are was were will would can could should shall may might been be "
    "in on at of for from by to with within across under over since during per that which who whose".split())
_COUNT_SPAN_MAX_WORDS = 6
# A number counts the thing when at most this many content words (stopwords dropped) stand between
# them: "over 120 online and offline national pavilions", "the number of active IPv6 users has
# surpassed 850 million".
COUNT_WINDOW = 5
# "How many people …" is answered by a count of users, citizens, households …: one class of counted words.
_PEOPLE = frozenset(normalise("people persons individuals users netizens citizens residents inhabitants "
                              "population households"))
_MONTHS = frozenset(normalise("january february march april june july august september october november "
                              "december")) | {"may"}
_YEAR = re.compile(r"(?:19|20)\d\d")
# Asking for a percentage: "what percentage / share of / proportion", "the … deployment rate".
_ASKS_PERCENT = re.compile(r"\b(?:percentage|percent|proportion|fraction|share of|rate)\b", re.IGNORECASE)
_PERCENT = re.compile(r"%|\bper ?cent\b|\b(?:half|quarter|a third|two[- ]thirds)\b")
# Counts written as words ("signed by three countries", "dozens of projects").
_NUMBER_WORDS = frozenset(normalise(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty "
    "sixty seventy eighty ninety hundred hundreds thousand thousands million millions billion billions "
    "dozen dozens"))
_NAME_OR_NUMBER = re.compile(r"\b([A-Z][\w-]*|\d[\w.-]*)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Capitalised only because they start a clause or are question words, not because they name something.
_NOT_NAMES = frozenset("How What Which Who Whom When Where Why Does Did Do Is Are Was Were Can Could Should Has "
                       "Have In On At Of For The A An According Under Besides Through Across Overall Name List "
                       "Describe Explain Give Tell I".split())


@dataclass(frozen=True)
class AnswerabilityModel:
    """Logistic model over the features below; coefficients fitted by ``reportqa eval --calibrate``."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.5
    # The hybrid fusion the features were collected under (fused_top, the evidence chunks are read off its
    # order); None = whatever fusion the retriever ranks with.
    fusion: FusionWeights | None = None

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * features.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# The direction each feature may push the answer: more similarity can only help, an unmet constraint
# can only hurt. Calibration keeps weights to these signs, so a small eval set cannot teach it that
# words unknown to the report make an answer likelier.
FEATURE_SIGNS = {"top_dense": 1, "best_sentence": 1, "missing_terms": -1, "missing_in_top": -1,
                 "name_missing": -1, "quantity_unmet": -1, "money_unmet": -1, "count_unmet": -1,
                 "dense_margin": 1, "dense_spread": 1, "sentence_margin": 1, "agreement": 1, "fused_top": 1,
                 "missing_in_candidates": -1, "sentence_overlap": 1}
MARGIN_RANK = 10  # dense_margin: the top cosine minus the cosine at this rank (or the last one)

# A plain cosine threshold until calibrated (the bundled coefficients replace it).
DEFAULT_ANSWERABILITY = AnswerabilityModel({"top_dense": 30.0}, -12.0)


def key_terms(question: str) -> list[str]:
    """The question's normalised terms that the evidence should contain (answer-type words dropped)."""
    return [t for t in dict.fromkeys(normalise(question)) if t not in _QUESTION_WORDS]


def asks_quantity(question: str) -> bool:
    return bool(_QUANTITY.search(question))


def asks_money(question: str) -> bool:
    return bool(_ASKS_MONEY.search(question))


def counted_head(question: str) -> str | None:
    """The word, as asked, naming what a "how many" question counts: the first plural noun before the
    verb or preposition, else the last word there ("How many CERTs signed …" → "CERTs"); None for any
    other question."""
    match = _HOW_MANY.search(question)
    if not match:
        return None
    span: list[str] = []
    for word in re.findall(r"[\w/'-]+", match.group(1)):
        lowered = word.lower()
        if lowered in _COUNT_SPAN_ENDS or (span and lowered.endswith("ed")) or len(span) == _COUNT_SPAN_MAX_WORDS:
            break
        span.append(word)
    if not span:
        return None
    # The first plural: modifiers before the head noun are singular ("data transfer security assessments"),
    # and a verb without an auxiliary ("… universities offer programs") comes after it.
    plurals = [w for w in span if w.lower().endswith("s") and not w.lower().endswith(("ss", "us", "is"))]
    return plurals[0] if plurals else span[-1]


def counted_forms(head: str | None, acronyms: dict[str, str]) -> frozenset[str]:
    """The normalised forms of the counted word ``head`` (see ``counted_head``), of the head of its acronym
    expansion ("CERTs" → {"cert", "team"}) and, for people, of the other words that count them."""
    if head is None:
        return frozenset()
    terms = set(normalise(head)[-1:])
    if terms & _PEOPLE:
        terms |= _PEOPLE
    expansion = acronyms.get(head) or acronyms.get(head.rstrip("s"))
    if expansion:
        terms.update(normalise(expansion)[-1:])
    return frozenset(terms)


def counts_in(text_lower: str, counted: frozenset[str], question_numbers: set[str]) -> bool:
    """Whether a sentence of ``text_lower`` has a number within COUNT_WINDOW content words of a counted
    term. Years, days of a month and the question's own numbers are not counts."""
    for sentence in re.split(r"(?<=[.;!?])\s+", text_lower):
        words = normalise(sentence)
        numbers = [i for i, w in enumerate(words) if w in _NUMBER_WORDS or (
            w.isdigit() and w not in question_numbers and not _YEAR.fullmatch(w)
            and not (i > 0 and words[i - 1] in _MONTHS))]
        if not numbers:
            continue
        heads = [i for i, w in enumerate(words) if w in counted]
        if any(abs(i - j) <= COUNT_WINDOW for i in numbers for j in heads):
            return True
    return False


def names_and_numbers(question: str) -> list[str]:
    """Capitalised words and numbers after the first word: names, acronyms, years, "6G"."""
    return [m.group(1) for m in _NAME_OR_NUMBER.finditer(question)
            if m.start() > 0 and m.group(1) not in _NOT_NAMES]


def mentions(text_lower: str, name: str, acronyms: dict[str, str]) -> bool:
    """Whether ``text_lower`` mentions ``name``, allowing inflection ("Chinese"/"China") and acronyms."""
    lowered = name.lower()
    if lowered in text_lower or lowered[:max(4, len(lowered) - 3)] in text_lower:
        return True
    expansion = acronyms.get(name)
    return bool(expansion) and expansion.lower() in text_lower


# The reason given for a rejected question whose constraints are all met: its passages are just not close.
FAR_FROM_QUESTION = "the best passages are not close to the question"


@dataclass(frozen=True)
class ConstraintCheck:
    """What the question asks for that the best passages (or their best sentence) do not have."""

    missing_words: tuple[str, ...]  # key question words, as asked, absent from the best passages
    missing_share: float            # the share of key terms absent
    missing_names: tuple[str, ...]  # names, acronyms, years and numbers of the question absent
    quantity_unmet: bool            # asks how many / what share, and the best sentence has no new number
    uncounted: str | None           # "how many X" and no number counts X: the X, as asked
    percent_unmet: bool             # asks for a percentage or rate, and there is no percentage
    money_unmet: bool               # asks for an amount of money, and there is none

    def reasons(self) -> list[str]:
        """The unmet constraints in words, for people deciding whether to trust the passages (empty when
        the question was rejected on similarity alone: see ``FAR_FROM_QUESTION``)."""
        out = []
        if self.missing_names:
            out.append(f"the best passages do not mention {', '.join(self.missing_names)}")
        if self.uncounted:
            out.append(f"no number of {self.uncounted} in the best passages")
        if self.percent_unmet:
            out.append("no percentage in the best passages")
        if self.money_unmet:
            out.append("no amount of money in the best passages")
        if self.quantity_unmet and not self.uncounted:
            out.append("no number in the best sentence")
        words = [w for w in self.missing_words if w not in self.missing_names]
        if words:
            out.append(f"not in the best passages: {', '.join(words)}")
        return out


def check_constraints(question: str, top_terms: frozenset[str], top_lower: str, best_sentence: str,
                      acronyms: dict[str, str]) -> ConstraintCheck:
    """Check the question's constraints against the best passages (their normalised terms, their
    lowercased text) and the best sentence."""
    terms = key_terms(question)
    missing = {t for t in terms if t not in top_terms}
    asked_numbers = set(_NUMBER.findall(question))
    head = counted_head(question)
    counted = counted_forms(head, acronyms)
    return ConstraintCheck(
        missing_words=tuple(dict.fromkeys(w for w in re.findall(r"[\w'-]+", question)
                                          if (n := normalise(w)) and n[-1] in missing)),
        missing_share=len(missing) / (len(terms) or 1),
        missing_names=tuple(n for n in names_and_numbers(question) if not mentions(top_lower, n, acronyms)),
        quantity_unmet=asks_quantity(question) and not any(
            n not in asked_numbers for n in _NUMBER.findall(best_sentence)) and not any(
            w in _NUMBER_WORDS for w in normalise(best_sentence)),
        uncounted=head if counted and not counts_in(
            top_lower, counted, set(normalise(question))) else None,
        percent_unmet=bool(_ASKS_PERCENT.search(question)) and not _PERCENT.search(top_lower),
        money_unmet=asks_money(question) and not _MONEY.search(top_lower),
    )


def evidence_features(check: ConstraintCheck) -> dict[str, float]:
    """The model's constraint features (the similarity features come from the retriever)."""
    return {
        "missing_in_top": check.missing_share,
        "name_missing": float(bool(check.missing_names)),
        "quantity_unmet": float(check.quantity_unmet),
        "money_unmet": float(check.money_unmet),
        "count_unmet": float(bool(check.uncounted) or check.percent_unmet),
    }


def missing_share(expanded_question: str, candidate_terms: frozenset[str]) -> float:
    """The share of the question's key terms (with the acronyms the index defines expanded, so either form
    found counts for part of the share) absent from every candidate chunk: words the searched text lacks
    as a whole, not just in the best passages."""
    terms = key_terms(expanded_question)
    return sum(t not in candidate_terms for t in terms) / (len(terms) or 1)


def shape_features(dense_rank: dict, bm25_rank: dict, hybrid: dict[int, float], best: dict[int, tuple[float, int]],
                   best_score: float, top_fused: float) -> dict[str, float]:
    """How the retrieved lists look, whatever the words: an answerable question tends to have a passage that
    stands out from the rest (margins), that both retrievers agree on, and that is first in the fused list.
    ``dense_rank``/``bm25_rank``: {chunk: (rank, score)}; ``best``: {chunk: (best sentence cosine, index)};
    ``top_fused``: the fused score of a chunk first in every list."""
    dense = sorted((s for _, s in dense_rank.values()), reverse=True)
    top_dense = dense[0] if dense else 0.0
    sentences = sorted((c for c, _ in best.values()), reverse=True)
    dense_top5 = {i for i, (r, _) in dense_rank.items() if r <= 5}
    bm25_top5 = {i for i, (r, _) in bm25_rank.items() if r <= 5}
    return {
        "top_dense": float(top_dense),
        "best_sentence": float(best_score),
        "dense_margin": float(top_dense - dense[min(MARGIN_RANK, len(dense)) - 1]) if dense else 0.0,
        "dense_spread": float((top_dense - np.mean(dense)) / (np.std(dense) + 1e-6)) if len(dense) > 1 else 0.0,
        "sentence_margin": float(best_score - np.median(sentences)) if sentences else 0.0,
        "agreement": len(dense_top5 & bm25_top5) / 5.0,
        "fused_top": float(max(hybrid.values(), default=0.0) / top_fused) if top_fused else 0.0,
    }
