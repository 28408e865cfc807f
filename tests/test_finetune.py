"""Fine-tuning on QASPER-shaped data: the training examples, a real (tiny) training run on the real model, and a
saved folder the product's ONNX engine loads."""
import json
import random

import numpy as np
import pytest

from eval.finetune import TrainConfig, passages, save, train, training_triples
from eval.qasper_data import load_qasper

PARAS = {
    "Method ::: Encoder": ["The encoder stacks six transformer layers over byte pieces.",
                           "Each layer uses rotary position embeddings and a gated feed-forward block."],
    "Data": ["We collected nine thousand court rulings from three appellate benches.",
             "Rulings were split by year so that no bench appears in both train and test."],
}


def _qa(qid, question, evidence):
    return {"question": question, "question_id": qid,
            "answers": [{"answer": {"unanswerable": False, "extractive_spans": [], "yes_no": None,
                                    "free_form_answer": "x", "evidence": evidence}}]}


@pytest.fixture(scope="module")
def papers(tmp_path_factory):
    raw = {
        "p1": {"title": "Court Rulings", "abstract": "", "qas": [
            _qa("a", "How many layers does the encoder have?", [PARAS["Method ::: Encoder"][0]]),
            _qa("b", "Which position embeddings are used?", [PARAS["Method ::: Encoder"][1]]),
            _qa("c", "How many rulings were collected?", [PARAS["Data"][0]]),
            _qa("d", "How was the data split?", [PARAS["Data"][1]]),
            _qa("e", "What is in table 3?", ["FLOAT SELECTED: Table 3"])],
               "full_text": [{"section_name": n, "paragraphs": p} for n, p in PARAS.items()]},
        "p2": {"title": "Alone", "abstract": "",
               "full_text": [{"section_name": "Only", "paragraphs": ["One paragraph."]}],
               "qas": [_qa("f", "What is there?", ["One paragraph."])]},
    }
    path = tmp_path_factory.mktemp("ft") / "qasper-train-tiny.json"
    path.write_text(json.dumps(raw))
    return load_qasper(path)


def test_each_question_gets_a_gold_passage_and_a_negative_from_its_own_paper(papers):
    texts = passages(papers[0])
    assert texts[0] == "Encoder\n" + PARAS["Method ::: Encoder"][0]  # the leaf name, as ingest prefixes a chunk
    triples = training_triples(papers, random.Random(0))
    # no text evidence (e) and a paper with nothing else to contrast (f) give no example
    assert [t.question for t in triples] == [q.question for q in papers[0].questions[:4]]
    for triple, q in zip(triples, papers[0].questions):
        gold = {texts[j] for _, j in q.relevant}
        assert triple.positive in gold and triple.negative in set(texts) - gold


def test_training_moves_the_model_and_the_saved_folder_loads_in_the_onnx_engine(papers, settings, tmp_path):
    from sentence_transformers import SentenceTransformer

    from index import Embedder

    base = settings.resolved_model_path
    model = SentenceTransformer(base, device="cpu")
    triples = training_triples(papers, random.Random(0))
    losses = train(model, triples, TrainConfig(epochs=2, learning_rate=1e-4, batch=2, warmup=0.5))
    assert len(losses) == 4 and all(np.isfinite(losses))
    out = tmp_path / "tuned"
    save(model, base, out)
    tuned = Embedder(str(out), 1, "onnx", tmp_path / "cache")  # exports the folder: it reads the pooling file
    original = Embedder(base, 1, "torch", settings.cache_dir)
    question = triples[0].question
    a, b = tuned.encode_query(question), original.encode_query(question)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-4)
    assert 0.5 < float(a @ b) < 0.99999  # moved, not replaced
    # the QASPER runner builds a library once per chunking *and model*: the tuned folder gets its own vectors
    from eval.compare import apply_overrides
    from eval.qasper import QasperLibrary

    library = QasperLibrary(papers, tmp_path / "library")
    tuned_settings = apply_overrides(settings, {"model_path": str(out)})
    base_build, tuned_build = library.build(settings, original)[0], library.build(tuned_settings, tuned)[0]
    assert tuned_build is not base_build and library.build(tuned_settings, tuned)[0] is tuned_build
    assert tuned_build.manifest["model"]["fingerprint"] != base_build.manifest["model"]["fingerprint"]
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(model, triples[:1], TrainConfig(batch=2))


def test_the_script_refuses_a_dev_file(tmp_path, capsys):
    from eval.finetune import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "qasper-dev-v0.3.json"), str(tmp_path / "out")])
    assert exc.value.code == 2 and "dev is for reporting" in capsys.readouterr().err
