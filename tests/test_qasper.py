"""The QASPER runner on a hand-made QASPER-format file: loading, evidence resolution, Markdown rendering,
the real ingest + index pipeline, chunk-to-paragraph overlap, both systems' ranks; evidence metrics and
the peer's fusion on hand-computed cases."""
import json
import math
import subprocess
import sys

import pytest

from eval.evidence import mean_metrics, ndcg_at, question_metrics, recall_at
from eval.peer import rrf
from eval.qasper_data import QasperInputError, QasperQuestion, annotator_agreement, load_qasper, render_markdown

RETINA = ("The retinal ganglion classifier was trained on forty thousand fundus photographs collected at "
          "three ophthalmology clinics in Lisbon.")
LATENCY = "Inference latency on a single laptop processor stayed under eleven milliseconds per image."
GLACIER = ("Glacier melt sensors report meltwater discharge every ten minutes over a long range radio link. "
           "Each station runs on a solar panel and a lead acid battery.")
FLOAT = "FLOAT SELECTED: Table 2: Accuracy per clinic."


def answer(evidence, spans=(), unanswerable=False, yes_no=None, free=""):
    return {"answer": {"unanswerable": unanswerable, "extractive_spans": list(spans), "yes_no": yes_no,
                       "free_form_answer": free, "evidence": list(evidence)}}


TINY = {
    "2101.00001": {
        "title": "Screening Eyes With Small Networks",
        "abstract": "We screen eyes.",
        "full_text": [
            {"section_name": "Introduction", "paragraphs": ["Eye screening matters for early diagnosis of disease."]},
            {"section_name": "Data ::: Collection", "paragraphs": [RETINA]},
            {"section_name": "Data ::: Speed", "paragraphs": [LATENCY, "We also\nmeasured memory use."]},
        ],
        "qas": [
            {"question": "How many fundus photographs were collected at the Lisbon clinics?", "question_id": "q-photos",
             "answers": [answer([RETINA], spans=["forty thousand"]), answer([RETINA, FLOAT], free="40k")]},
            {"question": "Is inference latency under eleven milliseconds on a laptop processor?",
             "question_id": "q-latency", "answers": [answer([LATENCY], yes_no=True)]},
            {"question": "What is the per-clinic accuracy?", "question_id": "q-float",
             "answers": [answer([FLOAT], free="see table"), answer(["Collection"], free="table")]},
            {"question": "Which hospital funded the study?", "question_id": "q-unans",
             "answers": [answer([], unanswerable=True), answer([], unanswerable=True)]},
            {"question": "What else?", "question_id": "q-missing", "answers": [answer(["text in no paragraph"], free="x")]},
        ],
    },
    "2101.00002": {
        "title": "Sensing Glaciers",
        "abstract": "Sensors on ice.",
        "full_text": [{"section_name": "Stations", "paragraphs": [GLACIER]}],
        "qas": [{"question": "How often do the glacier sensors report meltwater discharge?", "question_id": "q-glacier",
                 "answers": [answer([GLACIER], spans=["every ten minutes"])]}],
    },
}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("qasper") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def test_load_resolves_evidence_and_types(tiny_file):
    papers = load_qasper(tiny_file)
    assert [p.id for p in papers] == ["2101.00001", "2101.00002"]
    q = {q.id: q for p in papers for q in p.questions}
    assert q["q-photos"].type == "extractive"  # a tie (extractive, abstractive): the first annotator's
    assert q["q-photos"].evidence == (frozenset({("2101.00001", 1)}),) * 2
    assert q["q-latency"].type == "yes-no" and q["q-latency"].relevant == {("2101.00001", 2)}
    assert q["q-unans"].unanswerable and q["q-unans"].type == "unanswerable" and not q["q-unans"].scorable
    assert not q["q-float"].scorable and not q["q-missing"].scorable and not q["q-float"].unanswerable
    ev = papers[0].evidence
    assert (ev.paragraphs, ev.float_selected, ev.section_names, ev.not_found) == (3, 2, 1, 1)
    assert ev.answerable_without_text_evidence == 2
    assert len(load_qasper(tiny_file, papers=1)) == 1
    assert q["q-unans"].annotator_unanswerable == (True, True) and q["q-photos"].annotator_unanswerable == (False,) * 2


def test_annotator_agreement_leaves_one_annotator_out(tiny_file):
    tiny = annotator_agreement([q for p in load_qasper(tiny_file) for q in p.questions])
    assert (tiny.judgements, tiny.unanswerable, tiny.rejected, tiny.kept) == (6, 2, 1.0, 1.0)
    marks = [(True, False), (True, True, False), (True, True), (False, False), (True,)]  # the last: one annotator
    qs = [QasperQuestion(f"q{i}", "p", "?", "extractive", all(m), (), m) for i, m in enumerate(marks)]
    a = annotator_agreement(qs)
    # label unanswerable: (T,F) leaving out F, (T,T,F) leaving out F, (T,T) twice -> 4, of which 2 marked so;
    # label answerable: (T,F) leaving out T, (T,T,F) leaving out either T, (F,F) twice -> 5, of which 2 answered
    assert (a.judgements, a.unanswerable, a.rejected, a.kept) == (9, 4, 0.5, 0.4)


def test_bad_files_are_refused_with_a_reason(tmp_path):
    with pytest.raises(QasperInputError, match="no such file"):
        load_qasper(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(QasperInputError, match="not a readable JSON"):
        load_qasper(tmp_path / "bad.json")
    (tmp_path / "shape.json").write_text(json.dumps({"x": {"title": "t"}}))
    with pytest.raises(QasperInputError, match="not in the QASPER shape"):
        load_qasper(tmp_path / "shape.json")


def test_markdown_nests_sections_and_keeps_paragraph_spans(tiny_file):
    paper = load_qasper(tiny_file)[0]
    rendered = render_markdown(paper)
    lines = rendered.text.splitlines()
    assert lines[0] == "# Screening Eyes With Small Networks"
    assert [ln for ln in lines if ln.startswith("#")] == [
        "# Screening Eyes With Small Networks", "## Introduction", "## Data", "### Collection", "### Speed"]
    for (a, b), p in zip(rendered.spans, paper.paragraphs):
        assert rendered.text[a:b] == p.replace("\n", " ")


@pytest.fixture(scope="module")
def tiny_report(tiny_file, settings, passage_embedder, embedder, tmp_path_factory):
    from eval.qasper import run_qasper

    return run_qasper(tiny_file, settings, passage_embedder, embedder, with_library=True,
                      workdir=tmp_path_factory.mktemp("work"))


def test_real_pipeline_finds_the_evidence_for_both_systems(tiny_report):
    ours, peer = tiny_report.systems
    assert (ours.name, peer.name) == ("ReportQA", "peer")
    assert tiny_report.scorable == 3 and tiny_report.all_unanswerable == 1 and tiny_report.not_ingested == []
    for system in (ours, peer):
        assert system.outcomes["q-photos"].rank == 1, system.name
        assert system.outcomes["q-glacier"].rank == 1, system.name
        assert system.outcomes["q-glacier"].right_paper_first, system.name
        assert system.metrics["n"] == 3
    assert ours.no_answer["unanswerable"] == 1 and ours.no_answer["answerable"] == 5
    assert peer.no_answer["answerable_kept"] == 1.0 and ours.outcomes["q-photos"].answerable is not None
    assert set(ours.by_type) == {"extractive", "yes-no"}
    assert ours.library and "right_paper_first" in ours.library


def test_chunks_overlap_exactly_the_paragraphs_they_hold(tiny_file, settings, passage_embedder, tmp_path):
    import re

    from eval.qasper import QasperLibrary

    papers = load_qasper(tiny_file)
    library = QasperLibrary(papers, tmp_path)
    loaded, doc_of, failed = library.build(settings, passage_embedder)
    assert failed == [] and set(doc_of) == {p.id for p in papers}
    covers = library.chunk_covers(loaded, doc_of)
    paragraphs = {(p.id, j): re.sub(r"\s+", " ", text) for p in papers for j, text in enumerate(p.paragraphs)}
    for chunk, units in zip(loaded.chunks, covers):
        assert units, chunk.text
        assert chunk.text in " ".join(paragraphs[u] for u in sorted(units, key=lambda u: u[1]))
    assert set().union(*covers) == set(paragraphs)  # no paragraph lost on the way


def test_evidence_metrics_on_hand_computed_cases():
    r = frozenset({"a", "b"})
    covers = [frozenset(), frozenset({"a"}), frozenset({"a"}), frozenset({"b", "x"})]
    m = question_metrics(covers, [frozenset({"a"}), frozenset({"a", "b"})])
    assert m["hit@1"] == 0.0 and m["hit@5"] == 1.0 and m["mrr@10"] == 0.5
    assert m["recall@5"] == 1.0  # both annotators fully covered by the top 5
    # gains at ranks 2 and 4 (rank 3 repeats "a"); ideal: ranks 1 and 2
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert recall_at([frozenset({"a"})], [frozenset({"a", "b"}), frozenset({"c"})], 5) == 0.5
    assert ndcg_at([frozenset({"a", "b"})], r, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert mean_metrics([m, question_metrics([], [r])])["mrr@10"] == 0.25


def test_rrf_on_a_hand_computed_case():
    # 1: 1/61 + 1/62, 2: 1/62 + 1/61 (tie, smaller id first), 3: 1/63, 4: 1/63 (tie)
    assert rrf([[1, 2, 3], [2, 1, 4]]) == [1, 2, 3, 4]
    assert rrf([[5], [6, 5]], k=1) == [5, 6]  # 5: 1/2 + 1/3 > 6: 1/2


def test_cli_refuses_a_missing_file_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "service.cli", "eval", "--qasper", str(tmp_path / "nope.json")],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 3 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_vector_store_keeps_vectors_between_runs(torch_embedder, tmp_path):
    from eval.qasper import CachingEmbedder

    texts = ["glacier melt sensors", "fundus photographs in Lisbon", "glacier melt sensors"]
    first = CachingEmbedder(torch_embedder, tmp_path).encode(texts)
    again = CachingEmbedder(torch_embedder, tmp_path)
    assert len(again._stored) == 2  # two distinct texts were written
    assert (again.encode(texts[:2]) == first[:2]).all() and (first[0] == first[2]).all()
    assert list(tmp_path.glob("*.tmp*")) == []  # written atomically, no leftovers


def test_dense_feedback_prototype_keeps_the_verdict_and_moves_the_ranking(retriever):
    from eval.prototypes import DenseFeedback, prototype_factory
    from index import Query

    query = Query("How is critical information infrastructure protected?", k=10)
    plain, fed = retriever.search(query), DenseFeedback(retriever, beta=0.5, m=3).search(query)
    assert fed.answerable == plain.answerable and len(fed.hits) == 10
    assert fed.hits[0].chunk.section_id == plain.hits[0].chunk.section_id
    assert [h.score for h in fed.hits] != [h.score for h in plain.hits]
    assert prototype_factory("dense-feedback:beta=0.0,m=2")(retriever).search(query).hits == plain.hits
    with pytest.raises(ValueError, match="unknown prototype"):
        prototype_factory("rerank")


def test_cli_runs_qasper_and_an_a_b_on_it(tiny_file, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "service.cli", "eval", "--quiet", *args], capture_output=True,
                              text=True, timeout=600)

    out = run("--qasper", str(tiny_file), "--library", "--json", str(tmp_path / "q.json"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "filtered to the paper (3 questions)" in out.stdout and "whole library (2 papers)" in out.stdout
    assert [s["name"] for s in json.loads((tmp_path / "q.json").read_text())["systems"]] == ["ReportQA", "peer"]
    (tmp_path / "base.json").write_text("{}")
    (tmp_path / "flat.json").write_text(json.dumps({"weight_sentence": 0}))
    out = run("--qasper", str(tiny_file), "--compare", str(tmp_path / "base.json"), str(tmp_path / "flat.json"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "sign test" in out.stdout and "base" in out.stdout and "flat" in out.stdout
    (tmp_path / "bad.json").write_text(json.dumps({"chunk_tokens": 3}))
    out = run("--compare", str(tmp_path / "base.json"), str(tmp_path / "bad.json"))
    assert out.returncode == 3 and "bad setting chunk_tokens" in out.stderr and "Traceback" not in out.stderr


def test_each_configuration_encodes_with_its_own_model_and_the_peer_with_minilm(settings, embedder, passage_embedder,
                                                                                  tmp_path):
    """A compare of ``model_path`` (a fine-tuned folder) must not score that configuration with the run's vectors."""
    import shutil
    from pathlib import Path

    from eval.compare import apply_overrides
    from eval.qasper import CachingEmbedder, ModelEmbedders

    copy = tmp_path / "model"
    shutil.copytree(settings.resolved_model_path, copy)
    models = ModelEmbedders(CachingEmbedder(passage_embedder), embedder, None)
    passages, questions = models.for_config(settings)
    assert passages.model_path == passage_embedder.model_path and questions is embedder
    other = apply_overrides(settings, {"model_path": str(copy)})  # as `--compare` applies an overrides file
    passages, questions = models.for_config(other)
    assert Path(passages.model_path) == copy.resolve() and Path(questions.model_path) == copy.resolve()
    assert models.for_config(other)[0] is passages  # loaded once per model
    bundled = Path(settings.resolved_model_path).resolve()
    assert Path(models.peer().model_path) == bundled
    tuned_run = ModelEmbedders(passages, questions, None)  # a run whose own model is the other folder
    assert Path(tuned_run.peer().model_path) == bundled
