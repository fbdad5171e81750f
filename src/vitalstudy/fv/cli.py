"""`vitalstudy generate | maco-spectrum | bench`: stage 2 from the command line.

- `generate`: one job = (model, method, seed, list of targets);
- `maco-spectrum`: the natural-image Fourier magnitude MACO fixes, from the run's images;
- `bench`: images per second per batch size of the generation loop, and the ratio of batched generation
  to a one-target loop at equal steps, measured in one run."""

from __future__ import annotations

import argparse
import json

import numpy as np

from vitalstudy.data.sources import read_index
from vitalstudy.io import atomic_path
from vitalstudy.provenance import Provenance


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage-config", required=True,
                        help="JSON with the config keys this stage reads: seed, device, generate, models")
    parser.add_argument("--run-dir", required=True, help="results/<run>")
    parser.add_argument("--model", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--targets", nargs="+", required=True)
    parser.add_argument("--marker", required=True, help="job record to write when every target is done")


def run_generate(args: argparse.Namespace) -> int:
    from vitalstudy.config import schema_default, section_defaults
    from vitalstudy.fv.generate import run_job
    from vitalstudy.fv.settings import method_config
    from vitalstudy.models import load_model
    from vitalstudy.models.features import resolve_device

    cfg = json.loads(args.stage_config)
    gen = cfg["generate"]
    device = resolve_device(cfg.get("device", schema_default("device")))
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


def add_maco_spectrum_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="the run's 00_index/images.csv")
    parser.add_argument("--size", type=int, required=True, help="image side (the MACO resolution)")
    parser.add_argument("--count", type=int, default=1000, help="images averaged (a seeded sample)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help=".npz to write")
    parser.add_argument("--provenance", required=True)


def run_maco_spectrum(args: argparse.Namespace) -> int:
    from vitalstudy.fv.maco import natural_spectrum

    prov = Provenance("maco-spectrum", {"size": args.size, "count": args.count}, seed=args.seed)
    prov.add_input(args.index)
    magnitude, used, skipped = natural_spectrum(read_index(args.index), args.size, args.count, args.seed)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, magnitude=magnitude.astype(np.float32), image_ids=np.asarray(used))
    prov.record.update(images=used, skipped=skipped)
    prov.add_output(args.out)
    prov.write(args.provenance)
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "resnet50"])
    parser.add_argument("--methods", nargs="+", default=["vital"])
    parser.add_argument("--configfile", help="take the methods' settings (e.g. MACO's crops, DeepInversion's images "
                                             "per target) from this config's `generate` section; default: the schema's")
    parser.add_argument("--batch-sizes", nargs="+", type=int, help="default: 1 2 4 8 on CPU, 1..64 on a GPU")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per batch size (after one warm-up)")
    parser.add_argument("--total-steps", type=int, default=2000, help="steps per image for the seconds-per-image figure")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--remember", action="store_true", help="cache the fastest batch size for generation")
    parser.add_argument("--out", help="write all figures as JSON here")


def run_bench(args: argparse.Namespace) -> int:
    import torch

    from vitalstudy.config import load
    from vitalstudy.errors import MissingAssetError
    from vitalstudy.fv.bench import device_key, fastest, measure_method, remember_batch_size
    from vitalstudy.fv.settings import method_config
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.features import resolve_device

    settings = load([args.configfile], check_paths=False)["generate"] if args.configfile else _default_generate()
    device = resolve_device(args.device)
    report = {"device": device_key(device), "torch_threads": torch.get_num_threads(), "results": []}
    for name in args.models:
        spec = get_spec(name)
        try:
            model, weights = load_model(name, device=device), "pretrained"
        except MissingAssetError:  # timing does not depend on the weights' values
            model, weights = load_model(name, device=device, pretrained=False), "untrained (timing only)"
        for method in args.methods:
            rows = measure_method(method, spec, model, method_config(settings, method), device, args.steps,
                                  tuple(args.batch_sizes or ()) or None, args.mixed_precision)
            single = next((r for r in rows if r["batch"] == 1), None)
            best = fastest(rows)
            best_row = next(r for r in rows if r["batch"] == best)
            summary = {
                "model": name, "weights": weights, "method": method, "rows": rows, "chosen_batch": best,
                "speedup_vs_one_target_loop": (round(best_row["image_steps_per_second"] / single["image_steps_per_second"], 3)
                                               if single else None),
                "seconds_per_image_at_total_steps": round(args.total_steps / best_row["image_steps_per_second"], 2),
                "seconds_per_target_at_total_steps": round(args.total_steps / best_row["target_steps_per_second"], 2),
                "total_steps": args.total_steps,
            }
            if args.remember:
                remember_batch_size(spec, method, device, rows)
            print(f"bench: {name} {method}: chosen batch {best}, x{summary['speedup_vs_one_target_loop']} vs one-target loop, "
                  f"{summary['seconds_per_target_at_total_steps']} s/target at {args.total_steps} steps")
            report["results"].append(summary)
    if args.out:
        from vitalstudy.io import write_json

        write_json(args.out, report)
    return 0


def _default_generate() -> dict:
    from vitalstudy.config import validate

    return validate({"run": "bench", "seed": 0, "images": {"source": "bundled"}, "references": {},
                     "models": {"targets": ["efficientnet_lite0"]}, "targets": {"classes": ["n07920052"]}},
                    check_paths=False)["generate"]


COMMANDS = {
    "generate": (add_generate_arguments, run_generate),
    "maco-spectrum": (add_maco_spectrum_arguments, run_maco_spectrum),
    "bench": (add_bench_arguments, run_bench),
}
