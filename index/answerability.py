"""Does the report answer the question at all? Features of the retrieved evidence and a logistic model.

A near-miss question ("How many staff does CNCERT/CC employ?") retrieves on-topic passages with a
high cosine, so similarity alone cannot tell it from an answerable one. What gives it away is a
constraint of the question the evidence does not meet: a name, year or term absent from the best
passages, a "how many" with no number in the best sentence, a "how much funding" with no money
amount in the best passages. The features measure those; the
weights and threshold come from ``reportqa eval --calibrate`` (``index/answerability.json``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from index.lexical import normalise

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

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * features.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# The direction each feature may push the answer: more similarity can only help, an unmet constraint
# can only hurt. Calibration keeps weights to these signs, so a small eval set cannot teach it that
# words unknown to the report make an answer likelier.
FEATURE_SIGNS = {"top_dense": 1, "best_sentence": 1, "missing_terms": -1, "missing_in_top": -1,
                 "name_missing": -1, "quantity_unmet": -1, "money_unmet": -1}

# A plain cosine threshold until calibrated (the bundled coefficients replace it).
DEFAULT_ANSWERABILITY = AnswerabilityModel({"top_dense": 30.0}, -12.0)


def key_terms(question: str) -> list[str]:
    """The question's normalised terms that the evidence should contain (answer-type words dropped)."""
    return [t for t in dict.fromkeys(normalise(question)) if t not in _QUESTION_WORDS]


def asks_quantity(question: str) -> bool:
    return bool(_QUANTITY.search(question))


def asks_money(question: str) -> bool:
    return bool(_ASKS_MONEY.search(question))


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


def evidence_features(question: str, top_terms: frozenset[str], top_lower: str, best_sentence: str,
                      acronyms: dict[str, str]) -> dict:
    """How well the best passages (their normalised terms, their lowercased text) and the best sentence
    meet the question's constraints."""
    terms = key_terms(question)
    names = names_and_numbers(question)
    asked_numbers = set(_NUMBER.findall(question))
    quantity_unmet = asks_quantity(question) and not any(
        n not in asked_numbers for n in _NUMBER.findall(best_sentence))
    return {
        "missing_in_top": sum(1 for t in terms if t not in top_terms) / (len(terms) or 1),
        "name_missing": float(any(not mentions(top_lower, n, acronyms) for n in names)),
        "quantity_unmet": float(quantity_unmet),
        "money_unmet": float(asks_money(question) and not _MONEY.search(top_lower)),
    }
