"""Level evidence where a converter flattens every heading to one '#' level (unstructured, some docling
output), and lines that must never become headings: a converter's page headers repeated on every page,
numbered list items and sentence fragments that start with a section number. Small inputs written here."""
from ingest.hierarchy import title_style
from ingest.lines import clean_with_map
from ingest.structure import parse_report

BODY = ("The committee reviewed the program in detail. It found that funding was adequate in most regions. "
        "However, several districts reported delays in procurement.")


def _tree(text, markdown=True):
    parsed = parse_report(text, markdown=markdown)
    titles = {s.id: s.title for s in parsed.sections}
    return [(s.title, titles.get(s.parent_id)) for s in parsed.sections if s.title], parsed


def _flat(*headings):
    """'# Report', then each heading flat at '#': '' after a title means no body follows it."""
    out = "# Report Title\n\n" + BODY + "\n\n"
    for title in headings:
        empty = title.endswith("|")
        out += f"# {title.rstrip('|')}\n\n" + ("" if empty else BODY + "\n\n")
    return out


def test_title_styles():
    assert title_style("Growth in the Region") == "title"
    assert title_style("Results of the survey") == "sentence"
    assert title_style("RISKS AND POLICIES") == "caps"
    assert title_style("Outlook", "bold") == "bold-title"


def test_empty_flat_heading_parents_two_children_then_the_next_heading_is_its_sibling():
    tree, _ = _tree(_flat("Background", "Findings|", "Water Supply", "Power Supply", "Next Steps"))
    assert tree == [("Background", None), ("Findings", None), ("Water Supply", "Findings"),
                    ("Power Supply", "Findings"), ("Next Steps", None)]


def test_children_in_a_style_of_their_own_continue_the_run():
    tree, _ = _tree(_flat("Background", "Findings|", "Water supply in the north", "Power supply in the south",
                          "Roads and rail links", "Next Steps"))
    assert tree == [("Background", None), ("Findings", None), ("Water supply in the north", "Findings"),
                    ("Power supply in the south", "Findings"), ("Roads and rail links", "Findings"),
                    ("Next Steps", None)]


def test_a_heading_in_the_parents_style_closes_the_run_after_one_child():
    tree, _ = _tree(_flat("BACKGROUND", "FINDINGS|", "Water Supply", "NEXT STEPS"))
    assert tree == [("BACKGROUND", None), ("FINDINGS", None), ("Water Supply", "FINDINGS"), ("NEXT STEPS", None)]


def test_bold_children_under_a_plain_empty_heading():
    text = (_flat("Background", "Findings|") + "# **Water**\n\n" + BODY + "\n\n# **Power**\n\n" + BODY + "\n\n"
            "# **Roads**\n\n" + BODY + "\n\n# Next Steps\n\n" + BODY + "\n")
    tree, _ = _tree(text)
    assert tree == [("Background", None), ("Findings", None), ("Water", "Findings"), ("Power", "Findings"),
                    ("Roads", "Findings"), ("Next Steps", None)]


def test_headings_with_body_stay_siblings():
    tree, _ = _tree(_flat("Background", "Findings", "Water Supply", "Next Steps"))
    assert all(parent is None for _, parent in tree)


def test_converter_page_headers_repeated_on_every_page_are_never_sections():
    """unstructured keeps a running header on each of 30 pages, sometimes as '# ...', after a footer whose
    page number sits left or right; the sentence the page break cut is joined again."""
    text = "# NORTHERN AGENCY\n\nSummary sentence that is long enough to be read as prose here.\n"
    topics = {3: "Rivers and Dams", 12: "Grid Investment", 25: "Outlook for Next Year"}
    for page in range(1, 31):
        if page in topics:
            text += f"# {topics[page]}\n"
        text += f"Body of page {page} starts here. {BODY} The text of page {page} runs on and is cut\n"
        text += (f"Northern Agency | May 2031 {page}" if page % 2 else f"{page} Northern Agency | May 2031") + "\n"
        text += ("# " if page % 3 == 0 else "") + "ANNUAL REVIEW OF THE NORTHERN AGENCY, MAY 2031\n"
        text += f"across the page break {page}. More words follow.\n"
    tree, parsed = _tree(text)
    assert tree == [(t, None) for t in topics.values()]
    counts = parsed.artifact_counts()
    assert counts["header"] == 30 and counts["footer"] == 30
    body = " ".join(clean_with_map(text, parsed.mask, a, b)[0] for spans in parsed.paragraphs.values()
                    for a, b in spans)
    assert "Northern Agency |" not in body and "ANNUAL REVIEW" not in body
    assert body.count("runs on and is cut across the page break") == 30


def test_numbered_list_items_and_fragments_are_never_headings_in_plain_text():
    text = ("1.  Introduction\n\n   " + BODY + "\n\n2.  Requirements\n\n"
            "1. Install the package on every server.\n\n2. Restart the service after the upgrade.\n\n"
            "3. Check the logs for errors.\n\n   As described in Section\n"
            "4.1.2. the client then sends its key share and waits for the server.\n\n"
            "3.  Design\n\n   " + BODY + "\n\n3.1.  Overview\n\n   The details are given in\n\n"
            "3.2 of the companion document, which also covers the edge cases.\n\n4.  Security\n\n   " + BODY + "\n")
    parsed = parse_report(text, markdown=False)
    assert [s.id for s in parsed.sections if s.title] == ["1", "2", "3", "3.1", "4"]
    body = " ".join(clean_with_map(text, parsed.mask, a, b)[0] for spans in parsed.paragraphs.values()
                    for a, b in spans)
    for kept in ("Install the package on every server.", "4.1.2. the client then sends",
                 "3.2 of the companion document"):
        assert kept in body


def test_numbered_sentences_marked_as_markdown_headings_are_body_text():
    text = ("# Guide\n\n## 1. Setup\n\n" + BODY + "\n\n1. Install the package on every server.\n2. Restart it.\n\n"
            "# 2. Restart the service after every upgrade.\n\n## 2. Use\n\n" + BODY + " See section\n"
            "3.1 for details on the format of the file.\n\n# 2.1 describes the inputs that the tool accepts.\n\n"
            "# 2.2 of the guide\n\n## 3. Format\n\n" + BODY + "\n\n### 3.1 Fields\n\n" + BODY + "\n\n"
            "### 3.2 pH values\n\n" + BODY + "\n\n### 3.3 What is a program?\n\n" + BODY + "\n\n"
            "### 3.4 von Neumann machines\n\n" + BODY + "\n")
    parsed = parse_report(text)
    assert [s.id for s in parsed.sections if s.title] == ["1", "2", "3", "3.1", "3.2", "3.3", "3.4"]
    body = " ".join(clean_with_map(text, parsed.mask, a, b)[0] for spans in parsed.paragraphs.values()
                    for a, b in spans)
    assert "2.1 describes the inputs" in body and "Restart the service after every upgrade." in body


def test_a_document_whose_chapters_are_all_empty_headings_keeps_every_section_in_its_chapter():
    text = "# Field Guide\n\n" + BODY + "\n\n"
    for chapter, sections in (("Rivers", ["Sources", "Floods", "Deltas"]), ("Forests", ["Canopy", "Soil", "Fire"]),
                              ("Coasts", ["Cliffs", "Dunes"])):
        text += f"# {chapter}\n\n" + "".join(f"# {s}\n\n{BODY}\n\n" for s in sections)
    tree, _ = _tree(text)
    assert tree == [("Rivers", None), ("Sources", "Rivers"), ("Floods", "Rivers"), ("Deltas", "Rivers"),
                    ("Forests", None), ("Canopy", "Forests"), ("Soil", "Forests"), ("Fire", "Forests"),
                    ("Coasts", None), ("Cliffs", "Coasts"), ("Dunes", "Coasts")]



def test_two_runs_each_end_where_the_next_begins_and_the_last_stops_at_two():
    """A report: the first run ends where the next empty heading opens its own; after the last run's two
    children a heading of the same look is the next top-level section."""
    tree, _ = _tree(_flat("Background", "Outlook|", "Growth Slowing", "Prices Easing", "Trade Recovering",
                          "Risks|", "Upside Risks", "Downside Risks", "Policies"))
    assert tree == [("Background", None), ("Outlook", None), ("Growth Slowing", "Outlook"),
                    ("Prices Easing", "Outlook"), ("Trade Recovering", "Outlook"), ("Risks", None),
                    ("Upside Risks", "Risks"), ("Downside Risks", "Risks"), ("Policies", None)]


def test_back_matter_after_the_last_chapter_is_top_level():
    text = "# Field Guide\n\n" + BODY + "\n\n"
    for chapter, sections in (("Rivers", ["Sources", "Floods", "Deltas"]), ("Coasts", ["Cliffs", "Dunes"])):
        text += f"# {chapter}\n\n" + "".join(f"# {s}\n\n{BODY}\n\n" for s in sections)
    text += "# References\n\n" + BODY + "\n"
    tree, _ = _tree(text)
    assert tree[-3:] == [("Cliffs", "Coasts"), ("Dunes", "Coasts"), ("References", None)]


def test_a_books_page_headers_naming_the_chapter_or_section_with_a_page_number_are_not_sections():
    """A flat converter's textbook: even pages head "12 CHAPTER 1. COMPILATION", odd pages the section
    ("1.1. COMPILED LANGUAGES 13") or the book's title, once or twice each; the cut sentence is joined."""
    text = "# Thinking in Code\n\n" + BODY + "\n"
    page = 10
    for ch, name, subs in (("1", "Compilation", [("1.1", "Compiled Languages"), ("1.2", "Why Python")]),
                           ("2", "Values and Types", [("2.1", "Integers"), ("2.2", "Strings")])):
        text += f"# Chapter {ch}\n# {name}\n{BODY}\n"
        for num, title in subs:
            text += f"# {num} {title}\n"
            for _ in range(2):
                page += 1
                header = (f"{page} CHAPTER {ch}. {name.upper()}" if page % 2 == 0 else
                          f"{num}. {title.upper()} {page}" if page % 3 else f"THINKING IN CODE {page}")
                text += f"{BODY} and the sentence is cut\n# {header}\nacross the page. {BODY}\n"
    tree, parsed = _tree(text)
    assert tree == [("Chapter 1 Compilation", None), ("1.1 Compiled Languages", "Chapter 1 Compilation"),
                    ("1.2 Why Python", "Chapter 1 Compilation"), ("Chapter 2 Values and Types", None),
                    ("2.1 Integers", "Chapter 2 Values and Types"), ("2.2 Strings", "Chapter 2 Values and Types")]
    body = " ".join(clean_with_map(text, parsed.mask, a, b)[0] for spans in parsed.paragraphs.values()
                    for a, b in spans)
    assert body.count("the sentence is cut across the page.") == 8 and "CHAPTER" not in body


def test_a_stray_numbered_margin_line_does_not_hide_the_sections_after_it():
    """Plain text: "12.  Twelve ..." and "A.  Author Name" at the margin between sections 1 and 4 are not
    the next sections, and sections 2 to 5 are still found (numbers advance along the longest run)."""
    body = "   The committee reviewed the program in detail.  It found that funding was adequate.\n"
    text = "".join(f"{line}\n\n{body}\n" for line in (
        "1.  Introduction", "12.  Twelve Monkeys Were Counted", "2.  Terminology", "3.  Protocol Overview",
        "3.1.  Handshake", "A.  Author Name", "4.  Security Considerations", "5.  References"))
    parsed = parse_report(text, markdown=False)
    assert [s.id for s in parsed.sections if s.title] == ["1", "2", "3", "3.1", "4", "5"]


def test_a_bare_chapter_number_before_a_title_that_opens_with_punctuation():
    """R Internals' "2 .Internal vs .Primitive": an identifier for a title keeps its chapter number, and its
    sections stay its children."""
    from ingest.numbering import parse_numbering

    assert parse_numbering("2 .Internal vs .Primitive", explicit=True).label == "2"
    assert parse_numbering("2 “Quoted” title", explicit=True).label == "2"
    assert parse_numbering("3 cups of flour", explicit=True) is None  # a lower-case rest is no title
    text = ("# R Internals\n\n## 1 Structures\n\nText of chapter one is here.\n\n## 2 .Internal vs .Primitive\n\n"
            "Text of chapter two is here.\n\n### 2.1 Special primitives\n\nText of the section is here.\n")
    sections = {s.title: s for s in parse_report(text).sections}
    assert sections["2 .Internal vs .Primitive"].number == "2"
    assert sections["2.1 Special primitives"].parent_id == sections["2 .Internal vs .Primitive"].id
