"""Ingest-time embedding speed: chunks/s with their sentence vectors, per engine x sentence-vector mode x
batch size (a section of ``reportqa bench --suite encoders``).

    reportqa bench --suite encoders --only-passages                  # this table only
    reportqa bench --suite encoders --passage-papers 8 --passage-repeats 3

The sample is fixed: the bundled report's chunks plus the first ``papers`` papers of the QASPER *train*
file (rendered and chunked as `reportqa eval --qasper` does), chunked with the configured settings. Each
configuration runs in a fresh process (torch's and ONNX Runtime's thread pools never share one, and the
peak RSS is that configuration's own); the time is what a build spends in
:func:`index.embed.sentences.embed_chunks` (chunk vectors + sentence vectors), medians over
``repeats`` passes after a warm-up. ``onnx-int8`` rows are int8 passages (``REPORTQA_INGEST_ENCODER_BACKEND=
onnx-int8``; their quality is in the README, "Encoder backends"). "unbucketed" feeds batches in document order instead of longest first.
The machine is shared: the load average and other processes' CPU share are printed beside each row.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eval.bench.procstats import cpu_sample, loadavg, others_cpu_share, peak_mb
from eval.bench.runner import SectionResult
from eval.progress import Log
from settings import SHARED_DIR, EncoderEngine, SentenceVectorMode

ROOT = Path(__file__).resolve().parents[2]
QASPER_TRAIN = SHARED_DIR / "benchmarks" / "qasper" / "qasper-train-v0.3.json"


@dataclass(frozen=True)
class PassageConfig:
    engine: str
    mode: str
    batch: int
    bucketed: bool = True

    @property
    def label(self) -> str:
        return f"{self.engine}/{self.mode}/{self.batch}" + ("" if self.bucketed else "/unbucketed")


# The main grid (engine x mode at the default batch), then batch sizes and bucketing for ONNX, then int8
# for comparison.
DEFAULT_CONFIGS = (
    PassageConfig(EncoderEngine.TORCH, SentenceVectorMode.SEPARATE, 32),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.SEPARATE, 32),
    PassageConfig(EncoderEngine.TORCH, SentenceVectorMode.POOLED, 32),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.POOLED, 32),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.SEPARATE, 16),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.SEPARATE, 64),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.SEPARATE, 128),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.SEPARATE, 32, bucketed=False),
    PassageConfig(EncoderEngine.ONNX, SentenceVectorMode.POOLED, 64),
    PassageConfig(EncoderEngine.ONNX_INT8, SentenceVectorMode.SEPARATE, 32),
)


def parse_configs(text: str) -> tuple[PassageConfig, ...]:
    """``engine/mode/batch[/unbucketed],...`` -> configurations (ValueError with the bad item)."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        parts = item.split("/")
        try:
            if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "unbucketed"):
                raise ValueError
            out.append(PassageConfig(EncoderEngine(parts[0]), SentenceVectorMode(parts[1]), int(parts[2]),
                                     len(parts) == 3))
        except ValueError:
            raise ValueError(f"passage config {item!r} is not ENGINE/MODE/BATCH[/unbucketed] with engine one of "
                             f"{', '.join(EncoderEngine)} and mode one of {', '.join(SentenceVectorMode)}") from None
    return tuple(out)


def sample_chunks(papers: int, qasper_file: Path = QASPER_TRAIN) -> list:
    """The bundled report's chunks plus the first ``papers`` QASPER train papers' chunks."""
    from eval.qasper_data import load_qasper, render_markdown
    from ingest import Chunker, ingest_paths
    from settings import BUNDLED_REPORT, Settings

    paths = [BUNDLED_REPORT]
    folder = Path(tempfile.mkdtemp(prefix="bench-passages-"))
    for paper in load_qasper(qasper_file, papers) if papers else []:
        path = folder / f"{paper.id}.md"
        path.write_text(render_markdown(paper).text)
        paths.append(path)
    return list(ingest_paths(paths, Chunker.from_settings(Settings())).chunks)


# ------------------------------------------------------------------ one configuration, in its own process


def _unbucketed(embedder, chunks, batch: int, mode: str) -> None:
    """embed_chunks' work with batches in document order (what bucketing saves)."""
    from index.embed.sentences import span_vector, sentence_spans

    if mode == SentenceVectorMode.SEPARATE:
        sentences = [c.text[s.text_start:s.text_end] for c in chunks for s in c.sentences]
        for texts in ([c.embed_text for c in chunks], sentences):
            for start in range(0, len(texts), batch):
                embedder.encoder.encode_batch(texts[start:start + batch])
        return
    for start in range(0, len(chunks), batch):
        part = chunks[start:start + batch]
        _, states = embedder.encoder.encode_batch_tokens([c.embed_text for c in part])
        for c, state in zip(part, states):
            for span in sentence_spans(c):
                span_vector(state, c.embed_text, span)


def measure(config: PassageConfig, chunks: list, repeats: int) -> dict:
    from index.embed import Embedder
    from index.embed.sentences import embed_chunks
    from settings import Settings

    settings = Settings()
    started = time.perf_counter()
    embedder = Embedder(settings.resolved_model_path, settings.encoder_threads, config.engine, settings.cache_dir)
    load_s = time.perf_counter() - started
    embed_chunks(embedder, chunks[:2 * config.batch], config.batch, config.mode)  # warm-up: kernels, allocations
    load_before, cpu0, runs, alone = loadavg(), cpu_sample(), [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        if config.bucketed:
            alone = embed_chunks(embedder, chunks, config.batch, config.mode).encoded_alone
        else:
            _unbucketed(embedder, chunks, config.batch, config.mode)
        runs.append(time.perf_counter() - t)
    return {"config": asdict(config), "load_s": load_s, "runs_s": runs, "chunks": len(chunks),
            "sentences": sum(len(c.sentences) for c in chunks), "encoded_alone": alone, "peak_rss_mb": peak_mb(),
            "others_cpu_share": others_cpu_share(cpu0, cpu_sample()), "loadavg_before": load_before,
            "loadavg_after": loadavg()}


def _run_child(config: PassageConfig, chunks_file: Path, repeats: int, work: Path) -> dict:
    out = work / f"passages-{config.label.replace('/', '-')}-{time.monotonic_ns()}.json"
    cmd = ["nice", "-n", "10", sys.executable, "-m", "eval.bench.passage_speed", "--child", json.dumps(asdict(config)),
           "--repeats", str(repeats), "--chunks", str(chunks_file), "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads(out.read_text())


def passage_table(results: list[dict]) -> str:
    base = next((r for r in results if r["config"]["engine"] == EncoderEngine.TORCH
                 and r["config"]["mode"] == SentenceVectorMode.SEPARATE and r["config"]["bucketed"]), None)
    base_rate = base["chunks"] / np.median(base["runs_s"]) if base else None
    lines = ["| engine | sentence vectors | batch | bucketed | chunks/s median (min-max) | x torch/separate "
             "| s per pass | sentences encoded alone | peak RSS MiB | 1-min load before / after | others' CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c, runs = r["config"], np.asarray(r["runs_s"])
        rate = r["chunks"] / np.median(runs)
        engine = c["engine"]
        share = r["others_cpu_share"]
        lines.append(
            f"| {engine} | {c['mode']} | {c['batch']} | {'yes' if c['bucketed'] else 'no'} "
            f"| {rate:.1f} ({r['chunks'] / runs.max():.1f}-{r['chunks'] / runs.min():.1f}) "
            f"| {f'{rate / base_rate:.2f}' if base_rate else 'n/a'} | {np.median(runs):.2f} | "
            f"{r['encoded_alone'] if c['bucketed'] else '-'} | {r['peak_rss_mb']:.0f} "
            f"| {r['loadavg_before'][0] if r['loadavg_before'] else 'n/a'} / "
            f"{r['loadavg_after'][0] if r['loadavg_after'] else 'n/a'} "
            f"| {'n/a' if share is None else f'{share:.0%}'} |")
    return "\n".join(lines)


def passages_section(configs: tuple[PassageConfig, ...], papers: int, repeats: int, work: Path,
                     log: Log) -> SectionResult:
    from index.store import _chunk_to_json  # the build's own record form, so the child rebuilds exact chunks

    chunks = sample_chunks(papers)
    chunks_file = work / "passage-chunks.jsonl"
    chunks_file.write_text("".join(json.dumps(_chunk_to_json(c), ensure_ascii=False) + "\n" for c in chunks))
    results = []
    for i, config in enumerate(configs):
        log(f"passages {i + 1}/{len(configs)}: {config.label} ({len(chunks)} chunks x {repeats}; "
            f"load average {loadavg()})")
        results.append(_run_child(config, chunks_file, repeats, work))
    sentences = results[0]["sentences"] if results else 0
    text = (f"ingest embedding speed: {len(chunks)} chunks ({sentences} sentences) = the bundled report + the "
            f"first {papers} QASPER train papers; chunk + sentence vectors as a build makes them; median of "
            f"{repeats} passes per configuration, each in a fresh `nice -n 10` process, one run\n\n"
            + passage_table(results))
    return SectionResult("passages", {"passages": results, "chunks": len(chunks), "sentences": sentences}, text)


def main(argv: list[str] | None = None) -> int:
    """The measuring child: one configuration in this process."""
    p = argparse.ArgumentParser(description="one passage-embedding configuration measured in this process "
                                            "(a child of `reportqa bench --suite encoders`)")
    p.add_argument("--child", required=True, help="the configuration as JSON")
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    from index import configure_runtime
    from index.store import _chunk_from_json

    configure_runtime()  # an entry point: the model libraries' switches before they load
    config = PassageConfig(**json.loads(args.child))
    chunks = [_chunk_from_json(json.loads(line)) for line in Path(args.chunks).read_text().splitlines()]
    Path(args.out).write_text(json.dumps(measure(config, chunks, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
