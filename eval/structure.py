"""The structure benchmark: how well ingest recovers a document's section tree against a ground truth.

A corpus folder holds documents, each beside an ``outline.json`` (format in
``../shared/corpora/README.md``): either the folder itself or each of its
sub-folders holds one outline and one document (``.md``, ``.txt``, ``.pdf``);
an outline may name its document with a ``"document"`` path relative to it.

Scores, per document (pure functions, typed results; nothing here imports the service):
- recall: expected sections found *in order*, by title (longest common subsequence);
- parent accuracy: of those found, how many sit under the expected parent;
- number accuracy: of those found that are numbered, how many carry the expected number;
- anchor accuracy: of those found, how many start where the document prints their title (and on the
  outline's page, when it names one), so a heading put on the wrong line shows even when its title matched;
- not_sections: recovered sections whose title is one the outline says is not a section;
- repeated titles: titles that 3 or more recovered sections share;
- ToC sections: recovered sections whose own text holds table-of-contents lines.

``hostile_benchmark`` times adversarial inputs and checks no body sentence is lost.
"""
from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ingest import parse_document
from ingest.readers import SUPPORTED_SUFFIXES, UnreadableReport, read_report
from ingest.records import Section
from ingest.lines import clean_with_map

REPEATED_TITLE_MIN = 3
CORPUS_METADATA = {"SOURCE", "README", "LICENSE"}  # files beside a document that describe it
# A ToC entry inside body text: a dot leader run ending in a page number ("Introduction . . . . 5").
_DOT_LEADER = re.compile(r"[A-Za-z)][ \t]*(?:\.\s?){4,}\s*\d{1,4}\b")  # a title, a leader, a page
# A section whose text names this many *other* expected sections as "number title" reads as a ToC.
TOC_ENTRY_MIN = 3
# How far past a heading's start its title may still be read: a number before it, Markdown markers, a
# title wrapped over lines with a revision date between (PDF margin headings).
ANCHOR_SLACK_CHARS = 60
_LEADING_NUMBER = re.compile(
    r"^(?:(?:part|chapter|section|appendix|annex|exhibit)\s+)?"
    r"(?:\(?[0-9ivxlcdm]+\)|[0-9a-z]{1,4}(?:[.\-][0-9a-z]{1,4})*\.?)\s+", re.I)


@dataclass(frozen=True)
class ExpectedSection:
    number: str
    title: str
    level: int
    parent: str | None
    page: int | None = None


@dataclass(frozen=True)
class Outline:
    source: str
    sections: tuple[ExpectedSection, ...]
    not_sections: tuple[str, ...] = ()


@dataclass
class DocumentScore:
    document: str
    expected: int
    recovered: int
    found: int
    recall: float
    parent_accuracy: float
    number_accuracy: float | None  # None when the outline has no numbered sections
    anchor_accuracy: float
    not_sections: int
    repeated_titles: int
    toc_sections: int
    seconds: float
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few misses of each kind, for reading
    error: str = ""


# ------------------------------------------------------------------ loading


def load_outline(path: Path) -> Outline:
    data = json.loads(path.read_text(encoding="utf-8"))
    sections = tuple(
        ExpectedSection(str(s.get("number") or ""), str(s["title"]), int(s.get("level") or 1),
                        s.get("parent"), s.get("page"))
        for s in data["sections"]
    )
    return Outline(str(data.get("source", "")), sections, tuple(data.get("not_sections") or ()))


def find_cases(folder: Path) -> list[tuple[Path, Path]]:
    """(outline, document) pairs under ``folder``; a folder with an outline but no document is an error."""
    outlines = [folder / "outline.json"] if (folder / "outline.json").is_file() else sorted(folder.glob("*/outline.json"))
    cases = []
    for outline in outlines:
        named = json.loads(outline.read_text(encoding="utf-8")).get("document")
        if named:
            docs = [(outline.parent / named).resolve()]
        else:
            docs = sorted(p for p in outline.parent.iterdir()
                          if p.suffix.lower() in SUPPORTED_SUFFIXES and p.stem.upper() not in CORPUS_METADATA)
        if len(docs) != 1 or not docs[0].is_file():
            raise FileNotFoundError(f"{outline.parent}: expected exactly one document beside outline.json")
        cases.append((outline, docs[0]))
    return cases


# ------------------------------------------------------------------ matching


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").lower()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def recovered_title_forms(section: Section) -> set[str]:
    """The title as printed, and without its printed number (outlines keep numbers apart)."""
    forms = {normalise(section.title)}
    if section.number and normalise(section.title).startswith(normalise(section.number)):
        forms.add(normalise(section.title)[len(normalise(section.number)):].strip())
    forms.add(normalise(_LEADING_NUMBER.sub("", section.title.strip(), count=1)))
    return {f for f in forms if f}


def expected_title_forms(expected: ExpectedSection) -> set[str]:
    forms = {normalise(expected.title)}
    if expected.number:
        forms.add(normalise(f"{expected.number} {expected.title}"))
    return forms


def _matches(expected: ExpectedSection, section: Section) -> bool:
    return bool(expected_title_forms(expected) & recovered_title_forms(section))


def match_in_order(expected: list[ExpectedSection], recovered: list[Section]) -> dict[int, int]:
    """Longest in-order matching of expected sections to recovered ones: {expected index: recovered index}."""
    n, m = len(expected), len(recovered)
    forms_r = [recovered_title_forms(s) for s in recovered]
    forms_e = [expected_title_forms(e) for e in expected]
    prev = [0] * (m + 1)
    rows = [prev]
    for i in range(n):
        row = [0] * (m + 1)
        for j in range(m):
            row[j + 1] = prev[j] + 1 if forms_e[i] & forms_r[j] else max(prev[j + 1], row[j])
        rows.append(row)
        prev = row
    pairs: dict[int, int] = {}
    i, j = n, m
    while i and j:
        if forms_e[i - 1] & forms_r[j - 1] and rows[i][j] == rows[i - 1][j - 1] + 1:
            pairs[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif rows[i - 1][j] >= rows[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return pairs


def normalise_number(number: str) -> str:
    number = re.sub(r"^(part|chapter|section|appendix|annex|exhibit)\s+", "", number.strip(), flags=re.I)
    return number.strip("().").lower()


# ------------------------------------------------------------------ scoring


def section_texts(doc, parsed) -> dict[str, str]:
    """Each recovered section's own text (artifacts removed), as chunks would see it."""
    out = {}
    for s in parsed.sections:
        spans = parsed.paragraphs.get(s.id, s.body_spans)
        out[s.id] = " ".join(clean_with_map(doc.text, parsed.mask, a, b)[0] for a, b in spans)
    return out


def toc_sections(sections: list[Section], texts: dict[str, str], outline: Outline) -> list[str]:
    """Ids of sections whose text holds table-of-contents lines (dot leaders, or runs of other entries)."""
    entries = [normalise(f"{e.number} {e.title}") for e in outline.sections if e.number]
    entries += [normalise(e.title) for e in outline.sections if not e.number and len(e.title.split()) >= 3]
    hits = []
    for s in sections:
        text = texts.get(s.id, "")
        norm = f" {normalise(text)} "
        own = recovered_title_forms(s)
        named = sum(1 for e in set(entries) if e not in own and f" {e} " in norm)
        if len(_DOT_LEADER.findall(text)) >= 2 or named >= TOC_ENTRY_MIN:
            hits.append(s.id)
    return hits


def _anchored(expected: ExpectedSection, section: Section, source: str, page_at) -> bool:
    """The recovered heading starts where its title is printed (a wrapped title read across its lines),
    on the outline's page when the outline and the document both know pages."""
    def compact(text: str) -> str:  # letters and digits only: "Non-regular" is "Nonregular", "R_alloc" "R alloc"
        return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())

    window = compact(source[section.char_start:section.char_start + len(expected.title) + ANCHOR_SLACK_CHARS])
    titles = {compact(expected.title), compact(_LEADING_NUMBER.sub("", expected.title.strip(), count=1))}
    found = [(window.find(t), t) for t in titles if t and t in window]
    number = compact(expected.number)
    # a numbered section's title also ends sentences and opens body lines: its number must be printed with it
    if not found or (number and not any(number in window[:at + len(t)] for at, t in found)):
        return False
    return expected.page is None or page_at is None or page_at(section.char_start) == expected.page


def score_document(name: str, outline: Outline, sections: list[Section], texts: dict[str, str],
                   seconds: float = 0.0, source: str = "",
                   page_at: Callable[[int], int | None] | None = None) -> DocumentScore:
    """``source``: the document's text, for anchor accuracy; ``page_at``: the 1-based page holding an offset
    of it (PDFs)."""
    titled = [s for s in sections if s.title]
    by_id = {s.id: s for s in sections}
    expected = list(outline.sections)
    pairs = match_in_order(expected, titled)
    parent_ok = number_ok = numbered = anchor_ok = 0
    misses: dict[str, list[str]] = {"not_found": [], "wrong_parent": [], "wrong_number": [], "wrong_anchor": []}
    for i, e in enumerate(expected):
        if i not in pairs:
            misses["not_found"].append(f"{e.number} {e.title}".strip())
            continue
        got = titled[pairs[i]]
        parent = by_id.get(got.parent_id) if got.parent_id else None
        if parent is not None and not parent.title:
            parent = None
        if (e.parent is None and parent is None) or (
                e.parent is not None and parent is not None and normalise(e.parent) in recovered_title_forms(parent)):
            parent_ok += 1
        else:
            misses["wrong_parent"].append(f"{e.title} (under {parent.title if parent else None!r})")
        if e.number:
            numbered += 1
            if normalise_number(got.number) == normalise_number(e.number):
                number_ok += 1
            else:
                misses["wrong_number"].append(f"{e.title}: {got.number!r}")
        if _anchored(e, got, source, page_at):
            anchor_ok += 1
        else:
            where = f" (page {page_at(got.char_start)})" if page_at else ""
            misses["wrong_anchor"].append(f"{e.title}{where}: {source[got.char_start:got.char_start + 40]!r}")
    bad = {normalise(t) for t in outline.not_sections}
    not_sections = [s.title for s in titled if recovered_title_forms(s) & bad]
    counts: dict[str, int] = {}
    for s in titled:
        counts[normalise(s.title)] = counts.get(normalise(s.title), 0) + 1
    repeated = [t for t, n in counts.items() if n >= REPEATED_TITLE_MIN]
    tocs = toc_sections(titled, texts, outline)
    found = len(pairs)
    examples = {k: v[:5] for k, v in misses.items() if v}
    for key, values in (("not_sections", not_sections), ("repeated", repeated), ("toc", tocs)):
        if values:
            examples[key] = values[:5]
    return DocumentScore(
        document=name, expected=len(expected), recovered=len(titled), found=found,
        recall=found / len(expected) if expected else 1.0,
        parent_accuracy=parent_ok / found if found else 0.0,
        number_accuracy=number_ok / numbered if numbered else None,
        anchor_accuracy=anchor_ok / found if found else 0.0,
        not_sections=len(not_sections), repeated_titles=len(repeated), toc_sections=len(tocs),
        seconds=seconds, examples=examples,
    )


def score_case(outline_path: Path, document_path: Path, pdf_outline: bool = True) -> DocumentScore:
    """One document's score; ``pdf_outline=False`` reads a PDF as if it had no bookmarks (its outline.json
    still holds them), so the font-heading path is scored where the truth is known."""
    name = outline_path.parent.name + ("" if pdf_outline else " (no bookmarks)")
    outline = load_outline(outline_path)
    started = time.perf_counter()
    try:
        doc = read_report(document_path, pdf_outline=pdf_outline)
        parsed = parse_document(doc)
    except UnreadableReport as exc:
        return DocumentScore(name, len(outline.sections), 0, 0, 0.0, 0.0, None, 0.0, 0, 0, 0, 0.0, error=str(exc))
    seconds = time.perf_counter() - started
    return score_document(name, outline, parsed.sections, section_texts(doc, parsed), seconds, doc.text,
                          doc.page_at if doc.page_starts else None)


def run_structure_benchmark(folder: Path, without_bookmarks: bool = False) -> list[DocumentScore]:
    """Every case under ``folder``; ``without_bookmarks``: each PDF once more, read without its outline."""
    cases = find_cases(Path(folder))
    scores = [score_case(outline, document) for outline, document in cases]
    if without_bookmarks:
        scores += [score_case(outline, document, pdf_outline=False) for outline, document in cases
                   if document.suffix.lower() == ".pdf"]
    return scores


# ------------------------------------------------------------------ output

COLUMNS = ("expected", "recovered", "recall", "parent", "number", "anchor", "not_sect", "repeated", "toc_text",
           "seconds")


def format_table(scores: list[DocumentScore]) -> str:
    width = max([len("document")] + [len(s.document) for s in scores])
    lines = [f"{'document':<{width}}" + "".join(f"{c:>10}" for c in COLUMNS)]
    for s in scores:
        if s.error:
            lines.append(f"{s.document:<{width}}  error: {s.error}")
            continue
        number = "n/a" if s.number_accuracy is None else f"{s.number_accuracy:.3f}"
        cells = [s.expected, s.recovered, f"{s.recall:.3f}", f"{s.parent_accuracy:.3f}", number,
                 f"{s.anchor_accuracy:.3f}",
                 s.not_sections, s.repeated_titles, s.toc_sections, f"{s.seconds:.2f}"]
        lines.append(f"{s.document:<{width}}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)


def format_examples(scores: list[DocumentScore]) -> str:
    lines = []
    for s in scores:
        for kind, values in s.examples.items():
            lines.append(f"{s.document} {kind}: " + "; ".join(values))
    return "\n".join(lines)


def scores_json(scores: list[DocumentScore]) -> str:
    return json.dumps([asdict(s) for s in scores], indent=2, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.structure DIR [--json]``; the CLI's ``reportqa eval --structure DIR`` calls the same."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m eval.structure")
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--hostile", action="store_true", help="time hostile documents, check no sentence is lost")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--examples", action="store_true", help="list a few misses of each kind")
    args = parser.parse_args(argv)
    if args.hostile:
        print(format_hostile(hostile_benchmark()))
        return 0
    scores = run_structure_benchmark(args.folder)
    print(scores_json(scores) if args.json else format_table(scores))
    if args.examples and not args.json:
        print(format_examples(scores))
    return 0




# ------------------------------------------------------------------ hostile documents


@dataclass
class HostileResult:
    case: str
    chars: int
    seconds: float
    sentences: int  # body sentences written into the document
    kept: int  # of those, found in the recovered sections' text
    double_ratio: float = 0.0  # seconds at twice the size / seconds at this size (linear: about 2)


def _hostile_cases(scale: int = 1) -> list[tuple[str, str, list[str]]]:
    """(name, text, body sentences that must survive), ``scale`` times the issue's sizes."""
    cases = []
    dots = "Dots follow here. " + "." * (200_000 * scale) + "\n\nAfter the dots a sentence stays.\n"
    cases.append(("200 kB line of dots", dots, ["Dots follow here.", "After the dots a sentence stays."]))
    words = " ".join(f"word{i % 997}" for i in range(1_100_000 * scale))
    one_line = "A single line opens. " + words[: 10_000_000 * scale] + " It ends here.\n"
    cases.append(("10 MB on one line", one_line, ["A single line opens.", "It ends here."]))
    nested, sentences, number = [], [], []
    for n in range(3000 * scale):
        number = number + [1] if n % 3 == 0 and len(number) < 60 else (number[:-1] + [number[-1] + 1] if number else [1])
        nested.append(f"{'.'.join(map(str, number))}. Heading {n}\n\nText of section {n} is here.\n")
        sentences.append(f"Text of section {n} is here.")
    cases.append(("3,000 nested numbered headings", "\n".join(nested), sentences))
    markdown = [f"{'#' * (1 + n % 6)} {line}" for n, line in enumerate(nested)]
    cases.append(("the same as Markdown headings", "\n".join(markdown), sentences))
    pages, kept = [], []
    for n in range(1, 5000 * scale + 1):
        pages.append(f"ACME Annual Review                     2030\n\nPage body {n} says something.\n\n"
                     f"ACME Corporation                    [Page {n}]\n")
        kept.append(f"Page body {n} says something.")
    cases.append(("5,000 pages of repeated headers", "\f\n".join(pages), kept))
    # Converters write a paragraph as one line: 3,000 of 700 characters, with dot runs that are no leaders
    long_lines, spoken = [], []
    for n in range(3000 * scale):
        spoken.append(f"Paragraph {n} is kept.")
        long_lines.append(f"{spoken[-1]} " + "Funding. . . . was adequate in most regions " * 15 + "\n")
    cases.append(("3,000 lines of 700 chars, dots", "\n".join(long_lines), spoken))
    return cases


def _time_parse(text: str, markdown: bool = False) -> tuple[float, str]:
    from ingest.records import Document

    doc = Document("hostile", "hostile", "", text, "0", "markdown" if markdown else "text")
    started = time.perf_counter()
    parsed = parse_document(doc)
    seconds = time.perf_counter() - started
    return seconds, " ".join(section_texts(doc, parsed).values())


def hostile_benchmark(check_doubling: bool = True) -> list[HostileResult]:
    """Each hostile document parsed once at the issue's size (and once at twice it, for the time ratio)."""
    results = []
    doubled = _hostile_cases(2) if check_doubling else []
    for n, (name, text, sentences) in enumerate(_hostile_cases(1)):
        markdown = "Markdown" in name
        seconds, body = _time_parse(text, markdown)
        result = HostileResult(name, len(text), seconds, len(sentences), sum(s in body for s in sentences))
        if doubled:
            result.double_ratio = _time_parse(doubled[n][1], markdown)[0] / max(seconds, 1e-9)
        results.append(result)
    return results


def format_hostile(results: list[HostileResult]) -> str:
    lines = [f"{'case':<34}{'chars':>12}{'seconds':>10}{'µs/char':>10}{'2x size':>9}{'sentences':>11}{'kept':>8}"]
    for r in results:
        lines.append(f"{r.case:<34}{r.chars:>12,}{r.seconds:>10.2f}{1e6 * r.seconds / r.chars:>10.3f}"
                     f"{r.double_ratio:>8.1f}x{r.sentences:>11}{r.kept:>8}")
    return "\n".join(lines)



if __name__ == "__main__":
    raise SystemExit(main())
