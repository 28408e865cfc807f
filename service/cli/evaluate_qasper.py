"""``reportqa eval --qasper FILE`` and ``reportqa eval --compare A.json B.json``: the runners live in eval/."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from service.cli.common import EXIT_INPUT, CliError, Progress


def run_qasper_or_compare(args, settings) -> int:
    from eval.beir import default_vector_store
    from eval.compare import (BadOverrides, apply_overrides, format_comparison, load_overrides, run_beir_compare,
                              run_qasper_compare, run_report_compare)
    from eval.qasper import QasperInputError, format_report, run_qasper
    from eval.splits import DEFAULT_SPLIT, SplitError
    from index import load_embedder

    progress, out = Progress(args.quiet), {}
    try:
        names = [Path(f).stem for f in args.compare or ()]
        names = names if len(set(names)) == 2 else ["A", "B"]
        configs = {n: apply_overrides(settings, load_overrides(Path(f)), f)
                   for n, f in zip(names, args.compare)} if args.compare else None
        passages, questions = load_embedder(settings, ingest=True), load_embedder(settings)
        store = Path(args.vector_store) if args.vector_store else None
        if args.qasper and configs:
            report, comparison = run_qasper_compare(Path(args.qasper), configs, passages, questions, args.papers,
                                                    args.library, progress, store)
            print(format_report(report) + "\n\nA/B (filtered to the paper):\n" + format_comparison(comparison))
            out = {"qasper": report.to_json(), "compare": asdict(comparison)}
        elif args.beir and configs:
            folder = Path(args.beir)
            comparison = run_beir_compare(folder, configs, questions, args.split or "test",
                                          store or default_vector_store(settings, folder), progress)
            print(f"BEIR {folder.name}, {args.split or 'test'} split, hybrid\n" + format_comparison(comparison))
            out = asdict(comparison)
        elif args.qasper:
            report = run_qasper(Path(args.qasper), settings, passages, questions, args.papers, args.library,
                                progress=progress, vector_store=store)
            print(format_report(report))
            out = report.to_json()
        else:
            split = args.split or DEFAULT_SPLIT
            comparison = run_report_compare(configs, passages, questions, split, progress)
            print(f"eval set, {split} split, section level\n" + format_comparison(comparison))
            out = asdict(comparison)
    except (QasperInputError, BadOverrides, SplitError) as exc:
        raise CliError(str(exc), EXIT_INPUT) from None
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0
