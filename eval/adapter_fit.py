"""Fit a question map (index/question_map.py) on train data, choose its strength on data it was not fitted on.

    python -m eval.adapter_fit --qasper qasper-train-v0.3.json --skip 60 --papers 300 \\
        --beir ../shared/benchmarks/scifact OUT_DIR [--l2 0.01,0.1,1]

**Fitted on**: QASPER train papers after the first ``--skip`` (each question against the chunks of its own
paper, as it is asked filtered to it) and SciFact train's half A (each query against the whole corpus); the
halves are fixed by a hash of the query id. **Chosen on** what the fit never saw: QASPER train's first
``--skip`` papers, SciFact train's half B and the bundled report's fit half (``eval/splits.json``). The dev
and test files are never read.

The passages are the product's own chunks and vectors (a QASPER library build, the BEIR retriever); a
question's vector is the product's (acronyms expanded, the question engine). With q the question vector, W
the map, v_j a candidate passage's vector and P the candidates that hold gold evidence, the loss of one
question is

    −log( Σ_{j∈P} exp(s·cos(W q, v_j)) / Σ_j exp(s·cos(W q, v_j)) ),   s = 20

averaged per source, the sources averaged with equal weight, plus λ‖W − I‖²_F. Each λ of ``--l2`` gives
``OUT_DIR/map-l2-λ.npz``; the table prints each beside the identity (no map) on the choosing sets.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCALE = 20.0


@dataclass(frozen=True)
class Examples:
    """Questions against candidate passages: ``groups[i]`` is question i's candidate rows of ``passages``,
    ``positives[i]`` the rows among them that hold its gold evidence."""
    name: str
    questions: np.ndarray  # (n, d)
    passages: np.ndarray  # (m, d)
    groups: list[np.ndarray]
    positives: list[np.ndarray]


def beir_half(query_id: str) -> str:
    """SciFact train's fixed halves: "a" (fit) or "b" (choose), by the query id's hash."""
    return "a" if hashlib.sha256(query_id.encode()).digest()[0] % 2 == 0 else "b"


def dense_vectors(loaded) -> np.ndarray:
    dense = getattr(loaded.backend, "dense", None)
    if dense is None or dense.kind != "flat":
        raise ValueError("the fit reads passage vectors back from an exact FAISS index")
    return dense.index.reconstruct_n(0, dense.size)


def qasper_examples(library, settings, passages, question_embedder, progress=None) -> Examples:
    from index import Query, open_retriever

    loaded, doc_of, _ = library.build(settings, passages, progress)
    retriever = open_retriever(settings, question_embedder, loaded)
    covers = library.chunk_covers(loaded, doc_of)
    rows_of: dict[str, list[int]] = {}
    for i, c in enumerate(loaded.chunks):
        rows_of.setdefault(c.document_id, []).append(i)
    questions, groups, positives = [], [], []
    for paper in library.papers:
        doc = doc_of.get(paper.id)
        for q in paper.questions:
            if doc is None or not q.scorable:
                continue
            rows = np.asarray(rows_of[doc])
            gold = rows[[bool(covers[r] & q.relevant) for r in rows]]
            if not len(gold):
                continue
            query = Query(q.question, document=doc)
            questions.append(retriever.encode(retriever.expand(query)))
            groups.append(rows)
            positives.append(gold)
    return Examples("qasper", np.stack(questions), dense_vectors(loaded), groups, positives)


def beir_examples(retriever, data, half: str) -> Examples:
    from index import Query

    position = {c.section_id: i for i, c in enumerate(retriever.index.chunks)}
    everything = np.arange(len(retriever.index.chunks))
    questions, groups, positives = [], [], []
    for qid, relevant in data.qrels.items():
        if beir_half(qid) != half:
            continue
        gold = np.asarray(sorted(position[d] for d in relevant if d in position))
        if len(gold):
            questions.append(retriever.encode(retriever.expand(Query(data.queries[qid]))))
            groups.append(everything)
            positives.append(gold)
    return Examples("beir", np.stack(questions), dense_vectors(retriever.index), groups, positives)


def report_examples(retriever, questions) -> Examples:
    """The report's answerable questions against every chunk of the build; gold: the chunks of its sections
    (the eval set is scored at section level)."""
    from index import Query

    chunks = retriever.index.chunks
    everything = np.arange(len(chunks))
    rows, groups, positives = [], [], []
    for q in questions:
        gold = np.asarray([i for i, c in enumerate(chunks) if c.section_id in set(q.sections)])
        if q.answerable and len(gold):
            rows.append(retriever.encode(retriever.expand(Query(q.question))))
            groups.append(everything)
            positives.append(gold)
    return Examples("report", np.stack(rows), dense_vectors(retriever.index), groups, positives)


def report_fold(question_id: str, folds: int = 2) -> int:
    """The fit half's fixed folds for choosing when the report is fitted on: by the question id's hash."""
    return hashlib.sha256(question_id.encode()).digest()[0] % folds


def fit_map(sources: list[Examples], l2: float, steps: int = 200, lr: float = 1e-3, seed: int = 0) -> np.ndarray:
    """W minimising the loss in the module docstring (full batch, Adam), starting from the identity."""
    import torch

    torch.manual_seed(seed)
    d = sources[0].questions.shape[1]
    weight = torch.nn.Parameter(torch.eye(d))
    optimizer = torch.optim.Adam([weight], lr=lr)
    prepared = []
    for src in sources:
        mask = np.full((len(src.groups), len(src.passages)), -np.inf, dtype=np.float32)
        gold = np.zeros_like(mask, dtype=bool)
        for i, (rows, pos) in enumerate(zip(src.groups, src.positives)):
            mask[i, rows] = 0.0
            gold[i, pos] = True
        prepared.append((torch.from_numpy(src.questions), torch.from_numpy(src.passages), torch.from_numpy(mask),
                         torch.from_numpy(gold)))
    eye = torch.eye(d)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = l2 * ((weight - eye) ** 2).sum()
        for q, v, mask, gold in prepared:
            mapped = torch.nn.functional.normalize(q @ weight.T, dim=1)
            logits = SCALE * mapped @ v.T + mask
            every = torch.logsumexp(logits, dim=1)
            good = torch.logsumexp(logits.masked_fill(~gold, -torch.inf), dim=1)
            loss = loss + (every - good).mean() / len(prepared)
        loss.backward()
        optimizer.step()
    return weight.detach().numpy().astype(np.float32)


def _choosing_scores(settings, name: str, beir, qasper_path: Path, skip: int, question_embedder, passages,
                     workdir: Path, progress, report: bool = True) -> dict[str, float]:
    """hit@1 / MRR@10 on the report's fit half (``report``), MRR@10 / hit@5 on QASPER train's first papers,
    nDCG@10 on SciFact train half B, with ``settings`` (its ``question_map`` or none)."""
    from eval.beir import rank_queries, score_beir
    from eval.harness import checked_questions, evaluate_mode
    from eval.qasper import run_qasper
    from eval.splits import select
    from index import open_retriever, question_map_for

    out = {}
    if report:
        report_retriever = open_retriever(settings, question_embedder)
        fit_half = select(checked_questions(report_retriever.index), "fit")
        scored, _ = evaluate_mode(report_retriever, fit_half, "hybrid")
        out |= {"report hit@1": scored.metrics["hit@1"], "report mrr@10": scored.metrics["mrr@10"]}
    qasper = run_qasper(qasper_path, settings, passages, question_embedder, skip, configurations={name: settings},
                        workdir=workdir, vector_store=settings.cache_dir / "eval-vectors")
    mine = qasper.systems[0].metrics
    out |= {"qasper mrr@10": mine["mrr@10"], "qasper hit@5": mine["hit@5"]}
    retriever, data = beir
    retriever.question_map = question_map_for(settings)
    run = rank_queries(retriever, data, "hybrid", [q for q in data.qrels if beir_half(q) == "b"])
    out["scifact-b ndcg@10"] = score_beir(run, {q: data.qrels[q] for q in run})["ndcg@10"]
    return out


def out_of_fold_report(sources: list[Examples], retriever, fit_half, l2: float, steps: int, fingerprint: str,
                       folds: int = 2) -> dict[str, float]:
    """The report's fit half scored out of fold: each fold with a map fitted on the other folds' questions
    (and ``sources``), so a map fitted on the report is still chosen on report questions it did not see."""
    from eval.harness import evaluate_mode
    from index import QuestionMap

    totals, count = {"report hit@1": 0.0, "report mrr@10": 0.0}, 0
    for fold in range(folds):
        train = [q for q in fit_half if report_fold(q.id, folds) != fold]
        held = [q for q in fit_half if report_fold(q.id, folds) == fold]
        retriever.question_map = QuestionMap(fit_map(sources + [report_examples(retriever, train)], l2, steps),
                                             fingerprint)
        scored, _ = evaluate_mode(retriever, held, "hybrid")
        n = sum(q.answerable for q in held)
        totals["report hit@1"] += scored.metrics["hit@1"] * n
        totals["report mrr@10"] += scored.metrics["mrr@10"] * n
        count += n
    retriever.question_map = None
    return {k: v / count for k, v in totals.items()}


def main(argv: list[str] | None = None) -> int:
    from eval.beir import beir_retriever, default_vector_store, load_beir
    from eval.qasper import CachingEmbedder, QasperLibrary
    from eval.qasper_data import load_qasper
    from index import QuestionMap, load_embedder, model_fingerprint
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.adapter_fit", description=__doc__.split("\n")[0])
    parser.add_argument("--qasper", required=True, type=Path, help="QASPER train file (a dev file is refused)")
    parser.add_argument("--skip", type=int, default=60, help="first papers kept for choosing")
    parser.add_argument("--papers", type=int, default=300, help="papers after --skip to fit on")
    parser.add_argument("--beir", required=True, type=Path, help="a BEIR folder with a train split (SciFact)")
    parser.add_argument("--l2", default="0.01,0.1,1", help="comma-separated penalty strengths λ")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--with-report", action="store_true", help="also fit on the report's fit half (chosen "
                        "on it out of fold: two folds by question id)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if "dev" in args.qasper.name or "test" in args.qasper.name:
        parser.error(f"{args.qasper.name}: fit on a train file; dev and test are for reporting")
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total or done % 500 == 0:
            print(f"  {stage}: {done}/{total} ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    base = Settings()
    question_embedder = load_embedder(base)
    passage_embedder = load_embedder(base, ingest=True)
    passages = CachingEmbedder(passage_embedder, base.cache_dir / "eval-vectors")
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="reportqa-adapter-"))
    papers = load_qasper(args.qasper, args.skip + args.papers)[args.skip:]
    qasper = qasper_examples(QasperLibrary(papers, workdir / "fit"), base, passages, question_embedder, progress)
    data = load_beir(args.beir, "train")
    beir = beir_retriever(base, question_embedder, vector_store=default_vector_store(base, args.beir))(
        data.corpus, progress)
    sources = [qasper, beir_examples(beir, data, "a")]
    print(f"fitting on {len(qasper.questions)} QASPER questions ({len(papers)} papers) and "
          f"{len(sources[1].questions)} SciFact train queries (half a)", file=sys.stderr)
    fingerprint = model_fingerprint(base.resolved_model_path)
    rows = {"identity": _choosing_scores(base, "identity", (beir, data), args.qasper, args.skip, question_embedder,
                                         passage_embedder, workdir, progress)}
    report_retriever = fit_half = None
    if args.with_report:
        from eval.harness import checked_questions
        from eval.splits import select
        from index import open_retriever

        report_retriever = open_retriever(base, question_embedder)
        fit_half = select(checked_questions(report_retriever.index), "fit")
    for l2 in [float(x) for x in args.l2.split(",")]:
        path = args.out / f"map{'-report' if args.with_report else ''}-l2-{l2:g}.npz"
        everything = sources + ([report_examples(report_retriever, fit_half)] if args.with_report else [])
        QuestionMap(fit_map(everything, l2, args.steps), fingerprint).save(path)
        config = base.model_copy(update={"question_map": str(path)})
        rows[path.name] = _choosing_scores(config, path.name, (beir, data), args.qasper, args.skip,
                                           question_embedder, passage_embedder, workdir, progress,
                                           report=not args.with_report)
        if args.with_report:
            rows[path.name] |= out_of_fold_report(sources, report_retriever, fit_half, l2, args.steps, fingerprint)
        print(f"  {path.name}: {rows[path.name]}", file=sys.stderr, flush=True)
    metrics = list(rows["identity"])
    print(f"{'map':<26}" + "".join(f"{m:>20}" for m in metrics))
    for name, scores in rows.items():
        print(f"{name:<26}" + "".join(f"{scores[m]:>20.4f}" for m in metrics))
    print(f"{time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
