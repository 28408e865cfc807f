"""The structure benchmark on the bundled report and the real documents in ../shared/corpora/real:
the issue's thresholds, and every chunk of every document maps back to its span byte for byte."""
import re
from pathlib import Path

import pytest

from eval.structure import format_table, run_structure_benchmark
from ingest import Chunker, ingest_paths, parse_document
from ingest.readers import read_report
from settings import PROJECT_ROOT, SHARED_DIR

REAL = SHARED_DIR / "corpora" / "real"
BUNDLED_OUTLINES = PROJECT_ROOT / "eval" / "outlines"
FOUND = PROJECT_ROOT / "eval" / "found"
THRESHOLD = 0.95
# Measured 2026-12-04 (a guard: lower only with a commit that says what dropped and why). Before the rules
# these documents led to: GPL-3 0.000, IDLE NEWS 0.000, libtasn1 0.714 (numbers 0.286), MPL-2.0 0.357.
# GPL's one not-section is "END OF TERMS AND CONDITIONS", a centred line that closes the terms. Every case is
# held at anchor accuracy 1.0: before wrapped bookmark titles were read across lines, R FAQ was at 0.971.
FOUND_RECALL = {"libtasn1-manual-pdf": 1.0, "shared-mime-info-spec-pdf": 1.0, "gpl-3-text": 1.0,
                "mpl-2.0-text": 0.929, "idle-news-text": 0.917,
                "libtasn1-pymupdf4llm-md": 1.0, "shared-mime-info-spec-pymupdf4llm-md": 0.958,
                "draft-morgan-pam-text": 1.0, "rfc5215-text": 1.0, "rfc86-pam-text": 1.0,
                "r-lang-manual-pdf": 1.0, "r-faq-manual-pdf": 1.0, "r-lang-pymupdf4llm-md": 0.992,
                "claws-mail-manual-pymupdf4llm-md": 0.693}
FOUND_NOT_SECTIONS = {"gpl-3-text": 1}


@pytest.fixture(scope="module")
def real_scores():
    assert REAL.is_dir(), f"the real-document corpus is missing: {REAL} (../shared beside the repo, or set REPORTQA_SHARED_DIR)"
    scores = run_structure_benchmark(REAL)
    print(format_table(scores))
    assert len(scores) >= 4, [s.document for s in scores]
    return {s.document: s for s in scores}


def _check(score, parent=True):
    assert not score.error, score.error
    assert score.recall >= THRESHOLD, (score.document, score.examples)
    if parent:
        assert score.parent_accuracy >= THRESHOLD, (score.document, score.examples)
    assert score.number_accuracy is None or score.number_accuracy >= THRESHOLD, (score.document, score.examples)
    assert score.anchor_accuracy >= THRESHOLD, (score.document, score.examples)
    assert score.not_sections == 0 and score.repeated_titles == 0 and score.toc_sections == 0, score.examples


def test_bundled_report_is_exact():
    (score,) = run_structure_benchmark(BUNDLED_OUTLINES)
    assert score.expected == score.found == score.recovered == 22
    assert score.recall == score.parent_accuracy == score.number_accuracy == score.anchor_accuracy == 1.0


def test_anchor_accuracy_sees_a_heading_put_on_the_wrong_line_or_page():
    """A title that matched is not enough: the section must start where its title is printed, on the
    outline's page when both know pages."""
    from eval.structure import ExpectedSection, Outline, score_document
    from ingest.records import Section

    source = "1 Energy\nSupply work is planned.\n1.1 Supply\nDemand rose.\n"
    outline = Outline("test", (ExpectedSection("1", "Energy", 1, None, 1), ExpectedSection("1.1", "Supply", 2, "Energy", 2)))

    def sections(supply_start):
        return [Section("1", "d", "1", "1 Energy", ("1 Energy",), 1, None, 0, supply_start),
                Section("1.1", "d", "1.1", "1.1 Supply", ("1 Energy", "1.1 Supply"), 2, "1", supply_start, len(source))]

    right = source.index("1.1 Supply")
    page_at = lambda offset: 1 if offset < right else 2  # noqa: E731
    assert score_document("d", outline, sections(right), {}, source=source, page_at=page_at).anchor_accuracy == 1.0
    wrong_line = score_document("d", outline, sections(source.index("Supply work")), {}, source=source)
    assert wrong_line.anchor_accuracy == 0.5 and "Supply" in wrong_line.examples["wrong_anchor"][0]
    assert score_document("d", outline, sections(source.index("Supply work")), {}, source=source,
                          page_at=page_at).anchor_accuracy == 0.5
    wrong_page = score_document("d", outline, sections(right), {}, source=source, page_at=lambda offset: 1)
    assert wrong_page.anchor_accuracy == 0.5 and "page 1" in wrong_page.examples["wrong_anchor"][0]


@pytest.mark.parametrize("name", ["rfc8446", "switch-transformers-marker", "irs-irm-2.3.59-pdf"])
def test_real_documents_meet_the_thresholds(real_scores, name):
    _check(real_scores[name])


def test_documents_found_on_the_build_machine_hold_their_recall():
    scores = {s.document: s for s in run_structure_benchmark(FOUND)}
    print(format_table(list(scores.values())))
    assert set(scores) == set(FOUND_RECALL)
    for name, recall in FOUND_RECALL.items():
        score = scores[name]
        assert not score.error and score.recall >= recall - 1e-3, (name, score.recall, score.examples)
        assert score.not_sections <= FOUND_NOT_SECTIONS.get(name, 0), (name, score.examples)
        assert score.repeated_titles == 0, (name, score.examples)
        assert score.number_accuracy in (None, 1.0), (name, score.examples)
        assert score.anchor_accuracy == 1.0, (name, score.examples)
    exact_parents = ["libtasn1-manual-pdf", "shared-mime-info-spec-pdf", "draft-morgan-pam-text", "rfc86-pam-text",
                     "r-lang-manual-pdf", "r-faq-manual-pdf"]
    assert {name: scores[name].parent_accuracy for name in exact_parents} == dict.fromkeys(exact_parents, 1.0)


def test_pdfs_read_without_their_bookmarks_keep_the_font_heading_path_honest():
    """The same real PDFs read as if they had no outline (font headings), scored against their bookmarks.
    Before running headers that step with the page and bold labels on every table were told apart
    (2026-12-04): libtasn1 parent 0.450, the IRS manual 755 sections with 40 repeated titles."""
    found = {s.document: s for s in run_structure_benchmark(FOUND, without_bookmarks=True)}
    libtasn1, mime = found["libtasn1-manual-pdf (no bookmarks)"], found["shared-mime-info-spec-pdf (no bookmarks)"]
    assert libtasn1.recall >= 0.95 and libtasn1.parent_accuracy >= 0.80, libtasn1.examples
    assert mime.recall >= 0.95 and mime.parent_accuracy >= 0.95, mime.examples
    scores = run_structure_benchmark(REAL / "irs-irm-2.3.59-pdf", without_bookmarks=True)
    (irs,) = [s for s in scores if "no bookmarks" in s.document]
    # Its recall comes from the printed ToC's lines (anchor accuracy 0.000, see the README): this guards the
    # furniture rules (section count, repeated titles), not a recovered tree.
    assert irs.recall >= 0.84 and irs.repeated_titles <= 2 and irs.recovered <= 300, irs.examples


def test_flat_markdown_without_numbers_meets_recall_and_artifact_thresholds(real_scores):
    _check(real_scores["imf-weo-2023-unstructured"], parent=False)


def test_flat_markdown_parents(real_scores):
    """IMF: every heading is a flat '#', unnumbered, all in Title Case. 'The Forecast' has no text before the
    next heading, so it is a parent; its run of children is decided by the two-part minimum of a division
    (ingest.hierarchy._joins_run), since no style class tells 'Inflation Peaking' (a child) from 'Policy
    Priorities' (the next top-level section). One document with one such run: a rule chosen with it in
    view; tests/test_structure_levels.py holds the rule's other cases on inputs of our own."""
    assert real_scores["imf-weo-2023-unstructured"].parent_accuracy >= THRESHOLD


def _reconstruct(text, mask, start, end):
    kept = "".join(ch for i, ch in enumerate(text[start:end], start) if not mask[i])
    return re.sub(r"\s+", " ", kept).strip()


def test_every_chunk_of_every_document_in_the_suite_maps_back(settings):
    """The four real documents and the bundled report: a text file's Document is the file on disk, and every
    chunk's text is its [char_start, char_end) span with the artifact mask applied, inside its own section."""
    assert REAL.is_dir(), f"the real-document corpus is missing: {REAL}"
    chunker = Chunker.from_settings(settings)
    files = sorted(p for p in REAL.rglob("*") if p.suffix in (".md", ".txt", ".pdf") and p.stem != "SOURCE")
    files += sorted((PROJECT_ROOT / "data").glob("*.md"))
    result = ingest_paths(files, chunker)
    assert not result.failures, result.failures
    assert len(result.documents) == 5
    docs = {d.id: d for d in result.documents}
    masks = {d.id: parse_document(d).mask for d in result.documents}
    sections = {(s.document_id, s.id): s for s in result.sections}
    for doc in result.documents:
        if doc.format != "pdf":
            assert doc.text == Path(doc.path).read_bytes().decode("utf-8-sig"), doc.path
    counts: dict[str, int] = {}
    for chunk in result.chunks:
        doc = docs[chunk.document_id]
        assert chunk.tokens <= settings.chunk_tokens
        assert _reconstruct(doc.text, masks[doc.id], chunk.char_start, chunk.char_end) == chunk.text, chunk.id
        section = sections[(doc.id, chunk.section_id)]
        assert section.char_start <= chunk.char_start < chunk.char_end <= section.char_end, chunk.id
        counts[doc.id] = counts.get(doc.id, 0) + 1
    assert set(counts) == set(docs), counts  # every document has chunks


def test_pdf_chunks_cite_their_bookmark_page(settings):
    """IRS manual: each bookmarked section starts on the page its bookmark targets, and its chunks cite
    pages from there up to where the next section starts (a heading alone on a page: text on the next)."""
    import json

    folder = REAL / "irs-irm-2.3.59-pdf"
    outline = json.loads((folder / "outline.json").read_text())
    result = ingest_paths([folder / "irm-2.3.59.pdf"], Chunker.from_settings(settings))
    doc = result.documents[0]
    chunks: dict[str, list] = {}
    for c in result.chunks:
        chunks.setdefault(c.section_id, []).append(c)
    by_title = {" ".join(s.title.split()): s for s in result.sections}
    expected = outline["sections"]
    # The pages checked are the PDF's own bookmark targets (pypdf, 0-based), not only the outline's copy.
    marks = [(" ".join(t.split()), page + 1) for t, page, _ in doc.bookmarks]
    assert marks == [(" ".join(f"{e['number']} {e['title']}".split()), e["page"]) for e in expected]
    checked = 0
    for n, e in enumerate(expected):
        section = by_title.get(" ".join(f"{e['number']} {e['title']}".split()))
        assert section is not None, e["title"]
        assert doc.page_at(section.char_start) == e["page"], (e["title"], doc.page_at(section.char_start))
        last_page = expected[n + 1]["page"] if n + 1 < len(expected) else len(doc.page_starts)
        for c in chunks.get(section.id, []):
            assert e["page"] <= c.page <= last_page, (e["title"], c.page)
            assert c.page_label == doc.page_labels[c.page - 1]
            checked += 1
    assert checked >= 300


def test_cli_eval_structure_prints_the_table_and_json(capsys):
    import json

    from service.cli import main

    assert main(["eval", "--structure", str(BUNDLED_OUTLINES)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["document", "expected", "recovered", "recall"]
    assert "bundled" in table
    assert main(["eval", "--structure", str(BUNDLED_OUTLINES), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["document"] == "bundled" and row["recall"] == 1.0
    assert main(["eval", "--structure", str(BUNDLED_OUTLINES / "missing")]) == 2


def test_cli_sections_json_needs_no_model(built_index, settings, capsys):
    import json

    from service.cli import main

    assert main(["sections", "--json", "--index", str(settings.index_dir)]) == 0
    data = json.loads(capsys.readouterr().out)
    ids = [s["id"] for s in data["sections"]]
    assert ids[:3] == ["opening", "p1", "p2"] and len(ids) == 23
    with pytest.raises(SystemExit):
        main(["sections", "--model", "x"])  # listing sections takes no model flag


def test_hostile_documents_keep_every_body_sentence():
    """The hostile-document benchmark's body check (its timings are printed by the benchmark, not asserted)."""
    from eval.structure import format_hostile, hostile_benchmark

    results = hostile_benchmark(check_doubling=False)
    print(format_hostile(results))
    assert len(results) == 6
    for r in results:
        assert r.kept == r.sentences, r
