"""`vitalstudy accentuations`: metrics (stage 3) and figure (stage 6) of a run's feature accentuations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage-config", required=True,
                        help="JSON with seed, accentuations (targets.accentuations), metrics.bootstrap, "
                             "generate.accentuation.feature_layer")
    parser.add_argument("--run-dir", required=True, help="results/<run>")
    parser.add_argument("--model", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, required=True)
    parser.add_argument("--metrics", required=True, help="long-format CSV to write")
    parser.add_argument("--figure", required=True, help="PNG to write (seed | image and transparency per method)")


def run(args: argparse.Namespace) -> int:
    from vitalstudy.data.classes import classes_for
    from vitalstudy.metrics.accentuation import accentuation_rows, draw_accentuations, references_of
    from vitalstudy.metrics.longformat import write_rows
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.provenance import Provenance
    from vitalstudy.references.targets import accentuation_targets, parse_target

    cfg = json.loads(args.stage_config)
    entries = cfg.get("accentuations", [])
    ids = accentuation_targets({"targets": {"accentuations": entries}}, args.model)
    spec = get_spec(args.model)
    targets = [parse_target(i, accentuations=entries, classes=classes_for(spec)) for i in ids]
    model = load_model(args.model, weights=cfg.get("models", {}).get("weights", {}).get(args.model))
    prov = Provenance("accentuation-metrics", {"model": args.model, "methods": args.methods, "seeds": args.seeds,
                                               "accentuations": entries}, seed=cfg.get("seed"))
    references = references_of(args.run_dir, args.model, targets)
    rows = accentuation_rows(args.run_dir, args.model, model, spec, args.methods, targets, args.seeds, references,
                             cfg.get("feature_layer"), cfg.get("bootstrap", {"iterations": 1000, "confidence": 0.95}),
                             int(cfg.get("seed", 0)))
    write_rows(args.metrics, rows)
    draw_accentuations(args.run_dir, args.model, spec, args.methods, targets, min(args.seeds), Path(args.figure))
    for path in (args.metrics, args.figure):
        prov.add_output(path)
    prov.write(Path(args.metrics).with_suffix(".provenance.json"))
    return 0
