"""`vitalstudy bench`: images per second per batch size of the generation loop, and the
ratio of batched generation to a one-target loop at equal steps, measured in one run."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    import torch

    from vitalstudy.errors import MissingAssetError
    from vitalstudy.fv.bench import device_key, fastest, measure_method, remember_batch_size
    from vitalstudy.fv.settings import method_config
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.features import resolve_device

    from vitalstudy.config import load

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
