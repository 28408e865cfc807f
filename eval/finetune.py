"""Fine-tune the embedding model on QASPER train questions and their evidence paragraphs (CPU, plain torch).

    python -m eval.finetune ../shared/benchmarks/qasper/qasper-train-v0.3.json OUT_DIR [--skip 60] [--epochs 1]

The first ``--skip`` papers are left out of training so they stay for choosing (``python -m
eval.qasper_sweep … --papers 60`` with ``REPORTQA_MODEL_PATH=OUT_DIR``); the dev file is never read. Each
training example is a question, one of its gold paragraphs and a hard negative from the same paper (a question
is asked filtered to its paper, so the paper's other paragraphs are what the gold one must beat); both
passages carry their section's leaf name as ingest prefixes a chunk (``embed_context=section``). The loss is
the multiple-negatives ranking loss (Henderson et al. 2017; sentence-transformers' ``MultipleNegativesRankingLoss``):
for a batch of questions q_i with positives p_i and negatives n_i, all unit length,

    loss = mean_i  −log( exp(s·q_i·p_i) / Σ_j [exp(s·q_i·p_j) + exp(s·q_i·n_j)] ),   s = 20

so every other passage of the batch is a negative too. The output is a sentence-transformers folder for
``REPORTQA_MODEL_PATH``, with the base model's pooling file (the ONNX export reads that format).
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from eval.qasper_data import SECTION_SEPARATOR, QasperPaper, load_qasper


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    learning_rate: float = 2e-5
    batch: int = 32
    scale: float = 20.0  # sentence-transformers' default for the loss above
    warmup: float = 0.1  # share of the steps with a linearly rising learning rate, then linear decay to 0
    seed: int = 0
    max_seq_length: int = 256  # the model's window (ingest keeps chunks inside it)


@dataclass(frozen=True)
class Triple:
    question: str
    positive: str
    negative: str


def passages(paper: QasperPaper) -> list[str]:
    """The paper's paragraphs in reading order, each after its section's leaf name (as a chunk is embedded)."""
    out = []
    for name, paragraphs in paper.sections:
        leaf = name.split(SECTION_SEPARATOR)[-1].strip()
        out.extend(f"{leaf}\n{p}" if leaf else p for p in paragraphs)
    return out


def training_triples(papers: list[QasperPaper], rng: random.Random) -> list[Triple]:
    """One triple per question with text evidence: a random gold paragraph, a random other one of its paper."""
    triples = []
    for paper in papers:
        texts = passages(paper)
        for q in paper.questions:
            gold = sorted(j for _, j in q.relevant)
            others = [j for j in range(len(texts)) if j not in set(gold)]
            if gold and others:
                triples.append(Triple(q.question, texts[rng.choice(gold)], texts[rng.choice(others)]))
    return triples


def train(model, triples: list[Triple], config: TrainConfig, progress=None) -> list[float]:
    """Fine-tune ``model`` (a SentenceTransformer) in place; returns each step's loss."""
    import torch

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    steps = config.epochs * (len(triples) // config.batch)
    if steps == 0:
        raise ValueError(f"{len(triples)} training examples are fewer than one batch of {config.batch}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    warmup = max(1, round(config.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps))

    def embed(texts: list[str]):
        features = model.preprocess(texts)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    model.max_seq_length = config.max_seq_length
    model.train()
    losses: list[float] = []
    order = list(triples)
    for _ in range(config.epochs):
        rng.shuffle(order)
        for start in range(0, len(order) - config.batch + 1, config.batch):
            batch = order[start:start + config.batch]
            questions = embed([t.question for t in batch])
            candidates = torch.cat([embed([t.positive for t in batch]), embed([t.negative for t in batch])])
            scores = config.scale * questions @ candidates.T
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if progress:
                progress(len(losses), steps, losses[-1])
    model.eval()
    return losses


def save(model, base_path: str, target: Path) -> None:
    """Write the model, then the base model's pooling file over the one this sentence-transformers writes
    (same mean pooling, in the format the ONNX export checks)."""
    model.save(str(target))
    shutil.copyfile(Path(base_path) / "1_Pooling" / "config.json", target / "1_Pooling" / "config.json")


def main(argv: list[str] | None = None) -> int:
    from sentence_transformers import SentenceTransformer

    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.finetune", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="a QASPER *train* file")
    parser.add_argument("out", help="folder for the fine-tuned model")
    parser.add_argument("--skip", type=int, default=60, help="leave the first N papers out (kept for choosing)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    args = parser.parse_args(argv)
    if "train" not in Path(args.file).name:
        parser.error("fine-tune on a QASPER train file: dev is for reporting")
    config = TrainConfig(args.epochs, args.learning_rate, args.batch)
    base = Settings().resolved_model_path
    triples = training_triples(load_qasper(Path(args.file))[args.skip:], random.Random(config.seed))
    print(f"{len(triples)} questions with text evidence from {args.file} (first {args.skip} papers left out)")
    started = time.perf_counter()

    def progress(step: int, steps: int, loss: float) -> None:
        if step % 10 == 0 or step == steps:
            print(f"  step {step}/{steps}  loss {loss:.3f}  ({time.perf_counter() - started:.0f}s)", flush=True)

    model = SentenceTransformer(base, device="cpu")
    try:
        train(model, triples, config, progress)
    except ValueError as exc:
        parser.error(str(exc))
    save(model, base, Path(args.out))
    print(f"saved {args.out}; use it with REPORTQA_MODEL_PATH={args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
