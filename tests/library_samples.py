"""Small generated reports and a server helper shared by the library tests (service and page)."""
from __future__ import annotations

import hashlib

from conftest import LiveServer, free_port


def serve(settings, embedder, passage_embedder, **overrides):
    """A real server over ``settings`` changed by ``overrides``; its state is kept on the server object."""
    from service.app import create_app
    from service.state import load_state

    own = settings.model_copy(update={"port": free_port(), **overrides})
    state = load_state(own, embedder)
    state.ingest_embedder = passage_embedder  # the session's passage encoder, not a second model load
    live = LiveServer(create_app(state), own.port).start()
    live.state, live.settings = state, own
    return live


def report(title: str, sections: list[tuple[str, str]]) -> bytes:
    """A small Markdown report: a title and numbered sections of a few sentences each."""
    parts = [f"# {title}\n"]
    for heading, body in sections:
        parts.append(f"## {heading}\n\n{body}\n")
    return "\n".join(parts).encode()


def pdf_with_blank_pages(title: str, sentences: list[str], blank: set[int]) -> bytes:
    """A PDF of one page per sentence, where the pages numbered in ``blank`` (1-based) carry no text at
    all, as a scanned page or a font embedded without a text map reads."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for page, sentence in enumerate(sentences, 1):
        pdf.add_page()
        if page not in blank:
            pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=f"{title}\n\n{sentence}")
    return bytes(pdf.output())


RIVER = [
    ("1 Monitoring network", "The agency sampled forty river stations every month. Each station recorded "
     "temperature, dissolved oxygen and turbidity. Samples were analysed in the central laboratory."),
    ("2 Nitrate levels", "Nitrate concentrations fell in most catchments after fertiliser limits. The "
     "largest fall was measured downstream of the dairy farms. Winter peaks remained above the target."),
    ("3 Phosphate levels", "Phosphate from sewage works stayed high in slow rivers. Algal blooms followed "
     "warm weeks in late summer. Two treatment plants were upgraded to remove phosphorus."),
    ("4 Outlook", "The agency will add sensors that report every hour. Farmers and water companies agreed "
     "on a joint plan for the next five years."),
]
# The next edition: section 2 rewritten, section 3 removed, a section 5 added; 1 and 4 as they were.
RIVER_NEXT = [
    RIVER[0],
    ("2 Nitrate levels", "Nitrate readings rose again after a wet spring washed soil into the streams. "
     "Catchments with buffer strips along the banks kept the lowest readings. The target was missed."),
    RIVER[3],
    ("5 Groundwater", "Boreholes near the estuary showed saline intrusion during the drought. Wells inland "
     "stayed fresh. Abstraction licences will be reviewed."),
]
TRANSIT = [
    ("1 Bus network", "The city redesigned its bus routes around twelve frequent corridors. Night buses "
     "now run on every corridor at weekends."),
    ("2 Cycling", "Protected cycle lanes were built on the ring road. Bicycle counts doubled on the bridge "
     "lanes within a year."),
]


def edition_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def pdf_report(path, title: str, sections: list[tuple[str, str]]) -> None:
    """A PDF of ``sections`` one per page after a front page, printed page labels i, then 1, 2, ...
    (the front matter numbered in roman, as real reports are), with bookmarks."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.set_page_label("r")
    pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=title)
    pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text="Prepared for the regional council.")
    for n, (heading, body) in enumerate(sections):
        pdf.add_page()
        if n == 0:
            pdf.set_page_label("D", label_start=1)
        pdf.start_section(heading, level=0)
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=heading)
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=body)
    pdf.output(str(path))


def check_precision_build(own, build_dir, documents, fingerprint: str, precision: str):
    """A build made with ``own`` settings records ``precision``, is current for them and stale (one reason:
    the precision) for the same settings with fp32 ONNX passages, which are returned."""
    import json
    from pathlib import Path

    from index import stale_reasons
    from index.store import BuildSettings
    from settings import EncoderEngine

    manifest = json.loads((Path(build_dir) / "manifest.json").read_text())
    assert manifest["build_settings"]["passage_precision"] == precision
    index_dir = Path(own.index_dir)
    assert stale_reasons(index_dir, documents, BuildSettings.from_settings(own), fingerprint) == []
    fp32 = own.model_copy(update={"ingest_encoder_backend": EncoderEngine.ONNX})
    reasons = stale_reasons(index_dir, documents, BuildSettings.from_settings(fp32), fingerprint)
    assert len(reasons) == 1 and "passage_precision" in reasons[0], reasons
    return fp32, manifest
