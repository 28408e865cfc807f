"""QASPER papers as records: loading the official JSON, question types, gold evidence, Markdown rendering.

Evidence strings are whole paragraphs copied from ``full_text``; each is resolved to the paragraph(s)
it names. Evidence that is no paragraph is counted, never silently dropped: ``FLOAT SELECTED:`` captions
(tables and figures are not in the text), section names an annotator picked, and strings found nowhere.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ANSWER_TYPES = ("extractive", "abstractive", "yes-no", "unanswerable")
FLOAT_PREFIX = "FLOAT SELECTED"
SECTION_SEPARATOR = ":::"
MAX_HEADING_LEVEL = 6

Unit = tuple[str, int]  # (paper id, paragraph index in reading order)


class QasperInputError(ValueError):
    """The QASPER file cannot be used; the message says why."""


@dataclass(frozen=True)
class EvidenceCounts:
    paragraphs: int = 0  # evidence strings resolved to a paragraph
    float_selected: int = 0  # table/figure captions: not in the text
    section_names: int = 0  # a heading picked as evidence
    not_found: int = 0  # matches no paragraph and no heading
    answerable_without_text_evidence: int = 0  # answerable questions none of whose evidence is a paragraph

    def __add__(self, other: "EvidenceCounts") -> "EvidenceCounts":
        return EvidenceCounts(*(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values())))


@dataclass(frozen=True)
class QasperQuestion:
    id: str
    paper_id: str
    question: str
    type: str  # the annotators' most common answer type (ties: the first annotator's)
    unanswerable: bool  # every annotator marked it unanswerable
    evidence: tuple[frozenset, ...]  # per annotator: the gold paragraphs (Units) found in the text
    annotator_unanswerable: tuple[bool, ...] = ()  # per annotator, in the file's order: marked it unanswerable

    @property
    def relevant(self) -> frozenset:
        return frozenset().union(*self.evidence) if self.evidence else frozenset()

    @property
    def scorable(self) -> bool:
        """Has at least one gold paragraph in the text, so ranking metrics apply."""
        return bool(self.relevant)


@dataclass(frozen=True)
class QasperPaper:
    id: str
    title: str
    sections: tuple[tuple[str, tuple[str, ...]], ...]  # (section_name, paragraphs) in reading order
    questions: tuple[QasperQuestion, ...]
    evidence: EvidenceCounts

    @property
    def paragraphs(self) -> list[str]:
        return [p for _, paras in self.sections for p in paras]


@dataclass(frozen=True)
class RenderedPaper:
    paper_id: str
    text: str  # the Markdown file's content
    spans: tuple[tuple[int, int], ...]  # [start, end) of each paragraph in ``text``, by paragraph index


def answer_type(answer: dict) -> str:
    if answer.get("unanswerable"):
        return "unanswerable"
    if answer.get("extractive_spans"):
        return "extractive"
    if answer.get("yes_no") is not None:
        return "yes-no"
    return "abstractive"


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _parse_paper(paper_id: str, raw: dict) -> QasperPaper:
    try:
        sections = tuple((str(s.get("section_name") or ""), tuple(str(p) for p in s["paragraphs"] if str(p).strip()))
                         for s in raw["full_text"])
        qas = raw["qas"]
    except (KeyError, TypeError) as exc:
        raise QasperInputError(f"paper {paper_id}: not in the QASPER shape (missing {exc})") from None
    by_text: dict[str, set[int]] = {}
    for j, p in enumerate(p for _, paras in sections for p in paras):
        by_text.setdefault(p, set()).add(j)
        by_text.setdefault(_squash(p), set()).add(j)
    names = {_squash(part) for name, _ in sections for part in [name, *name.split(SECTION_SEPARATOR)] if part.strip()}
    counts = Counter()
    questions = []
    for qa in qas:
        answers = [a["answer"] for a in qa.get("answers", [])]
        if not answers:
            continue
        per_annotator = []
        for a in answers:
            found: set[Unit] = set()
            for ev in a.get("evidence", []):
                if ev.startswith(FLOAT_PREFIX):
                    counts["float_selected"] += 1
                elif (idx := by_text.get(ev) or by_text.get(_squash(ev))):
                    counts["paragraphs"] += 1
                    found.update((paper_id, j) for j in idx)
                elif _squash(ev) in names:
                    counts["section_names"] += 1
                else:
                    counts["not_found"] += 1
            if not a.get("unanswerable"):
                per_annotator.append(frozenset(found))
        types = Counter(answer_type(a) for a in answers)
        unanswerable = all(a.get("unanswerable") for a in answers)
        q = QasperQuestion(qa["question_id"], paper_id, qa["question"], types.most_common(1)[0][0], unanswerable,
                           tuple(per_annotator), tuple(bool(a.get("unanswerable")) for a in answers))
        if not unanswerable and not q.scorable:
            counts["answerable_without_text_evidence"] += 1
        questions.append(q)
    return QasperPaper(paper_id, str(raw.get("title") or paper_id), sections, tuple(questions),
                       EvidenceCounts(**counts))


@dataclass(frozen=True)
class AnnotatorAgreement:
    """How well one human annotator, who read the whole paper, predicts the others' no-answer label."""
    judgements: int  # (question, annotator) pairs on questions with two or more annotators
    unanswerable: int  # pairs whose other annotators all marked the question unanswerable
    rejected: float  # share of those the held-out annotator marked unanswerable too
    kept: float  # share of the other pairs the held-out annotator answered


def annotator_agreement(questions) -> AnnotatorAgreement:
    """Leave-one-annotator-out agreement on answerability: a human reference for a no-answer signal.

    For every question with n >= 2 annotators and each annotator i, the label is "unanswerable" when all
    n-1 others marked it so (the definition the no-answer metrics use) and the prediction is annotator i's
    own mark. rejected = P(i marks unanswerable | label unanswerable), kept = P(i answers | label
    answerable), each pooled over all (question, i) pairs.
    """
    rejected = unanswerable = kept = answerable = 0
    for q in questions:
        marks = q.annotator_unanswerable
        if len(marks) < 2:
            continue
        for i, mark in enumerate(marks):
            if all(marks[:i] + marks[i + 1:]):
                unanswerable += 1
                rejected += mark
            else:
                answerable += 1
                kept += not mark
    return AnnotatorAgreement(unanswerable + answerable, unanswerable,
                              rejected / unanswerable if unanswerable else 0.0, kept / answerable if answerable else 1.0)


def load_qasper(path: Path, papers: int | None = None) -> list[QasperPaper]:
    """The first ``papers`` papers of a QASPER file (file order), all when None."""
    path = Path(path)
    if papers is not None and papers < 1:
        raise QasperInputError("--papers must be at least 1")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise QasperInputError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise QasperInputError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise QasperInputError(f"{path}: expected an object of papers keyed by id")
    ids = list(data)[:papers] if papers else list(data)
    return [_parse_paper(pid, data[pid]) for pid in ids]


def render_markdown(paper: QasperPaper) -> RenderedPaper:
    """The paper as Markdown: title as ``#``, ``A ::: B`` section names as nested headings, paragraphs as
    paragraphs (a newline inside one becomes a space, so it stays one paragraph at the same length)."""
    out: list[str] = [f"# {_squash(paper.title) or paper.id}\n\n"]
    pos = len(out[0])
    spans: list[tuple[int, int]] = []
    previous: list[str] = []
    for name, paragraphs in paper.sections:
        parts = [_squash(p) for p in name.split(SECTION_SEPARATOR) if p.strip()]
        if parts and parts != previous:
            common = 0
            while common < min(len(parts), len(previous)) and parts[common] == previous[common]:
                common += 1
            common = min(common, len(parts) - 1)  # a repeated name opens its heading again
            for depth in range(common, len(parts)):
                line = f"{'#' * min(2 + depth, MAX_HEADING_LEVEL)} {parts[depth]}\n\n"
                out.append(line)
                pos += len(line)
            previous = parts
        for p in paragraphs:
            text = p.replace("\n", " ").replace("\r", " ")
            spans.append((pos, pos + len(text)))
            out.append(text + "\n\n")
            pos += len(text) + 2
    return RenderedPaper(paper.id, "".join(out), tuple(spans))
