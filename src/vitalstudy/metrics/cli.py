"""`vitalstudy metrics`: stage 3. One action per metric and target model (each writes long-format rows
and a provenance record), then `tables` gathers every model's rows into the paper-shaped tables."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from vitalstudy.io import atomic_path
from vitalstudy.metrics.longformat import read_rows, write_rows
from vitalstudy.provenance import Provenance

PER_MODEL = {
    "accuracy": ("target-model and held-out top-1 accuracy of class FVs", "class"),
    "clip": ("CLIP zero-shot top-1/top-5 of class FVs and of natural images", "class"),
    "fid": ("FID and KID of class FVs vs natural images", "class"),
    "cosy": ("AUC and MAD of inner-neuron FVs (control: the neuron's references)", "neuron"),
    "tsne": ("t-SNE coordinates of penultimate features (natural images and class FVs)", "class"),
    "path-similarity": ("per-layer rank correlation of FV activations with natural images", "class"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stage-config", required=True,
                        help="JSON with the config keys this stage reads: run, seed, device, models, targets, "
                             "references, metrics")
    common.add_argument("--provenance", required=True, help="provenance JSON to write")
    for action, (help_text, _kind) in PER_MODEL.items():
        p = sub.add_parser(action, parents=[common], help=help_text, description=help_text)
        p.add_argument("--model", required=True, help="target model whose FVs are measured")
        p.add_argument("--index", required=True, help="the run's 00_index/images.csv")
        p.add_argument("--fv-root", required=True, help="the run's 02_fv folder")
        p.add_argument("--out", required=True, help="CSV to write (long format; t-SNE: coordinates)")
        if action == "accuracy":
            p.add_argument("--predictions", required=True, help="per-image predictions CSV to write")
        if action == "cosy":
            p.add_argument("--references-dir", required=True, help="the model's 01_references folder")
    tables = sub.add_parser("tables", parents=[common], help="paper-shaped tables with the paper's numbers beside ours")
    tables.add_argument("--inputs", nargs="+", required=True, help="long-format metric CSVs")
    tables.add_argument("--out-long", required=True, help="all rows in one CSV")
    tables.add_argument("--out-dir", required=True, help="folder for table<k>.{csv,md,tex}")


def _write_frame(path: str, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _per_model(args, cfg: dict, prov: Provenance) -> list[str]:
    from vitalstudy.metrics import jobs
    from vitalstudy.metrics.images import planned_images
    from vitalstudy.references.targets import class_targets, neuron_targets

    ctx = jobs.Context(cfg, args.model, args.index, args.fv_root)
    prov.record["device"] = str(ctx.device)
    prov.add_input(args.index)
    kind = PER_MODEL[args.action][1]
    classes, neurons = (class_targets(cfg), []) if kind == "class" else ([], neuron_targets(cfg, args.model))
    for key in planned_images(cfg["metrics"], ctx.spec, classes, neurons):
        for path in (key.png(args.fv_root, args.model), key.sidecar(args.fv_root, args.model)):
            if path.is_file():
                prov.add_input(path)
    outputs = [args.out]
    if args.action == "accuracy":
        rows, predictions = jobs.accuracy_job(ctx)
        _write_frame(args.predictions, predictions)
        outputs.append(args.predictions)
    elif args.action == "tsne":
        _write_frame(args.out, jobs.tsne_job(ctx))
        return outputs
    elif args.action == "cosy":
        rows = jobs.cosy_job(ctx, args.references_dir)
        for target in neurons:
            prov.add_input(f"{args.references_dir}/{target}.json")
    else:
        rows = {"clip": jobs.clip_job, "fid": jobs.fid_job, "path-similarity": jobs.path_similarity_job}[args.action](ctx)
    write_rows(args.out, rows)
    return outputs


def _tables(args, cfg: dict, prov: Provenance) -> list[str]:
    from vitalstudy.metrics import tables

    rows = read_rows(args.inputs)
    for path in args.inputs:
        prov.add_input(path)
    write_rows(args.out_long, rows.to_dict("records"))
    outputs = [args.out_long]
    paper = tables.paper_numbers()
    for spec in tables.table_specs(cfg["metrics"]["fid"]["feature_model"]):
        frame = tables.build_table(spec, rows, paper, cfg)
        outputs += [str(p) for p in tables.write_table(spec, frame, cfg, args.out_dir)]
    return outputs


def run(args: argparse.Namespace) -> int:
    cfg = json.loads(args.stage_config)
    prov = Provenance("metrics", {"action": args.action, "model": getattr(args, "model", None), **cfg},
                      seed=cfg["seed"])
    outputs = _tables(args, cfg, prov) if args.action == "tables" else _per_model(args, cfg, prov)
    for path in outputs:
        prov.add_output(path)
    prov.write(args.provenance)
    return 0
