"""The structure and artifact rules hold on other reports: other numbering, headers, footers, no TOC, PDF."""
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from ingest import Chunker, ingest_paths
from ingest.chunking import ChunkingConfig
from ingest.structure import parse_report

LOREM = ("The committee reviewed the program in detail. It found that funding was adequate in most regions. "
         "However, several districts reported delays in procurement. The report recommends a phased approach.")


def _chunker(settings, tokens=60, overlap=0):
    return Chunker(ChunkingConfig(tokens, overlap, "section"), settings.tiktoken_encoding, settings.resolved_model_path)


def _ingest(tmp_path, name, text, settings, **kw):
    path = tmp_path / name
    path.write_text(text)
    result = ingest_paths([path], _chunker(settings, **kw))
    assert not result.failures, result.failures
    return result


def test_chapters_with_decimal_sections_page_footers_and_no_toc(tmp_path, settings):
    text = (
        "Annual Water Review 2024\n\n"
        "Chapter 1 Introduction\n\n" + LOREM + "\n\n"
        "1.1 Scope of the review\n\n" + LOREM + " The scope covers\n\n"
        "Annual Water Review 2024 | page 2\n\n"
        "twelve provinces and two cities.\n\n"
        "- 3 -\n\n"
        "1.2 Method\n\n" + LOREM + "\n\n"
        "Annual Water Review 2024 | page 3\n\n"
        "Chapter 2 Findings\n\n" + LOREM + "\n\n"
        "2.1 Rural supply\n\n" + LOREM + "\n\n"
        "Annual Water Review 2024 | page 4\n\n"
        "2.2 Urban supply\n\n" + LOREM + "\n"
    )
    result = _ingest(tmp_path, "water.txt", text, settings)
    ids = [s.id for s in result.sections]
    assert ids == ["ch1", "ch1.1", "ch1.2", "ch2", "ch2.1", "ch2.2"]
    assert result.documents[0].title == "Annual Water Review 2024"
    assert {s.id: s.title for s in result.sections}["ch1.1"] == "1.1 Scope of the review"
    joined = " ".join(c.text for c in result.chunks)
    assert "The scope covers twelve provinces and two cities." in joined
    assert "page 2" not in joined and "- 3 -" not in joined and "Annual Water Review" not in joined


def test_lettered_sections_markdown_levels_lie_and_toc_dropped(tmp_path, settings):
    text = (
        "# Coastal Resilience Plan\n\n"
        "## Contents\n\n"
        "Part I Overview 2\nA. Context 2\nB. Risks 3\nPart II Measures 5\nA. Seawalls 5\nB. Wetlands 6\n\n"
        "Opening remarks by the board. " + LOREM + "\n\n"
        "#### Part I Overview\n\n" + LOREM + "\n\n"
        "# A. Context\n\n" + LOREM + "\n\n"
        "## B. Risks\n\n" + LOREM + " Storm surges are\n\n\n\n"
        "# Coastal Resilience Plan\n\n\n"
        "increasing along the northern shore.\n\n"
        "# Part II Measures\n\n" + LOREM + "\n\n"
        "###### A. Seawalls\n\n*Seawall Act* funding applies. " + LOREM + "\n\n"
        "# B. Wetlands\n\n- --Restore **tidal** marshes. " + LOREM + "\n"
    )
    result = _ingest(tmp_path, "coast.md", text, settings)
    ids = [s.id for s in result.sections]
    assert ids == ["opening", "pi", "pi.a", "pi.b", "pii", "pii.a", "pii.b"]
    levels = {s.id: s.level for s in result.sections}
    assert levels["pi.a"] == levels["pii.b"] == 2 and levels["pii"] == 1
    joined = " ".join(c.text for c in result.chunks)
    assert "Storm surges are increasing along the northern shore." in joined
    assert "Overview 2" not in joined and "Contents" not in joined
    assert "Seawall Act funding applies." in joined and "Restore tidal marshes." in joined
    assert not re.search(r"[*#]", joined)


def test_numbered_list_items_are_not_headings(tmp_path, settings):
    text = (
        "# Budget Note\n\n## 1. Summary\n\n" + LOREM + "\n\n"
        "1. We recommend that the ministry publish quarterly figures.\n\n"
        "2. We recommend an independent audit.\n\n## 2. Detail\n\n" + LOREM + "\n"
    )
    result = _ingest(tmp_path, "budget.md", text, settings)
    assert [s.id for s in result.sections] == ["1", "2"]


def test_pdf_ingest_carries_page_numbers(tmp_path, settings):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for n, (heading, body) in enumerate([("Chapter 1 Energy", LOREM), ("Chapter 2 Transport", LOREM * 2)], 1):
        pdf.add_page()
        pdf.multi_cell(0, 6, "Regional Outlook")
        pdf.ln(4)
        pdf.multi_cell(0, 6, heading)
        pdf.ln(4)
        pdf.multi_cell(0, 6, body)
    path = tmp_path / "outlook.pdf"
    pdf.output(str(path))
    result = ingest_paths([path], _chunker(settings))
    assert not result.failures
    pages = {c.section_id: c.page for c in result.chunks}
    assert pages["ch1"] == 1 and pages["ch2"] == 2
    assert all("Regional Outlook" not in c.text for c in result.chunks)


def test_bad_files_are_reported_and_skipped(tmp_path, settings):
    (tmp_path / "good.md").write_text("# Good\n\n## Part 1 One\n\n" + LOREM + "\n")
    (tmp_path / "empty.md").write_text("  \n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02 binary")
    (tmp_path / "latin1.txt").write_bytes(("Caf\xe9s\n\n" + LOREM + " The caf\xe9 opens.\n").encode("latin-1"))
    (tmp_path / "noise.txt").write_bytes(bytes(range(1, 32)) * 20 + b"\xe9")  # no NUL, not UTF-8, not text
    (tmp_path / "fake.pdf").write_bytes(b"not a pdf at all")
    from fpdf import FPDF

    blank = FPDF()
    blank.add_page()
    blank.output(str(tmp_path / "blank.pdf"))
    result = ingest_paths([tmp_path, tmp_path / "missing.md"], _chunker(settings))
    reasons = {Path(f.path).name: f.reason for f in result.failures}
    assert [d.id for d in result.documents] == ["good", "latin1"]  # Windows-1252 / Latin-1 text is read
    assert "café opens" in next(c.text for c in result.chunks if c.document_id == "latin1")
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["noise.txt"] and "not text" in reasons["noise.txt"]
    assert "PDF" in reasons["fake.pdf"]
    assert "no extractable text" in reasons["blank.pdf"]
    assert "no such file" in reasons["missing.md"]


# ------------------------------------------------------------------ properties

_word = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12)
_sentence = st.lists(_word, min_size=1, max_size=30).map(lambda ws: " ".join(ws).capitalize() + ".")
_paragraph = st.lists(_sentence, min_size=1, max_size=6).map(" ".join)
_noise = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@st.composite
def reports(draw):
    parts = ["# " + draw(_word) + " Report\n"]
    for p in range(1, draw(st.integers(1, 3)) + 1):
        parts.append(f"{'#' * draw(st.integers(1, 4))} Part {p} {draw(_word)}\n")
        parts.append(draw(_paragraph) + "\n")
        for s in range(1, draw(st.integers(0, 3)) + 1):
            parts.append(f"{'#' * draw(st.integers(1, 4))} ({'i' * s}) {draw(_word)}\n")
            for _ in range(draw(st.integers(1, 3))):
                parts.append(draw(st.one_of(_paragraph, _noise.map(lambda t: t + " " )) ) + "\n")
    return "\n".join(parts)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=reports(), overlap=st.sampled_from([0, 12]))
def test_chunks_cover_body_respect_budget_and_map_back(chunker, settings, text, overlap):
    from ingest.chunking import chunk_document
    from ingest.readers import Document

    parsed = parse_report(text)
    doc = Document("gen", "gen.md", parsed.title, text, "0", "markdown")
    config = ChunkingConfig(48, overlap, "section")
    chunks = chunk_document(doc, parsed, parsed.sections, config, chunker.count_tokens, chunker.window,
                            chunker.window.max_tokens)
    spans = {s.id: s.body_spans for s in parsed.sections}
    covered = set()
    for c in chunks:
        assert c.tokens <= 48 and c.model_tokens <= chunker.window.max_tokens
        kept = "".join(ch for i, ch in enumerate(text[c.char_start:c.char_end], c.char_start) if not parsed.mask[i])
        assert re.sub(r"\s+", " ", kept).strip() == c.text
        body = spans[c.section_id]
        assert body[0][0] <= c.char_start and c.char_end <= body[-1][1]  # never crosses its section
        covered.update(range(c.char_start, c.char_end))
    # Every kept, non-space body character is inside some chunk.
    for sid, body in spans.items():
        for a, b in body:
            for i in range(a, b):
                if not parsed.mask[i] and not text[i].isspace():
                    assert i in covered, (sid, text[max(0, i - 20):i + 20])


@hsettings(max_examples=60, deadline=None)
@given(text=st.text(max_size=3000))
def test_parser_survives_arbitrary_unicode(text):
    parsed = parse_report(text)
    assert len(parsed.mask) == len(text)
    for s in parsed.sections:
        assert 0 <= s.char_start <= s.char_end <= len(text)


_hostile = st.sampled_from(["\u202e", "\u200f", "مرحبا بالعالم", "שלום", "🙂🚀", "\x00", "\x1b[31m", "\r", "\t", "\ufeff",
                            "<|endoftext|>", "#", "**", "- --", "(IV)", "PART 9", "1.", "x" * 5000])


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.one_of(_hostile, _paragraph, st.text(max_size=200)), min_size=1, max_size=30),
       joiners=st.lists(st.sampled_from(["\n", "\n\n", "\n\n\n\n", " ", "\n# ", "\n#### "]), min_size=30, max_size=30))
def test_chunker_survives_hostile_markdown(chunker, pieces, joiners):
    """Control characters, RTL, emoji, special tokens and 5,000-character lines: no crash, budgets hold."""
    from ingest.chunking import chunk_document
    from ingest.readers import Document

    text = "".join(p + j for p, j in zip(pieces, joiners))
    parsed = parse_report(text)
    doc = Document("hostile", "hostile.md", parsed.title, text, "0", "markdown")
    chunks = chunk_document(doc, parsed, parsed.sections, ChunkingConfig(64, 8, "section"), chunker.count_tokens,
                            chunker.window, chunker.window.max_tokens)
    for c in chunks:
        assert c.tokens <= 64 and c.model_tokens <= chunker.window.max_tokens
        assert 0 <= c.char_start < c.char_end <= len(text)
