"""One rule that turns a document's headings, in reading order, into a tree, for every format.

- Printed numbers decide where they exist: a decimal number's parent is the nearest open heading whose
  number is a proper prefix of it (``4.1`` for ``4.1.2``; ``4.1.2`` with no ``4.1`` goes under ``4``), or
  the open division (Part/Chapter) above it; ``Appendix B`` and ``B.`` are top-level numbers like ``12``;
  Part is above Chapter; a bracketed ``(I)`` goes under the nearest numbered heading of another kind.
- A level the document states itself (PDF bookmark nesting) is used as given.
- Unnumbered headings: the Markdown ``#`` count, the last resort, places them among the open ones; an
  unnumbered heading that follows another of the same ``#`` level with no text between them is its child.
  That empty heading keeps the run of same-level headings after it as its children for as long as the
  evidence says so (:func:`_joins_run`): the titles' style class (ALL CAPS, Title Case, sentence case,
  bold or italic as the converter left it) separates children from the parent where the two differ;
  where it does not, a division has at least two parts (a lone subsection is not a division); past
  two, a run that another empty heading opening a run follows later lasts until that heading (chapters
  with no text of their own, one after another), and the last run of the document stops at two (after
  it, a heading of the same look is taken as the parent's next sibling: the shallower tree).

Ids are readable and stable: the printed number (``4.1.2``, ``b.3.1``, ``p2.iv``, ``ch1.1``), else the
parent's id and a slug of the title; made unique per document with ``-2``, ``-3`` ...
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.numbering import Numbering

SLUG_WORDS = 4
MIN_DIVISION = 2  # a section divided into subsections has at least two of them
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
                "with", "vs", "via", "amid", "over", "per", "up", "out"}


def title_style(title: str, emphasis: str = "") -> str:
    """The look of a heading's text: ``caps`` (ALL CAPS), ``title`` (Title Case), ``sentence``, each with the
    emphasis the converter kept (``bold``/``italic``) — a class that headings of one level share."""
    words = [w for w in re.findall(r"[^\W\d_][\w'’-]*", title)]
    letters = [c for c in title if c.isalpha()]
    if not letters:
        return emphasis
    if all(not c.islower() for c in letters) and len(letters) >= 2:
        case = "caps"
    else:
        content = [w for w in words[1:] if w.lower() not in _SMALL_WORDS]
        case = "title" if content and all(w[0].isupper() for w in content) else (
            "title" if not content and words and words[0][0].isupper() else "sentence")
    return f"{emphasis}-{case}" if emphasis else case


@dataclass
class Heading:
    title: str  # as a reader sees it (markup removed), number included
    start: int  # offset of the heading in the original text
    numbering: Numbering | None = None
    md_level: int = 0  # number of '#', 0 when not a Markdown heading
    stated_level: int = 0  # a level the document itself states (bookmark nesting), 0 when none
    has_body_before_next: bool = True  # text follows before the next heading
    style: str = ""  # the title's look: see title_style (a level cue where '#' counts are flat)
    opens_run: bool = False  # set by build_tree: empty, and the next heading is unnumbered at its '#' level
    run_follows: bool = False  # set by build_tree: a heading after this one opens a run
    # filled in by build_tree
    level: int = 0
    parent: int | None = None
    id: str = ""


def _can_parent(candidate: Heading, child: Heading) -> bool:
    """May ``candidate`` (an open heading) be the parent of ``child``, judged by their numbers?"""
    c, n = candidate.numbering, child.numbering
    if n is None:
        return True
    if n.kind == "division":
        return c is not None and c.kind == "division" and c.rank < n.rank
    if n.kind == "roman":
        return c is not None and c.kind == "division"
    if n.kind == "decimal":
        if c is None:
            return False
        if c.kind == "division":
            return True
        if c.kind == "roman":  # "A." under "II.", but an "Appendix A" is a top-level number
            return not n.label.lower().startswith(("appendix", "annex"))
        return c.kind == "decimal" and c.is_prefix_of(n)
    if n.kind == "series":
        return c is not None and c.kind == "division"
    # paren: under any numbered heading that is not the same bracketed series
    if c is None:
        return False
    return c.kind != "paren" or (c.style != n.style)


def _is_empty_parent(p: Heading, h: Heading) -> bool:
    """An unnumbered heading of ``h``'s '#' level with no text of its own before the next heading."""
    return p.numbering is None and p.md_level == h.md_level and not p.has_body_before_next


def _joins_run(parent: Heading, children: list[Heading], h: Heading) -> bool:
    """Is ``h`` one more child of the empty heading ``parent`` (whose children so far are ``children``),
    rather than its next sibling?"""
    kids = {c.style for c in children}
    if kids == {h.style} and h.style != parent.style:
        return True  # the children's look, which is not the parent's
    if h.style == parent.style and h.style not in kids:
        return False  # the parent's look, which no child has
    if len(children) < MIN_DIVISION:
        return True
    return h.run_follows and not h.opens_run  # the run lasts until the next heading that opens one


def _place_unnumbered(stack: list[int], headings: list[Heading], h: Heading,
                      children: dict[int, list[int]]) -> None:
    if not h.md_level:
        # Plain text / PDF without a stated level: an unnumbered heading closes numbered ones.
        while stack and headings[stack[-1]].numbering is not None:
            stack.pop()
        while stack and headings[stack[-1]].numbering is None:
            stack.pop()
        return
    previous = headings[stack[-1]] if stack else None
    if previous is not None and _is_empty_parent(previous, h):
        return  # directly below a heading of the same level with nothing between: its first child
    while stack and headings[stack[-1]].md_level and headings[stack[-1]].md_level >= h.md_level:
        top = headings[stack[-1]]
        parent = top.parent
        if (top.md_level == h.md_level and top.numbering is None and parent is not None
                and _is_empty_parent(headings[parent], h)
                and _joins_run(headings[parent], [headings[c] for c in children.get(parent, ())], h)):
            stack.pop()
            return  # the next child of the empty heading above
        stack.pop()


def _roman_one(headings: list[Heading]) -> None:
    """Where "II." and "III." are sections, "I." is their first one, not a letter."""
    if not any(h.numbering and h.numbering.kind == "roman" for h in headings):
        return
    for h in headings:
        n = h.numbering
        if n and n.kind == "decimal" and n.parts in (("i",), ("v",), ("x",)) and n.label.upper() == n.label:
            h.numbering = Numbering("roman", n.label, n.parts, rest=n.rest)


def _numbered_parent_chain(headings: list[Heading], i: int) -> list[int]:
    """The ancestry (root first) of the latest heading before ``i`` whose number ``i``'s extends, or [].
    An unnumbered heading between "4." and "4.1." (a caption taken for a title) closed "4." on the stack;
    the number still says where "4.1." belongs."""
    n = headings[i].numbering
    if n is None or n.kind != "decimal":
        return []
    for j in range(i - 1, -1, -1):
        c = headings[j].numbering
        if c is not None and c.kind == "decimal" and c.is_prefix_of(n):
            chain = [j]
            while headings[chain[0]].parent is not None:
                chain.insert(0, headings[chain[0]].parent)
            return chain
    return []


def build_tree(headings: list[Heading]) -> list[Heading]:
    """Set level, parent and id of every heading (in place) and return them."""
    _roman_one(headings)
    stack: list[int] = []
    for h, after in zip(headings, headings[1:]):
        h.opens_run = after.numbering is None and _is_empty_parent(h, after)
    follows = False
    for h in reversed(headings):
        h.run_follows = follows
        follows = follows or h.opens_run
    children: dict[int, list[int]] = {}
    for i, h in enumerate(headings):
        if h.stated_level:
            while stack and headings[stack[-1]].stated_level >= h.stated_level:
                stack.pop()
        elif h.numbering is None:
            _place_unnumbered(stack, headings, h, children)
        else:
            while stack and not _can_parent(headings[stack[-1]], h):
                stack.pop()
            if not stack:
                stack = _numbered_parent_chain(headings, i)
        h.parent = stack[-1] if stack else None
        if h.parent is not None:
            children.setdefault(h.parent, []).append(i)
        h.level = headings[h.parent].level + 1 if h.parent is not None else 1
        stack.append(i)
    _assign_ids(headings)
    return headings


def slug(text: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split()[:SLUG_WORDS]) or "section"


def _own_token(h: Heading, parent: Heading | None) -> tuple[str, bool]:
    """(id token, whether it is qualified by the parent's id)."""
    n = h.numbering
    if n is None:
        return slug(h.title), True
    if n.kind == "division":
        return "".join(n.parts), parent is not None
    if n.kind == "roman":
        return n.parts[0], parent is not None
    if n.kind == "paren":
        return n.parts[0], parent is not None
    parts = [re.sub(r"[^a-z0-9]+", "", p.lower()) or "x" for p in n.parts]
    joined = ".".join(parts) if n.kind == "decimal" else f"{'.'.join(parts[:-1])}-{parts[-1]}"
    if parent is not None and parent.numbering is not None and parent.numbering.kind in ("division", "roman"):
        own = parent.numbering.parts[-1]
        tail = parts[1:] if parts[0] == own and len(parts) > 1 else parts
        return ".".join(tail), True
    return joined, False


def _assign_ids(headings: list[Heading]) -> None:
    used: set[str] = set()
    for h in headings:
        parent = headings[h.parent] if h.parent is not None else None
        token, qualified = _own_token(h, parent)
        sid = f"{parent.id}.{token}" if qualified and parent is not None else token
        base, n = sid, 2
        while sid in used or sid == "opening":
            sid, n = f"{base}-{n}", n + 1
        used.add(sid)
        h.id = sid
