"""`vitalstudy metrics | accentuations`: stage 3 from the command line.

- `metrics measure` runs the metrics of one target model (each metric writes its own CSV, so one can be
  re-run alone with --metrics) and a provenance record; `metrics tables` gathers every model's rows into
  the paper-shaped tables;
- `accentuations`: metrics (stage 3) and figure (stage 6) of a run's feature accentuations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from vitalstudy.io import atomic_path
from vitalstudy.metrics.longformat import read_rows, write_rows
from vitalstudy.provenance import Provenance

# metric -> what it measures; each writes <out-dir>/<metric>.csv (long format; tsne: coordinates)
METRICS = {
    "accuracy": "target-model and held-out top-1 accuracy of class FVs (+ predictions.csv per image)",
    "clip": "CLIP zero-shot top-1/top-5 of class FVs and of correctly classified natural images",
    "fid": "FID and KID of class FVs vs natural images of the same classes",
    "cosy": "AUC and MAD of inner-neuron FVs (control: the neuron's stage-1 references)",
    "path_similarity": "per-layer rank correlation of FV activations with natural images",
    "tsne": "t-SNE coordinates of penultimate features (natural images and class FVs)",
}


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stage-config", required=True,
                        help="JSON with the config keys this stage reads: run, seed, device, models, targets, "
                             "references, generate, metrics")
    common.add_argument("--provenance", required=True, help="provenance JSON to write")
    measure = sub.add_parser("measure", parents=[common], help="metrics of one target model's FVs",
                             description="; ".join(f"{k}: {v}" for k, v in METRICS.items()))
    measure.add_argument("--model", required=True, help="target model whose FVs are measured")
    measure.add_argument("--index", required=True, help="the run's 00_index/images.csv")
    measure.add_argument("--fv-root", required=True, help="the run's 02_fv folder")
    measure.add_argument("--references-dir", required=True, help="the model's 01_references folder")
    measure.add_argument("--out-dir", required=True, help="folder for <metric>.csv")
    measure.add_argument("--metrics", nargs="+", choices=list(METRICS), default=list(METRICS))
    tables = sub.add_parser("tables", parents=[common], help="paper-shaped tables with the paper's numbers beside ours")
    tables.add_argument("--inputs", nargs="+", required=True, help="long-format metric CSVs")
    tables.add_argument("--out-long", required=True, help="all rows in one CSV")
    tables.add_argument("--out-dir", required=True, help="folder for table<k>.{csv,md,tex}")


def _write_frame(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _measure(args, cfg: dict, prov: Provenance) -> list[Path]:
    from vitalstudy.metrics import jobs

    ctx = jobs.Context(cfg, args.model, args.index, args.fv_root)
    prov.record["device"] = str(ctx.device)
    prov.add_input(args.index)
    out = Path(args.out_dir)
    written = []
    for metric in args.metrics:
        path = out / f"{metric}.csv"
        if metric == "accuracy":
            rows, predictions = jobs.accuracy_job(ctx)
            _write_frame(out / "predictions.csv", predictions)
            written.append(out / "predictions.csv")
        elif metric == "tsne":
            _write_frame(path, jobs.tsne_job(ctx))
            written.append(path)
            continue
        elif metric == "cosy":
            rows = jobs.cosy_job(ctx, args.references_dir)
        else:
            rows = {"clip": jobs.clip_job, "fid": jobs.fid_job, "path_similarity": jobs.path_similarity_job}[metric](ctx)
        write_rows(path, rows)
        written.append(path)
    for path in ctx.files_read:
        prov.add_input(path)
    return written


def _tables(args, cfg: dict, prov: Provenance) -> list[Path]:
    from vitalstudy.metrics import tables

    rows = read_rows(args.inputs)
    for path in args.inputs:
        prov.add_input(path)
    write_rows(args.out_long, rows.to_dict("records"))
    written = [Path(args.out_long)]
    paper = tables.paper_numbers()
    for spec in tables.table_specs(cfg["metrics"]["fid"]["feature_model"]):
        written += tables.write_table(spec, tables.build_table(spec, rows, paper, cfg), cfg, args.out_dir)
    return written


def run_metrics(args: argparse.Namespace) -> int:
    cfg = json.loads(args.stage_config)
    prov = Provenance("metrics", {"action": args.action, "model": getattr(args, "model", None),
                                  "metrics": getattr(args, "metrics", None), "config": cfg}, seed=cfg["seed"])
    for path in _tables(args, cfg, prov) if args.action == "tables" else _measure(args, cfg, prov):
        prov.add_output(path)
    prov.write(args.provenance)
    return 0


def add_accentuations_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage-config", required=True,
                        help="JSON with seed, accentuations (targets.accentuations), metrics.bootstrap, "
                             "generate.accentuation.feature_layer")
    parser.add_argument("--run-dir", required=True, help="results/<run>")
    parser.add_argument("--model", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, required=True)
    parser.add_argument("--metrics", required=True, help="long-format CSV to write")
    parser.add_argument("--figure", required=True, help="PNG to write (seed | image and transparency per method)")


def run_accentuations(args: argparse.Namespace) -> int:
    from vitalstudy.data.classes import classes_for
    from vitalstudy.metrics.accentuation import accentuation_rows, draw_accentuations, references_of
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.targets import accentuation_targets, parse_target

    cfg = json.loads(args.stage_config)  # fv.accentuation_plan.metrics_stage_config: every key is there
    entries = cfg["accentuations"]
    ids = accentuation_targets({"targets": {"accentuations": entries}}, args.model)
    spec = get_spec(args.model)
    targets = [parse_target(i, accentuations=entries, classes=classes_for(spec)) for i in ids]
    model = load_model(args.model, weights=cfg["models"]["weights"].get(args.model))
    prov = Provenance("accentuation-metrics", {"model": args.model, "methods": args.methods, "seeds": args.seeds,
                                               "accentuations": entries}, seed=cfg["seed"])
    references = references_of(args.run_dir, args.model, targets)
    rows = accentuation_rows(args.run_dir, args.model, model, spec, args.methods, targets, args.seeds, references,
                             cfg["feature_layer"], cfg["bootstrap"], int(cfg["seed"]))
    write_rows(args.metrics, rows)
    draw_accentuations(args.run_dir, args.model, spec, args.methods, targets, min(args.seeds), Path(args.figure))
    for path in (args.metrics, args.figure):
        prov.add_output(path)
    prov.write(Path(args.metrics).with_suffix(".provenance.json"))
    return 0


COMMANDS = {
    "metrics": (add_metrics_arguments, run_metrics),
    "accentuations": (add_accentuations_arguments, run_accentuations),
}
