"""Markdown read with a real CommonMark parser (markdown-it-py, tables enabled).

Its tokens carry source line maps, so headings and blocks are located by line in
the original file and every offset stays exact. Headings are only what the
parser calls headings at the top level of the document: a ``#`` inside fenced
or indented code, an HTML block, a table, a block quote or a list item is never
one; except where a converter's fences are out of step with its code, seen by a
heading in its own bold style inside a fence without a language (the block's
code ends there). Heading titles are the inline text a reader sees: inline HTML (``<span
id=…>``) dropped, backslash escapes resolved, emphasis markers gone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

# Block kinds whose lines are never headings (and whose text is not prose).
OPAQUE_BLOCKS = {"fence": "code", "code_block": "code", "html_block": "html"}
CONTAINERS = {"table_open": "table", "blockquote_open": "quote", "bullet_list_open": "list",
              "ordered_list_open": "list"}


@dataclass
class MarkdownHeading:
    line: int  # 0-based line index of the heading
    end_line: int  # line after the heading (setext headings span two lines)
    title: str
    md_level: int


@dataclass
class MarkdownBlocks:
    headings: list[MarkdownHeading] = field(default_factory=list)
    block_kind: dict[int, str] = field(default_factory=dict)  # line index -> "code" | "html" | "table" | ...
    fence_lines: set[int] = field(default_factory=set)  # the ``` lines themselves (markup, not text)
    fenced: set[int] = field(default_factory=set)  # every line of a fenced code block, fences included
    tables: list[tuple[int, int]] = field(default_factory=list)  # (first line, end line) of each table
    bold_lines: list[MarkdownHeading] = field(default_factory=list)  # one-line paragraphs that are all bold


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def inline_text(inline) -> str:
    """What a reader sees of an inline token: text and code spans, no HTML, no markers."""
    parts: list[str] = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    text = " ".join("".join(parts).split())
    return _ATTRIBUTES.sub("", text)  # pandoc's "{#sec:intro .unnumbered}"


_ATTRIBUTES = re.compile(r"\s*\{[#.][^{}]*\}\s*$")


def _all_bold(inline) -> bool:
    """Every word of the line inside bold, in one run or in several ("**1.1.1** **The shell prompt**": a
    converter that sets each PDF span apart)."""
    depth, seen = 0, False
    for child in inline.children or ():
        if child.type == "strong_open":
            depth, seen = depth + 1, True
        elif child.type == "strong_close":
            depth -= 1
        elif depth == 0 and not (child.type == "text" and not child.content.strip()):
            return False
    return seen


# A heading in a converter's style ("### **3.1.3 Function calls**") at the start of a line inside a fenced
# block without a language: the converter's fences are out of step with its code (pymupdf4llm closes a
# block after the heading that follows it, or opens one before prose), so from that line on it is Markdown.
_BOLD_ATX = re.compile(r"^#{1,6}[ \t]+\*\*(?=\S).*\S\*\*[ \t]*$")


def _misfenced_start(token) -> int | None:
    """The offset (in lines, from the block's first content line) where a fenced block's Markdown starts."""
    if token.info.strip():
        return None
    return next((n for n, line in enumerate(token.content.split("\n")) if _BOLD_ATX.match(line)), None)


def _read_misfenced(blocks: MarkdownBlocks, token, first: int, end: int) -> int:
    """Read a fenced block's misfenced tail as Markdown into ``blocks``; the line where the code ends."""
    start = _misfenced_start(token)
    if start is None:
        return end
    code_end = first + 1 + start
    tail = read_blocks("\n".join(token.content.split("\n")[start:]))
    for h in tail.headings + tail.bold_lines:
        h.line, h.end_line = h.line + code_end, h.end_line + code_end
    blocks.headings += tail.headings
    blocks.bold_lines += tail.bold_lines
    for n in range(code_end, end - 1):
        blocks.block_kind.pop(n, None)
    blocks.block_kind.update({n + code_end: kind for n, kind in tail.block_kind.items() if n + code_end < end - 1})
    blocks.tables += [(a + code_end, b + code_end) for a, b in tail.tables]
    return code_end


def read_blocks(text: str) -> MarkdownBlocks:
    tokens = _parser().parse(text)
    blocks = MarkdownBlocks()
    for i, token in enumerate(tokens):
        if token.map is None:
            continue
        first, end = token.map
        if token.type == "heading_open" and token.level == 0:
            title = inline_text(tokens[i + 1])
            if title:
                blocks.headings.append(MarkdownHeading(first, end, title, int(token.tag[1])))
        elif token.type == "paragraph_open" and token.level == 0 and end - first == 1 and _all_bold(tokens[i + 1]):
            blocks.bold_lines.append(MarkdownHeading(first, end, inline_text(tokens[i + 1]), 0))
        elif token.type in OPAQUE_BLOCKS:
            kind = OPAQUE_BLOCKS[token.type]
            for n in range(first, end):
                blocks.block_kind[n] = kind
            if token.type == "fence":
                code_end = _read_misfenced(blocks, token, first, end)
                blocks.fenced.update(n for n in range(first, end) if not code_end <= n < end - 1)
                blocks.fence_lines.add(first)
                if end - 1 > first:
                    blocks.fence_lines.add(end - 1)
        elif token.type in CONTAINERS:
            kind = CONTAINERS[token.type]
            for n in range(first, end):
                blocks.block_kind.setdefault(n, kind)
            if kind == "table":
                blocks.tables.append((first, end))
    return blocks
