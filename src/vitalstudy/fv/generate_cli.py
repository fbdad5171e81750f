"""`vitalstudy generate`: stage 2, one job = (model, method, seed, list of targets)."""

from __future__ import annotations

import argparse
import json

from vitalstudy.provenance import Provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage-config", required=True,
                        help="JSON with the config keys this stage reads: seed, device, generate, models")
    parser.add_argument("--run-dir", required=True, help="results/<run>")
    parser.add_argument("--model", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--targets", nargs="+", required=True)
    parser.add_argument("--marker", required=True, help="job record to write when every target is done")


def run(args: argparse.Namespace) -> int:
    from vitalstudy.config import section_defaults
    from vitalstudy.fv.generate import run_job
    from vitalstudy.fv.settings import method_config
    from vitalstudy.models import load_model
    from vitalstudy.models.features import resolve_device

    cfg = json.loads(args.stage_config)
    gen = cfg["generate"]
    device = resolve_device(cfg.get("device", "auto"))
    prov = Provenance("generate", {"model": args.model, "method": args.method, "targets": args.targets,
                                   "generate": gen}, seed=args.seed, device=str(device))
    weights = cfg.get("models", {}).get("weights", {}).get(args.model)
    model = load_model(args.model, weights=weights, device=device)
    filled = section_defaults("generate", gen)  # a stage config naming only some keys gets the schema's defaults
    result = run_job(args.run_dir, args.model, args.method, args.targets, args.seed, method_config(filled, args.method),
                      device, filled["batch_size"], weights=weights, mixed_precision=filled["mixed_precision"],
                      concepts=cfg.get("concepts"), accentuations=cfg.get("accentuations"), model=model)
    for path in result.inputs:
        prov.add_input(path)
    for record in result.records:
        for kind in ("png", "alpha", "json"):
            if kind in record:
                prov.record["outputs"][record[kind]["path"]] = record[kind]["sha256"]
    prov.record["batch_size"] = result.batch_size
    prov.write(args.marker)
    return 0
