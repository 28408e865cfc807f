"""The bundled report parses to exactly the structure a reader sees, and its chunks are faithful."""
import re

from ingest.structure import parse_report
from settings import BUNDLED_REPORT, SHARED_DIR

ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x"]


def test_report_is_bundled_byte_for_byte():
    shared = SHARED_DIR / "corpus" / BUNDLED_REPORT.name
    assert shared.is_file(), (f"the shared copy of the report is missing: {shared} "
                              "(../shared beside the repo, or set REPORTQA_SHARED_DIR)")
    assert shared.read_bytes() == BUNDLED_REPORT.read_bytes()


def test_structure_is_what_a_reader_sees(ingested):
    ids = [s.id for s in ingested.sections]
    assert ids == (["opening", "p1", "p2"] + [f"p2.{r}" for r in ROMAN] + ["p3"]
                   + [f"p3.{r}" for r in ROMAN[:8]] + ["p4"])
    by_id = {s.id: s for s in ingested.sections}
    assert by_id["p4"].title == "PART 4: Action Initiatives Oriented to the Future"
    assert by_id["p2.vi"].title == "(VI) Establishing a Governance Framework against Cybercrime and Cyber Terrorism"
    assert by_id["p3.v"].parent_id == "p3" and by_id["p3.v"].level == 2
    assert by_id["p2.iv"].path == (
        "PART 2 A Decade of Practice in Building a Community with a Shared Future in Cyberspace",
        "(IV) Enhancing the Protection of Critical Information Infrastructure",
    )
    assert by_id["opening"].title == "" and by_id["opening"].level == 0
    assert ingested.documents[0].title.startswith("Building a Community with a Shared Future in Cyberspace")


def _reconstruct(text, mask, start, end):
    kept = "".join(ch for i, ch in enumerate(text[start:end], start) if not mask[i])
    return re.sub(r"\s+", " ", kept).strip()


def test_every_chunk_maps_back_to_the_original(ingested):
    doc = ingested.documents[0]
    mask = parse_report(doc.text).mask
    for chunk in ingested.chunks:
        assert _reconstruct(doc.text, mask, chunk.char_start, chunk.char_end) == chunk.text, chunk.id
        for s in chunk.sentences:
            assert _reconstruct(doc.text, mask, s.char_start, s.char_end) == chunk.text[s.text_start:s.text_end]


def test_no_artifacts_or_markup_in_chunks(ingested):
    toc_lines = [ln.strip() for ln in BUNDLED_REPORT.read_text().splitlines()[8:36] if ln.strip()]
    for chunk in ingested.chunks:
        assert not re.search(r"[*#]|^- |\s- ", chunk.text), chunk.text[:80]
        assert "A Community with a Shared Future in Cyberspace incorporating" not in chunk.text
        assert "PA]" not in chunk.text and "Content" not in chunk.text[:20]
        for line in toc_lines:
            assert line not in chunk.text
    text = " ".join(c.text for c in ingested.chunks)
    # Sentences cut by page breaks and by the running header are whole again.
    assert "The order of global cyberspace should not be set by hegemonic powers. Instead, it requires joint governance" in text
    assert re.search(r"[a-z,] incorporating perspectives from international relations", text)


def test_chunks_respect_budget_sections_and_model_window(ingested, settings, embedder):
    bodies = {s.id: s.body_spans for s in ingested.sections}
    for chunk in ingested.chunks:
        assert chunk.tokens <= settings.chunk_tokens
        spans = bodies[chunk.section_id]
        assert spans[0][0] <= chunk.char_start and chunk.char_end <= spans[-1][1]
        # Counted by the embedder's own tokenizer: nothing is truncated silently.
        pieces = embedder.count_pieces([chunk.embed_text])[0]
        assert pieces <= embedder.max_seq_length, (chunk.id, pieces)


def test_ordinals_and_ids_are_stable(ingested, chunker, settings):
    from ingest import ingest_paths

    again = ingest_paths([BUNDLED_REPORT], chunker)
    assert [c.id for c in again.chunks] == [c.id for c in ingested.chunks]
    assert len({c.id for c in ingested.chunks}) == len(ingested.chunks)
    per_section = {}
    for c in ingested.chunks:
        assert c.ordinal == per_section.get(c.section_id, 0)
        per_section[c.section_id] = c.ordinal + 1


def test_tiktoken_loads_offline(tmp_path):
    """In a fresh process with sockets disabled and an empty cache, the chunk-budget encoding still loads."""
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network disabled in test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from ingest.tokens import TiktokenCounter\n"
        "print(TiktokenCounter('cl100k_base')('hello offline world'))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TIKTOKEN_CACHE_DIR": str(tmp_path / "tk"),
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
