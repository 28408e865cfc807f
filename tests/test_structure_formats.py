"""Each format's furniture and headings, on small inputs written here: Markdown (a real CommonMark parser),
plain text with page breaks, PDFs with and without bookmarks and page labels."""
import textwrap
from pathlib import Path

from ingest import Chunker, ingest_paths, parse_document
from ingest.chunking import ChunkingConfig
from ingest.readers import read_report
from ingest.lines import clean_with_map
from ingest.structure import parse_report

BODY = ("The committee reviewed the program in detail. It found that funding was adequate in most regions. "
        "However, several districts reported delays in procurement.")


def _chunker(settings):
    return Chunker(ChunkingConfig(80, 0, "section"), settings.tiktoken_encoding, settings.resolved_model_path)


def _ids(parsed):
    return [s.id for s in parsed.sections if s.title]


def test_markdown_code_html_and_tables_are_never_headings_and_numbers_decide_levels():
    text = (
        "# A Paper\n\n"
        "### <span id=\"page-2-0\"></span>1. Introduction\n\n" + BODY + "\n\n"
        "## <span id=\"page-3-0\"></span>2. Method\n\n" + BODY + "\n\n"
        "#### 2.1 Data \\_ Sources\n\n" + BODY + "\n\n"
        "### 2.2 **Routing** *rules*\n\n" + BODY + "\n\n"
        "```python\n# router logits shape: [cores, tokens]\nx = 1\n```\n\n"
        "    # indented code is code\n\n"
        "<div>\n# not a heading either\n</div>\n\n"
        "| # | Name |\n|---|---|\n| 1 | Alpha |\n\n"
        "> # quoted\n\n"
        "- # listed\n\n"
        "## 2.3.1 Deep\n\n" + BODY + "\n"
    )
    parsed = parse_report(text)
    by_id = {s.id: s for s in parsed.sections}
    assert _ids(parsed) == ["1", "2", "2.1", "2.2", "2.3.1"]
    assert by_id["2.1"].title == "2.1 Data _ Sources" and by_id["2.2"].title == "2.2 Routing rules"
    assert by_id["2.2"].parent_id == "2" and by_id["2.2"].level == 2
    assert by_id["2.3.1"].parent_id == "2"  # no 2.3: the nearest ancestor that exists
    assert by_id["1"].title == "1. Introduction" and by_id["1"].number == "1"


def test_markdown_table_rows_are_whole_units(settings, tmp_path):
    rows = "".join(f"| row {i} | value {i} with several words to fill the budget |\n" for i in range(40))
    path = tmp_path / "t.md"
    path.write_text("# T\n\n## 1. Data\n\n| key | value |\n|---|---|\n" + rows)
    result = ingest_paths([path], _chunker(settings))
    table_chunks = [c for c in result.chunks if "row" in c.text]
    assert len(table_chunks) > 1
    for c in table_chunks:
        assert c.text.startswith("|") and c.text.endswith("|"), c.text[:40]  # never cut mid-row
        assert "| key | value |" in c.embed_text  # the header row goes with every chunk of the table
    assert "| row 39 |" in " ".join(c.text for c in table_chunks)


def test_markdown_label_headings_and_running_headers_are_not_sections():
    footer = "Example Agency | March 2024"
    text = "# Cover\n# WORDS\n# ON\n# COVER\n\nIntro sentence that is long enough to be prose here.\n"
    for page in range(1, 6):
        text += (f"# Findings Part {page}\n\n" if page == 2 else "") + " ".join([BODY] * 8) + "\n"
        text += f"{footer} {page}\n# RUNNING HEAD OF THE REPORT\n"
    text += "# Median country\n# United States\n# Euro area\n# (Percent)\n# 8/ Excludes one country.\n# Oil 7/\n"
    parsed = parse_report(text)
    titles = [s.title for s in parsed.sections if s.title]
    assert titles == ["Findings Part 2"], titles
    counts = parsed.artifact_counts()
    assert counts["footer"] == 5 and counts["header"] == 5


def _rfc_like() -> str:
    toc = ("Table of Contents\n\n"
           "   1.  Introduction  . . . . . . . . . . . . . . . . . . . . . .   2\n"
           "     1.1.  Terms . . . . . . . . . . . . . . . . . . . . . . . .   2\n"
           "   2.  Protocol  . . . . . . . . . . . . . . . . . . . . . . . .   3\n"
           "   Appendix A.  Examples . . . . . . . . . . . . . . . . . . . .   4\n")
    pages = [toc,
             "1.  Introduction\n\n   The protocol is described here in\n   general terms and it is",
             "   continued after the break.  Second sentence.\n\n1.1.  Terms\n\n   1.  A numbered list item\n\n"
             "   Terms are defined.\n\n2.  Protocol\n\n   " + BODY,
             "Appendix A.  Examples\n\n   Examples follow.\n\nA.1.  First\n\n   One example.\n"]
    out = []
    for n, page in enumerate(pages, 1):
        header = "" if n == 1 else "RFC 9999                  Example                 May 2030\n\n"
        out.append(header + page + f"\n\nDoe                     Informational                 [Page {n}]\n")
    return "\f\n".join(out)


def test_plain_text_page_furniture_toc_and_margin_headings(tmp_path, settings):
    path = tmp_path / "rfc.txt"
    path.write_text(_rfc_like())
    result = ingest_paths([path], _chunker(settings))
    ids = [s.id for s in result.sections if s.title]
    assert ids == ["1", "1.1", "2", "a", "a.1"], ids
    by_id = {s.id: s for s in result.sections}
    assert by_id["a.1"].parent_id == "a" and by_id["1.1"].parent_id == "1"
    text = " ".join(c.text for c in result.chunks)
    assert "described here in general terms and it is continued after the break." in text
    for furniture in ("[Page", "RFC 9999", ". . .", "Table of Contents"):
        assert furniture not in text
    doc = result.documents[0]
    assert doc.footers_removed == 4 and doc.headers_removed == 3 and doc.toc_lines_removed == 5


def test_lines_that_look_alike_are_not_furniture_without_page_boundaries(tmp_path, settings):
    """3,000 numbered sections each saying 'Text of section N is here.': all body text stays."""
    text = "".join(f"{n}. Section {n}\n\nText of section {n} is here.\n\n" for n in range(1, 3001))
    path = tmp_path / "many.txt"
    path.write_text(text)
    result = ingest_paths([path], _chunker(settings))
    assert not result.failures
    assert len([s for s in result.sections if s.title]) == 3000
    joined = " ".join(c.text for c in result.chunks)
    assert joined.count("is here.") == 3000


def test_pdf_pages_without_text_are_counted_and_warned_about_past_the_share(tmp_path):
    from library_samples import pdf_with_blank_pages

    path = tmp_path / "scanned.pdf"
    path.write_bytes(pdf_with_blank_pages("Harbour Survey", [f"Quay {n} was dredged in spring." for n in range(10)],
                                          blank={2, 3, 4, 9}))
    doc = read_report(path)
    assert doc.pages_without_text == (2, 3, 4, 9) and len(doc.page_starts) == 10
    warning = doc.missing_text_warning(0.1)
    assert warning.startswith("4 of 10 pages have no extractable text (pages 2-4, 9)"), warning
    assert doc.missing_text_warning(0.4) is not None and doc.missing_text_warning(0.5) is None
    assert "Quay 5 was dredged" in doc.text  # the pages that have text are all read


def _pdf(path: Path, bookmarks: bool, nested: bool = False, labels: bool = False):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    chapters = [("1. Energy", ["1.1 Supply", "1.2 Demand"]), ("2. Transport", ["2.1 Roads"])]
    words = ["Solar", "Wind", "Rail", "Harbour", "Bridge", "Canal"]
    page = 0
    for title, subs in chapters:
        for n, heading in enumerate([title] + subs):
            pdf.add_page()
            page += 1
            if labels and page == 1:
                pdf.set_page_label("r")
            elif labels and page == 2:
                pdf.set_page_label("D", label_start=1)
            pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text="Regional Outlook 2030")
            if bookmarks:
                pdf.start_section(heading if not nested else heading.split(" ", 1)[1], level=1 if (nested and n) else 0)
            pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=heading)
            pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"{words[page]} work is planned. {BODY}")
            pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"Page {page}")
    pdf.output(str(path))


def test_pdf_flat_bookmarks_levels_from_numbers_and_page_labels(tmp_path, settings):
    path = tmp_path / "flat.pdf"
    _pdf(path, bookmarks=True, labels=True)
    doc = read_report(path)
    assert len(doc.bookmarks) == 5 and doc.page_labels[:3] == ("i", "1", "2")
    result = ingest_paths([path], _chunker(settings))
    by_id = {s.id: s for s in result.sections}
    assert [s.id for s in result.sections if s.title] == ["1", "1.1", "1.2", "2", "2.1"]
    assert by_id["1.2"].parent_id == "1"
    first = {}
    for c in result.chunks:
        first.setdefault(c.section_id, c)
    assert [first[i].page for i in ("1", "1.1", "1.2", "2", "2.1")] == [1, 2, 3, 4, 5]
    assert first["1"].page_label == "i" and first["1.1"].page_label == "1"
    assert all("Regional Outlook" not in c.text and "Page " not in c.text for c in result.chunks)


def test_pdf_nested_bookmarks_state_the_levels(tmp_path, settings):
    path = tmp_path / "nested.pdf"
    _pdf(path, bookmarks=True, nested=True)
    parsed = parse_document(read_report(path))
    sections = [s for s in parsed.sections if s.title]
    assert [(s.title, s.level) for s in sections] == [
        ("Energy", 1), ("Supply", 2), ("Demand", 2), ("Transport", 1), ("Roads", 2)]
    assert sections[1].parent_id == sections[0].id


def test_pdf_outline_without_printed_numbers_finds_every_heading_on_a_shared_page(tmp_path, settings):
    """Outlines often drop the number the page prints ("Supply" over "1.1 Supply"), put several headings on
    one page, and point at an index whose dot leaders look like a table of contents."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for n, (number, title) in enumerate([("1", "Energy"), ("1.1", "Supply"), ("1.2", "Demand")]):
        pdf.start_section(title, level=1 if n else 0)
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"{number} {title}")
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"{title} work is planned. {BODY}")
    pdf.add_page()
    pdf.start_section("Index", level=0)
    pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text="Index")
    for term, page in [("demand", 1), ("energy", 1), ("supply", 1), ("tariffs", 1)]:
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"{term} {'. ' * 30}{page}")
    path = tmp_path / "unnumbered-outline.pdf"
    pdf.output(str(path))
    doc = read_report(path)
    parsed = parse_document(doc)
    sections = [s for s in parsed.sections if s.title]
    assert [(s.number, s.title, s.level) for s in sections] == [
        ("1", "Energy", 1), ("1.1", "Supply", 2), ("1.2", "Demand", 2), ("", "Index", 1)]
    for s in sections[:3]:  # each section starts at its own printed heading, not at the page top
        assert doc.text[s.char_start:s.char_end].startswith(f"{s.number} {s.title}")
        assert f"{s.title} work is planned" in doc.text[s.char_start:s.char_end]


FILLER = [f"Line {n} of the opening text is ordinary body text." for n in range(10)]


def _outlined_pdf(path: Path, parts: list[tuple[str, int, list[str]]], page_each: bool = False) -> None:
    """A PDF whose bookmarks are ``parts`` (title, level, the lines printed under it), all on one page
    (or a page each)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for n, (title, level, lines) in enumerate(parts):
        if page_each and n:
            pdf.add_page()
        pdf.start_section(title, level=level)
        for line in lines:
            pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=line)
    pdf.output(str(path))


def test_pdf_outline_anchors_run_in_wrapped_and_identifier_titles_where_the_page_prints_them(tmp_path):
    """Found in Debian's R and gnuplot manuals: a run-in heading mid-page ("Cumulative The smooth ..."), a
    long title wrapped over two lines below its printed number, a bookmark's identifier ("Color_resources")
    over the printed words, and a title that also ends a sentence on a line of its own further down
    ("warning."), which must not take the heading away from the bookmarks after it."""
    parts = [  # (bookmark, lines printed for it: heading line(s) first)
        ("stop", ["8.1 stop", "A call to stop halts the evaluation of the current expression."]),
        ("warning", ["8.2 warning", "The function warning takes a single argument that is a string."]),
        ("on.exit", ["8.3 on.exit", "A function can insert a call to on.exit at any point; it runs after a",
                     "warning.", "Nothing else is done."]),
        ("Why does the output of a model depend on the order of the factors in the model?",
         ["8.4 Why does the output of a model depend on the order of the factors in the", "model?",
          "Because each term is added in turn to the terms before it."]),
        ("Color_resources", ["Color resources", "Displays honour the colour resources listed here."]),
        ("Cumulative", ["Cumulative The smooth cumulative option makes the data monotonic in x.",
                        "Points with the same x are replaced by one point."]),
    ]
    path = tmp_path / "manual.pdf"
    _outlined_pdf(path, [("Exception handling", 0, ["8 Exception handling"] + FILLER)]
                  + [(title, 1, lines) for title, lines in parts])
    doc = read_report(path)
    assert len(doc.page_starts) == 1
    sections = {s.title: s for s in parse_document(doc).sections if s.title}
    assert list(sections) == ["Exception handling"] + [title for title, _ in parts]
    for title, lines in parts:
        section = sections[title]
        assert doc.text[section.char_start:].startswith(lines[0]), (title, doc.text[section.char_start:][:60])
    assert [sections[t].number for t in ("stop", "warning", "on.exit")] == ["8.1", "8.2", "8.3"]
    cumulative = sections["Cumulative"]
    body = " ".join(doc.text[a:b] for a, b in cumulative.body_spans)
    assert body.startswith("The smooth cumulative option makes the data monotonic in x.")  # kept as body


def test_pdf_outline_appendix_title_wrapped_under_its_printed_label_takes_the_label(tmp_path):
    """R Installation and Administration: the bookmark "A Essential and useful other programs under a
    Unix-alike" over "Appendix A Essential and useful other programs" / "under a Unix-alike"."""
    path = tmp_path / "appendix.pdf"
    _outlined_pdf(path, [
        ("A Essential and useful other programs under a Unix-alike", 0,
         ["Appendix A Essential and useful other programs", "under a Unix-alike", BODY]),
        ("B Configuration on a Unix-alike", 0,
         ["Appendix B Configuration on a Unix-alike", "The configure script takes its options here."])],
        page_each=True)
    doc = read_report(path)
    parsed = parse_document(doc)
    sections = [s for s in parsed.sections if s.title]
    assert [s.number for s in sections] == ["Appendix A", "Appendix B"]
    body = " ".join(doc.text[a:b] for a, b in sections[0].body_spans)
    assert "under a Unix-alike" not in body and body.startswith("The committee reviewed")


def test_pdf_outline_titles_match_across_hyphens_and_after_a_bare_appendix_letter(tmp_path):
    """Claws Mail's manual prints "Mailing-List support" for the bookmark "MailingList support"; CxxTest's
    prints "C Testing CxxTest" for "Testing CxxTest". A lower-case "a" before a title is a sentence's."""
    marks = [("MailingList support", FILLER + ["Mailing-List support", "Lists are handled from the menu."]),
             ("warning", ["It prints", "a warning", "when asked.", "8.2 warning", "The function warns."]),
             ("Testing CxxTest", ["C Testing CxxTest", "The test suite runs itself."])]
    path = tmp_path / "hyphens.pdf"
    _outlined_pdf(path, [(title, 0, lines) for title, lines in marks])
    doc = read_report(path)
    sections = {s.title: s for s in parse_document(doc).sections if s.title}
    assert list(sections) == [title for title, _ in marks]
    for title, printed in (("MailingList support", "Mailing-List support"), ("warning", "8.2 warning"),
                           ("Testing CxxTest", "C Testing CxxTest")):
        assert doc.text[sections[title].char_start:].startswith(printed), title


def test_pdf_without_bookmarks_uses_numbered_lines(tmp_path, settings):
    path = tmp_path / "plain.pdf"
    _pdf(path, bookmarks=False)
    parsed = parse_document(read_report(path))
    assert [s.id for s in parsed.sections if s.title] == ["1", "1.1", "1.2", "2", "2.1"]


def test_a_converters_toc_with_joined_entries_and_italic_leaders_is_no_heading():
    """pymupdf4llm on a texinfo manual: bold ToC entries become one '###' line holding two entries, the
    others carry their leader in italics. Neither is a section, and neither stays in the body."""
    dots = " ".join(["."] * 30)
    text = (f"## **Table of Contents**\n\n### 1 Energy {dots} 1 2 Transport {dots} 2\n\n"
            f"1.1 Supply _{dots}_ 1\n1.2 Demand _{dots}_ 1\n2.1 Roads _{dots}_ 2\n\n"
            f"## **1 Energy**\n\n{BODY}\n\n### **1.1 Supply**\n\n{BODY}\n\n### **1.2 Demand**\n\n{BODY}\n\n"
            f"## **2 Transport**\n\n{BODY}\n\n### **2.1 Roads**\n\n{BODY}\n")
    parsed = parse_report(text)
    assert [s.title for s in parsed.sections if s.title] == [
        "1 Energy", "1.1 Supply", "1.2 Demand", "2 Transport", "2.1 Roads"]
    kept = "".join(ch for ch, masked in zip(text, parsed.mask) if not masked)
    assert ". . . ." not in kept and "Table of Contents" not in kept


def test_pdf_without_bookmarks_a_few_numbered_parts_do_not_flatten_the_font_size_tree(tmp_path):
    """gnuplot's manual: "Part I" over unnumbered sections and subsections set in smaller fonts. One
    numbered line among many unnumbered headings must not switch the tree to printed numbers."""
    from fpdf import FPDF

    pdf = FPDF()
    for part, sections in (("Part I", [("Overview", ["Scope", "Audience"]), ("Setup", ["Install"])]),
                           ("Part II", [("Reference", ["Commands", "Options"])])):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", size=24)
        pdf.multi_cell(0, 12, new_x="LMARGIN", new_y="NEXT", text=part)
        for section, subsections in sections:
            pdf.set_font("Helvetica", "B", size=16)
            pdf.multi_cell(0, 9, new_x="LMARGIN", new_y="NEXT", text=section)
            for sub in subsections:
                pdf.set_font("Helvetica", "B", size=13)
                pdf.multi_cell(0, 7, new_x="LMARGIN", new_y="NEXT", text=sub)
                pdf.set_font("Helvetica", size=11)
                pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"{sub} is described here. {BODY}")
    path = tmp_path / "parts.pdf"
    pdf.output(str(path))
    sections = [s for s in parse_document(read_report(path, pdf_outline=False)).sections if s.title]
    by_id = {s.id: s for s in sections}
    parent = {s.title: by_id[s.parent_id].title if s.parent_id in by_id else None for s in sections}
    assert parent["Scope"] == parent["Audience"] == "Overview" and parent["Install"] == "Setup"
    assert parent["Commands"] == "Reference" and parent["Overview"] == parent["Setup"] == "Part I"


def test_a_converters_fences_out_of_step_with_its_code_do_not_swallow_headings():
    """pymupdf4llm on texinfo manuals: a code block closed only after the heading that follows it, and one
    opened before prose with a heading inside. A fence with a language stays code, bold heading or not."""
    text = ("# **Manual**\n\n## **3 Evaluation**\n\nIntro text here.\n\n```\n   > y <- 4\n   [1] 4\n\n#### **3.1.3 Function calls**\n\n```\n\n"
            f"{BODY}\n\n```\n   > mean(1:10)\n\nChapter 3: Evaluation 11\n\n#### **3.1.4 Operators**\n\n\n"
            f"{BODY}\n\n```\n   x + y\n\n```\n\n#### **3.1.5 Markdown samples**\n\n"
            "```markdown\n## **Not a heading**\n```\n\nThe end.\n")
    parsed = parse_report(text)
    titles = [s.title for s in parsed.sections if s.title]
    assert titles == ["3 Evaluation", "3.1.3 Function calls", "3.1.4 Operators", "3.1.5 Markdown samples"], titles
    by_title = {s.title: s for s in parsed.sections}
    assert by_title["3.1.3 Function calls"].parent_id == by_title["3 Evaluation"].id
    function_calls = by_title["3.1.3 Function calls"]
    assert "The committee reviewed" in text[function_calls.char_start:function_calls.char_end]


def test_a_numbered_title_bold_in_several_runs_is_a_heading():
    """pymupdf4llm sets each PDF span in bold apart: "**1.1.1** **The shell prompt**" (Debian Reference)."""
    text = (f"# Reference\n\n## **1 Tutorials**\n\n## **1.1 Console basics**\n\n{BODY}\n\n"
            f"**1.1.1** **The shell prompt**\n\n{BODY}\n\n**1.1.2** **The root account**\n\n{BODY}\n\n"
            f"**1.1.3** **sudo configuration**\n\n{BODY}\n\n**1.1.4** **of the shell**\n\n{BODY}\n\n"
            f"**Note** this line is **not** a title.\n\n{BODY}\n")
    sections = [s for s in parse_report(text).sections if s.title]
    by_id = {s.id: s for s in sections}
    assert [(s.title, by_id[s.parent_id].title if s.parent_id in by_id else None) for s in sections] == [
        ("1 Tutorials", None), ("1.1 Console basics", "1 Tutorials"),
        ("1.1.1 The shell prompt", "1.1 Console basics"), ("1.1.2 The root account", "1.1 Console basics"),
        ("1.1.3 sudo configuration", "1.1 Console basics")]  # a name may be lower case; "of the shell" is no title


def test_pdf_without_bookmarks_reads_a_margin_heading_over_its_lines_with_its_number(tmp_path):
    """The IRS manual's margin headings: the number on a line of its own, a revision date, the title in
    bold over two lines (or one line the fonts miss, then the bold rest). R's manuals: a long bold title
    wrapped over two lines. Two numbered headings on adjacent lines stay two."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()

    def line(text, style="", size=11):
        pdf.set_font("Helvetica", style, size=size)
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=text)

    for number, plain, bold, body in (("2.1", None, ["Program Scope and", "Objectives"], "The scope is set here."),
                                      ("2.2", "Command Code", ["Overview"], "The command code shows accounts.")):
        line(number)
        line("(12-12-2022)")
        if plain:
            line(plain)
        for title in bold:
            line(title, "B", 13)
        line(f"{body} {BODY}")
    line("2.3 Remote desktop", "B", 13)
    line("2.4 X server connection", "B", 13)
    line(f"There are several ways to connect. {BODY}")
    path = tmp_path / "margin.pdf"
    pdf.output(str(path))
    sections = [s for s in parse_document(read_report(path, pdf_outline=False)).sections if s.title]
    assert [(s.number, s.title) for s in sections] == [
        ("2.1", "2.1 Program Scope and Objectives"), ("2.2", "2.2 Command Code Overview"),
        ("2.3", "2.3 Remote desktop"), ("2.4", "2.4 X server connection")]


def test_bold_toc_entries_are_a_toc_and_the_headings_around_it_no_run_of_labels():
    """pymupdf4llm on Claws Mail's manual: the ToC's entries set in bold between '###' headings."""
    dots = "." * 60
    text = ("# **The Mail User Manual**\n\n### **The Mail Team**\n\n### **Table of Contents**\n\n"
            f"**Introduction {dots}3**\n**Getting started {dots}4**\n**Basic mail handling {dots}5**\n\n"
            f"### **Introduction**\n\n{BODY}\n\n### **Getting started**\n\n{BODY}\n\n"
            f"### **Basic mail handling**\n\n{BODY}\n")
    parsed = parse_report(text)
    assert "Introduction" in [s.title for s in parsed.sections]
    kept = "".join(ch for ch, masked in zip(text, parsed.mask) if not masked)
    assert dots not in kept


def test_an_unnumbered_bold_title_over_prose_is_a_sub_section_and_terms_are_not():
    """pymupdf4llm on gnuplot's and Claws Mail's manuals: sub-sections as bold lines ("**Voxel** **grids**",
    "**What is Claws Mail?**") over their text. A defined term, an identifier and a lead-in stay body text."""
    prose = "Gnuplot now supports operations based on grids of voxel data and the commands that fill them"
    text = (f"# **Manual**\n\n## **New features**\n\n{BODY}\n\n**Voxel** **grids**\n\n{prose}\nin turn.\n\n"
            f"**What is new in plotting?**\n\n{prose}\nagain.\n\n**test fixture**\n\n{prose}.\n\n"
            f"**ErrorPrinter**\n\n{prose}.\n\n**Note:**\n\n{prose}.\n\n**Boxes** **63**\n\n"
            f"Candlesticks {'. ' * 20}64\n\n## **Commands**\n\n{BODY}\n")  # a ToC entry over a leader line
    sections = [s for s in parse_report(text).sections if s.title]
    by_id = {s.id: s for s in sections}
    assert [(s.title, by_id[s.parent_id].title if s.parent_id in by_id else None) for s in sections] == [
        ("New features", None), ("Voxel grids", "New features"), ("What is new in plotting?", "New features"),
        ("Commands", None)]


def test_chapter_numbers_opening_pages_are_headings_not_running_headers():
    """pymupdf4llm on a DocBook manual: every chapter opens a page with its page number, "## **Chapter N**"
    and "# **Title**". A number alone that recurs with a new number is each chapter's, not furniture."""
    parts = []
    for n, (title, sub) in enumerate((("About this manual", "Scope"), ("Configuration files", "Archives"),
                                      ("Methods", "Tarballs"), ("Uploads", "Mirrors")), 1):
        parts.append(f"{n * 2 - 1}\n\n## **Chapter {n}**\n\n# **{title}**\n\n### **{n}.1 {sub}**\n\n{BODY}\n\n"
                     f"Chapter {n}. {title} {n * 2}\n\n{BODY}\n\n")
    parsed = parse_report("".join(parts))
    sections = [s for s in parsed.sections if s.title]
    by_id = {s.id: s for s in sections}
    assert [s.title for s in sections][:2] == ["Chapter 1 About this manual", "1.1 Scope"]
    assert by_id[sections[1].parent_id].title == "Chapter 1 About this manual"
    assert sum(s.title.startswith("Chapter ") for s in sections) == 4


def test_a_root_prompts_command_read_as_a_heading_is_body_text():
    """Converted manuals keep "# rm -f /etc/default/filetraq" (a root prompt): CommonMark makes it an H1,
    which put the next numbered sections under a shell command."""
    text = (f"# Manual\n\n### **2. Installation**\n\n{BODY}\n\n# adduser --system --home /var/lib/tool tool\n\n"
            f"#### **2.1. User account**\n\n{BODY}\n\n# rm -f /etc/default/tool\n\n#### **2.2. Files**\n\n{BODY}\n")
    parsed = parse_report(text)
    sections = [s for s in parsed.sections if s.title]
    by_id = {s.id: s for s in sections}
    assert [(s.title, by_id[s.parent_id].title if s.parent_id in by_id else None) for s in sections] == [
        ("2. Installation", None), ("2.1. User account", "2. Installation"), ("2.2. Files", "2. Installation")]
    body = " ".join(clean_with_map(text, parsed.mask, a, b)[0] for spans in parsed.paragraphs.values()
                    for a, b in spans)
    assert "rm -f /etc/default/tool" in body  # the command stays in the text


def test_a_bare_appendix_letter_numbers_a_heading_only_where_sections_are_numbered_under_it():
    """CxxTest's guide through pymupdf4llm: "## **B Integrating with Your Build Environment**" over "B.1 SCons".
    "## A Guide to Tools", with no "A.1", is a title that starts with an article."""
    text = (f"# Guide\n\n## **A Guide to Tools**\n\n{BODY}\n\n## **B Integrating with Your Build**\n\n{BODY}\n\n"
            f"### **B.1 SCons**\n\n{BODY}\n\n### **B.2 Using Makefiles**\n\n{BODY}\n")
    sections = [s for s in parse_report(text).sections if s.title]
    by_id = {s.id: s for s in sections}
    assert [(s.number, by_id[s.parent_id].title if s.parent_id in by_id else None) for s in sections] == [
        ("", None), ("B", None), ("B.1", "B Integrating with Your Build"), ("B.2", "B Integrating with Your Build")]


def test_merged_chapter_heading_is_split_and_ids_are_stable():
    text = "# Book\n\n## Chapter 1 Compilation 1.1 Compiled and Interpreted Languages\n\n" + BODY + "\n"
    first, again = parse_report(text), parse_report(text)
    assert _ids(first) == ["ch1", "ch1.1"] == _ids(again)
    by_id = {s.id: s for s in first.sections}
    assert by_id["ch1.1"].parent_id == "ch1" and by_id["ch1.1"].title.startswith("1.1 Compiled")


def test_encrypted_pdfs_open_with_an_empty_password_and_otherwise_fail_with_a_reason(tmp_path, settings):
    """Many published reports are AES-"secured" with an empty user password: they read. One that needs a
    password is skipped with a reason, never a stack trace."""
    import pytest
    from pypdf import PdfReader, PdfWriter

    from ingest.readers import UnreadableReport

    plain = tmp_path / "plain.pdf"
    _pdf(plain, bookmarks=True)
    for name, user_password in (("open.pdf", ""), ("locked.pdf", "secret")):
        writer = PdfWriter(clone_from=PdfReader(str(plain)))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
        with open(tmp_path / name, "wb") as fh:
            writer.write(fh)
    opened = read_report(tmp_path / "open.pdf")
    assert "Wind work is planned" in opened.text and len(opened.bookmarks) == 5
    with pytest.raises(UnreadableReport, match="encrypted with a password"):
        read_report(tmp_path / "locked.pdf")
    result = ingest_paths([tmp_path / "open.pdf", tmp_path / "locked.pdf"], _chunker(settings))
    assert [d.path for d in result.documents] == [str(tmp_path / "open.pdf")]
    assert [f.reason for f in result.failures] == [
        "PDF is encrypted with a password: decrypt it first (qpdf --decrypt)"]


def test_text_in_utf16_or_windows_1252_reads_and_binary_does_not(tmp_path):
    """Windows exports: "Unicode" text is UTF-16 with a byte-order mark, older files are Windows-1252."""
    import pytest

    from ingest.readers import UnreadableReport

    text = "1. Café policy\n\nThe ministry’s “open café” rule applies in 2024.\n"
    (tmp_path / "utf16.txt").write_bytes(text.encode("utf-16"))
    (tmp_path / "legacy.txt").write_bytes(text.encode("cp1252"))
    (tmp_path / "noise.txt").write_bytes(bytes(range(1, 32)) * 40 + "é".encode("cp1252"))
    for name in ("utf16.txt", "legacy.txt"):
        doc = read_report(tmp_path / name)
        assert doc.text == text, name
        assert [s.title for s in parse_document(doc).sections if s.title] == ["1. Café policy"]
    with pytest.raises(UnreadableReport, match="not UTF-8 text .* not text"):
        read_report(tmp_path / "noise.txt")


def test_files_over_the_size_limit_are_skipped_with_a_reason(tmp_path, settings):
    path = tmp_path / "big.txt"
    path.write_text("x" * (2 * 1024 * 1024))
    result = ingest_paths([path], _chunker(settings), max_file_mb=1)
    assert result.failures and "over the 1 MB limit" in result.failures[0].reason


def test_pdf_without_bookmarks_reads_heading_levels_from_font_size(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()

    def line(text, size, style=""):
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size * 0.6, new_x="LMARGIN", new_y="NEXT", text=text)

    line("Regional Outlook", 20, "B")
    for title, subs in (("Energy Markets", ["Supply Side", "Demand Side"]), ("Transport Networks", ["Roads"])):
        line(title, 15, "B")
        line(BODY, 11)
        for sub in subs:
            line(sub, 12, "B")
            line(f"{sub} matters. " + BODY, 11)
    path = tmp_path / "fonts.pdf"
    pdf.output(str(path))
    parsed = parse_document(read_report(path))
    assert parsed.title == "Regional Outlook"
    assert [(s.title, s.level) for s in parsed.sections if s.title] == [
        ("Energy Markets", 1), ("Supply Side", 2), ("Demand Side", 2), ("Transport Networks", 1), ("Roads", 2)]


def test_markdown_page_headers_with_page_numbers_are_not_sections():
    """A converter's page headers ("## 12 CHAPTER 1. COMPILATION") become neither sections nor body."""
    text = "# Compilers\n\n# Chapter 1 Compilation\n\n" + BODY + "\n\n## 1.1 Compiled Languages\n\n"
    for page in range(12, 17):
        text += BODY + " It continues\n\n" + f"## {page} CHAPTER 1. COMPILATION\n\n" + "on the next page.\n\n"
    text += "## Step 1\n\nFirst step.\n\n## Step 2\n\nSecond step.\n\n## Step 3\n\nThird step.\n"
    parsed = parse_report(text)
    titles = [s.title for s in parsed.sections if s.title]
    assert titles == ["Chapter 1 Compilation", "1.1 Compiled Languages", "Step 1", "Step 2", "Step 3"], titles
    assert sum(parsed.artifact_counts().get(k, 0) for k in ("header", "footer")) == 5
    body = " ".join(parsed.paragraphs and [" ".join(text[a:b] for a, b in spans) for spans in parsed.paragraphs.values()])
    assert body.count("on the next page.") == 5 and body.count("It continues") == 5


def test_repeated_lines_ending_in_versions_or_addresses_are_body_not_footers():
    """Without page breaks, footers are found by a page number that changes; the last digits of a version
    ("added: v10.2.0") or an address ("pull/41678") are no page number, and the lines beside them stay;
    nor is a fence's "```c" (a roman 100), and fenced code is never furniture nor a ToC."""
    text = "# Files\n\n"
    for n, version in enumerate(["v10.0.0", "v0.1.31", "v12.12.0", "v0.0.2", "v14.1.7"]):
        text += (f"## {['Open', 'Read', 'Write', 'Close', 'Sync'][n]}\n\nadded: {version}\nchanges: https://example.org/pull/4{n}678\n\n"
                 f"* Returns: {{boolean}}\n\n{BODY}\n\n```c\nint x = read();\n// Prints: {n}\n```\n\n"
                 f"```console\n$ bench\nrate      interval\n  16  1515855.{n}\n  32  2515855.{n}\n  64  3515855.{n}\n```\n\n")
    parsed = parse_report(text)
    counts = parsed.artifact_counts()
    assert counts.get("footer", 0) == counts.get("header", 0) == counts.get("page-number", 0) == 0, counts
    assert counts.get("toc", 0) == 0, counts
    body = " ".join(text[a:b] for spans in parsed.paragraphs.values() for a, b in spans)
    assert body.count("Returns: {boolean}") == 5 and body.count("added: v") == 5
    assert body.count("// Prints:") == 5 and body.count("1515855.") == 5


def test_plain_text_underlined_titles_are_headings_and_rules_under_paragraphs_stay_body():
    """Setext / reStructuredText titles in a .txt: '=' over '-', a number still decides the level below,
    a title may take two lines over one underline, and a row of dashes under a sentence is no title."""
    text = ("=================\nRegional Outlook\n=================\n\n" + BODY + "\n\n"
            "1. Energy Supply\n----------------\n\n" + BODY + "\n\n"
            "1.1. Solar farms\n\n" + BODY + "\n\n"
            "2. Transport (since 2020)\nRevised on 2024-03-01\n-------------------------\n\n" + BODY + "\n\n"
            "The figures below were revised in March.\n----------------------------------------\n\n"
            + BODY + "\n\nAnnex\n=====\n\nMethod notes are here.\n")
    parsed = parse_report(text, markdown=False)
    got = [(s.number, s.title, s.level) for s in parsed.sections if s.title]
    assert got == [("1", "1. Energy Supply", 1), ("1.1", "1.1. Solar farms", 2),
                   ("2", "2. Transport (since 2020) Revised on 2024-03-01", 1), ("", "Annex", 1)], got
    assert parsed.title == "Regional Outlook"
    body = " ".join(text[a:b] for spans in parsed.paragraphs.values() for a, b in spans)
    assert "The figures below were revised in March." in body
    assert "=====" not in body and "Energy Supply" not in body and "Revised on" not in body


def test_plain_text_set_in_throughout_has_its_margin_where_its_numbered_titles_are():
    """Nothing numbered at column 0 (a licence, a memo indented by two spaces): titles set in by a few
    spaces count, a full stop may end one in Title Case, and a numbered sentence is still no title."""
    import textwrap

    body = textwrap.fill(BODY, 70)  # a text file's lines: wrapped at 70 columns
    text = "  TERMS OF SUPPLY\n\n"
    for n, title in enumerate(["Definitions.", "Delivery of Goods.", "Revised Versions of this Agreement."]):
        text += f"  {n}. {title}\n\n  {body}\n\n"
        text += f"  {n + 5}. Send the signed form to the office by Friday.\n\n"
    text += " " * 23 + "How to Read These Terms\n\n" + body + "\n"
    parsed = parse_report(text, markdown=False)
    got = [(s.number, s.title) for s in parsed.sections if s.title]
    assert got == [("0", "0. Definitions."), ("1", "1. Delivery of Goods."),
                   ("2", "2. Revised Versions of this Agreement."), ("", "How to Read These Terms")], got


def test_plain_text_numbered_title_over_its_own_indented_text():
    """A definitions list: "1.1. "Buyer"" at the margin, its text set in on the next line, no blank."""
    text = "1. Definitions\n\n"
    for n, term in enumerate(["Buyer", "Goods", "Seller"], 1):
        text += f'1.{n}. "{term}"\n    means the party named as {term.lower()} in the order.\n\n'
    text += "2. Delivery\n\n" + BODY + "\n\n2.1. the next line is a sentence that starts with a number\n" \
        "    and goes on indented.\n"
    parsed = parse_report(text, markdown=False)
    got = [(s.number, s.title, s.level) for s in parsed.sections if s.title]
    assert got == [("1", "1. Definitions", 1), ("1.1", '1.1. "Buyer"', 2), ("1.2", '1.2. "Goods"', 2),
                   ("1.3", '1.3. "Seller"', 2), ("2", "2. Delivery", 1)], got


def test_a_sub_heading_every_parent_repeats_is_a_section_a_running_header_is_not():
    """"### Commits" under each "## Version": one per parent, a level below; a converter's running header
    recurs under one parent, page after page, and goes."""
    text = "# Changes\n\n"
    for version in ("3.0", "2.5", "2.4"):
        text += f"## Version {version}\n\n### Notable changes\n\n{BODY}\n\n### Commits\n\n* Fixed it.\n\n"
    text += "# Outlook\n\n" + "".join(f"{BODY}\n\n## Regional Outlook 2030\n\n{BODY}\n\n" for _ in range(3))
    parsed = parse_report(text)
    titles = [s.title for s in parsed.sections if s.title]
    assert titles.count("Commits") == 3 and titles.count("Notable changes") == 3, titles
    assert "Regional Outlook 2030" not in titles and parsed.artifact_counts().get("header") == 3


def test_markdown_headings_set_as_code_name_an_api_and_stay_sections():
    text = ("# File system\n\n## Class: `FileHandle`\n\n" + BODY + "\n\n### `filehandle.read(buffer[, options])`\n\n"
            + BODY + "\n\n### `filehandle.close()`\n\n" + BODY + "\n\n## y = f(x)\n\n" + BODY + "\n")
    titles = [s.title for s in parse_report(text).sections if s.title]
    assert titles == ["Class: FileHandle", "filehandle.read(buffer[, options])", "filehandle.close()"], titles


def test_the_documents_own_toc_names_headings_the_margin_rule_misses():
    text = ("Contents\n\n   1. Scope ........ 1\n   2. Terms ........ 1\n   3. Method ........ 2\n\n"
            "1. Scope\n\nThe scope is wide.\n\n  2. Terms\nTerms are defined here.\n\n3. Method\n\nWe measure.\n")
    parsed = parse_report(text, markdown=False)
    assert [s.id for s in parsed.sections if s.title] == ["1", "2", "3"]


def test_markdown_heading_split_over_two_lines_and_linked_toc():
    text = ("# Compilers\n\n## Contents\n\n- [Chapter 1 Compilation](#ch1)\n- [1.1 Compiled Languages](#s11)\n"
            "- [1.2 Interpreters](#s12)\n\n# Chapter 1\n\n# Compilation\n\n" + BODY + "\n\n"
            "## 1.1 Compiled Languages\n\n" + BODY + "\n\n## 1.2 Interpreters\n\n" + BODY + "\n")
    parsed = parse_report(text)
    sections = [s for s in parsed.sections if s.title]
    assert [(s.id, s.title) for s in sections] == [
        ("ch1", "Chapter 1 Compilation"), ("ch1.1", "1.1 Compiled Languages"), ("ch1.2", "1.2 Interpreters")]
    assert parsed.artifact_counts()["toc"] == 4  # three entries and the "Contents" heading


def test_older_rfc_style_bare_numbers_at_the_margin():
    page1 = ("Table of Contents\n\n   1   Introduction ...................................  1\n"
             "   1.1 Purpose ........................................  1\n"
             "   14.35.1 Byte Ranges ..............................  2\n\n"
             "1 Introduction\n\n1.1 Purpose\n\n   The protocol is\n   described here and it is")
    page2 = ("   continued on this page.\n\n14.35.1 Byte Ranges\n\n   Ranges are counted in bytes.\n\n"
             "   12 items are listed below.\n")
    page3 = "   More text follows.\n"
    pages = [page1, page2, page3]
    text = "\f\n".join(f"RFC 0000        Old Style        June 1999\n\n{p}\n\nAuthor          Standards Track          [Page {n}]\n"
                       for n, p in enumerate(pages, 1))
    parsed = parse_report(text, markdown=False)
    sections = {s.id: s for s in parsed.sections if s.title}
    assert list(sections) == ["1", "1.1", "14.35.1"]
    assert sections["14.35.1"].parent_id is None and sections["1.1"].parent_id == "1"


def test_plain_text_title_from_a_two_column_front_page():
    text = ("Internet Engineering Task Force (IETF)                  A. Author\nRequest for Comments: 9999"
            "                          Example\n\n\n        A Protocol for Testing Titles\n\nAbstract\n\n"
            "   This document is a test.\n\n1.  Introduction\n\n" + "".join(f"   {s}.\n" for s in BODY.split(". ") * 2))
    parsed = parse_report(text, markdown=False)
    assert parsed.title == "A Protocol for Testing Titles"
    assert [s.title for s in parsed.sections if s.title] == ["Abstract", "1.  Introduction".replace("  ", " ")]


def test_roman_sections_with_lettered_subsections():
    text = ("# A Paper\n\n## I. INTRODUCTION\n\n" + BODY + "\n\n## II. RELATED WORK\n\n" + BODY + "\n\n"
            "### A. Routing\n\n" + BODY + "\n\n### B. Sparsity\n\n" + BODY + "\n\n## III. METHOD\n\n" + BODY + "\n\n"
            "## Appendix A. Proofs\n\n" + BODY + "\n")
    parsed = parse_report(text)
    sections = {s.id: s for s in parsed.sections if s.title}
    assert list(sections) == ["i", "ii", "ii.a", "ii.b", "iii", "a"]
    assert sections["ii.b"].parent_id == "ii" and sections["a"].parent_id is None


def test_markdown_bold_numbered_lines_and_pandoc_attributes():
    """A bold lead-in and a bold caption are body text; a bold title over prose is a sub-section (since
    2026-12-04: converters set sub-sections so, see the test below)."""
    text = ("# Report\n\n## 2 Method {#sec:method}\n\n" + BODY + "\n\n**2.1 Sampling**\n\n" + BODY + "\n\n"
            "**Note:** bold lead-ins are body text.\n\n**Figure 3 Sample sizes by region**\n\n" + BODY + "\n\n"
            "**Key findings**\n\n" + BODY + "\n")
    parsed = parse_report(text)
    sections = [(s.id, s.title) for s in parsed.sections if s.title]
    assert sections == [("2", "2 Method"), ("2.1", "2.1 Sampling"), ("2.key-findings", "Key findings")]


def test_pdf_without_bookmarks_reads_bare_numbers_of_font_headings(tmp_path):
    """LaTeX style "1 Energy Markets" set in a larger bold font is numbered (1.1 goes under it); numbered list
    items and a line that starts with a section number, in the body font, are body text."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()

    def line(text, size, style=""):
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size * 0.6, new_x="LMARGIN", new_y="NEXT", text=text)

    line("Regional Outlook", 20, "B")
    line("1 Energy Markets", 14, "B")
    line(BODY, 11)
    for k in range(1, 6):
        line(f"{k}. Install Unit {k}", 11)
    line("See section", 11)
    line("2.1 of the annex for the details of the plan.", 11)
    for title, size in (("1.1 Supply Side", 12), ("2 Transport Networks", 14), ("2.1 Roads", 12), ("3 Outlook", 14)):
        line(title, size, "B")
        line(BODY, 11)
    path = tmp_path / "latex.pdf"
    pdf.output(str(path))
    parsed = parse_document(read_report(path))
    sections = {s.id: s for s in parsed.sections if s.title}
    assert list(sections) == ["1", "1.1", "2", "2.1", "3"]
    assert sections["1.1"].parent_id == "1" and sections["2.1"].parent_id == "2"


def test_plain_text_memo_set_in_with_bare_numbers_lower_case_names_and_captions():
    """An Internet-Draft set in by two spaces throughout: "1  Scope" needs no dot after its number, a
    sub-section may be named in lower case ("2.1  libfoo calls"), a centred "Figure 1: …" is a caption, and
    a count that starts a line ("3 bytes follow") is not a section."""
    import textwrap

    body = textwrap.indent(textwrap.fill(BODY, 68), "  ")
    caption = " " * 20 + "Figure 1: The Basic Architecture"
    text = (f"  1  Scope\n\n{body}\n\n  2  Interfaces\n\n{body}\n\n  2.1  libfoo calls\n\n{body}\n\n"
            f"{caption}\n\n{body}\n\n  2.2  Errors\n\n{body}\n\n  3 bytes follow\n\n{body}\n\n"
            f"  3  Security considerations\n\n{body}\n")
    parsed = parse_report(text, markdown=False)
    got = [(s.number, s.level) for s in parsed.sections if s.title]
    assert got == [("1", 1), ("2", 1), ("2.1", 2), ("2.2", 2), ("3", 1)], got


def test_a_numbered_section_finds_its_parent_across_an_unnumbered_heading():
    """In plain text an unnumbered heading closes the numbered ones above it ("Abstract" is no parent of
    "1."), but "4.1." after one still belongs under "4.": its number says so."""
    body = textwrap.indent(textwrap.fill(BODY, 60), "   ")
    text = (f"1.  Scope\n\n{body}\n\n4.  Overview\n\n{body}\n\nExample Exchange\n\n{body}\n\n"
            f"4.1.  Details\n\n{body}\n\n5.  Security\n\n{body}\n")
    parsed = parse_report(text, markdown=False)
    got = {s.number: s.parent_id for s in parsed.sections if s.number}
    by_id = {s.id: s.number for s in parsed.sections}
    assert by_id.get(got["4.1"]) == "4" and got["5"] is None, got
