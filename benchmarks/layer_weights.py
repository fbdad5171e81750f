"""VITAL's class-layer weights on EfficientNet-Lite0, chosen by measurement (the analogue of the
paper's App. C.1 ablation for ResNet50): each weight setting runs the same classes, seed and budget,
and is judged by held-out (EfficientNet-Lite2) accuracy and by FID on Lite0 features against the
same natural images. Also printed: each hooked layer's sort-matching loss of the final images
(unweighted), i.e. what a weight buys at that layer and what it costs at the others.

The references are a run's stage-1 selections (`01_references/<model>/<wnid>.json`), e.g. of the
sample config: `snakemake --profile workflow/profiles/default --configfile config/sample.yaml
--config run=sample -- results/sample/01_references/efficientnet_lite0/_jobs/b000.json`.

    python benchmarks/layer_weights.py --references results/sample/01_references/efficientnet_lite0 \
        --classes 8 --steps 300 --out results/layer_weights
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

import vitalstudy
from scoring import SAMPLE_CONFIG, add_common_arguments, contact_sheet, natural_features, prepare, score
from vitalstudy.data.sources import build_index
from vitalstudy.fv.sortmatch import as_channels_by_positions, prototype, sort_match_loss
from vitalstudy.fv.vital import reference_batch
from vitalstudy.io import read_json
from vitalstudy.models import get_spec, load_model
from vitalstudy.models.features import capture_outputs

MODEL, HELD_OUT = "efficientnet_lite0", "efficientnet_lite2"
# Multipliers of the registry's weights, per hooked class layer in the registry's order
# (Lite0: stem.0, blocks.2, blocks.4, blocks.10, blocks.15). The registry's uniform weights are
# ResNet50's choice in the paper; x100 on the last layer is DenseNet121's, x10 on the first ConvNeXt's.
SETTINGS = {"uniform": (1, 1, 1, 1, 1), "last x10": (1, 1, 1, 1, 10), "last x100": (1, 1, 1, 1, 100),
            "first x10": (10, 1, 1, 1, 1), "no stem": (0, 1, 1, 1, 1)}


def class_prototypes(model, spec, references: list[dict]) -> dict[str, torch.Tensor]:
    """A class's prototype quantiles at each hooked class layer (computed once, shared by every setting)."""
    with torch.no_grad(), capture_outputs(model, spec.class_layer_names) as acts:
        model(reference_batch(spec, references))
        return {n: prototype(as_channels_by_positions(acts[n])) for n in spec.class_layer_names}


def layer_losses(model, spec, image, prototypes: dict[str, torch.Tensor]) -> dict[str, float]:
    """The final image's unweighted sort-matching loss at each hooked class layer, against its
    class's prototypes (as VITAL's objective computes it, without jitter)."""
    with torch.no_grad(), capture_outputs(model, list(prototypes)) as acts:
        model(spec.preprocess(image)[None])
        return {n: float(sort_match_loss(as_channels_by_positions(acts[n]), p[None])) for n, p in prototypes.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", required=True, help="a run's 01_references/<model>/ folder")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    add_common_arguments(parser, "results/layer_weights")
    args = parser.parse_args()
    out, wnids = prepare(args)
    reference_files = {w: Path(args.references) / f"{w}.json" for w in wnids}
    missing = [str(p) for p in reference_files.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"layer_weights: no stage-1 references at {', '.join(missing)} (see this script's docstring)")
    spec, model, judge = get_spec(MODEL), load_model(MODEL), load_model(HELD_OUT)
    prototypes = {w: class_prototypes(model, spec, read_json(p)["references"]) for w, p in reference_files.items()}
    vital_settings = yaml.safe_load(SAMPLE_CONFIG.read_text())["generate"]["vital"]  # the sample's warm-up
    vital_settings.pop("steps", None)
    base = {layer.name: layer.weight for layer in spec.class_layers}
    index, _ = build_index({"source": "folder", "path": args.images}, seed=args.seed)
    real = natural_features(model, MODEL, index, args.natural_images, args.seed)
    nets = {"lite2": (judge, HELD_OUT), "lite0": (model, MODEL)}

    rows, images = [], {}
    for name in args.settings:
        weights = {layer: w * m for (layer, w), m in zip(base.items(), SETTINGS[name])}
        start = time.perf_counter()
        fvs = vitalstudy.visualize(MODEL, wnids, "vital", references=reference_files, steps=args.steps, seed=args.seed,
                                   settings={**vital_settings, "layer_weights": {MODEL: weights}},
                                   work_dir=out / "work")
        seconds = time.perf_counter() - start
        images[name] = [fv.image for fv in fvs]
        row = score(name, images[name], wnids, nets, real, args.bootstrap, args.seed)
        losses = [layer_losses(model, spec, fv.image, prototypes[w]) for fv, w in zip(fvs, wnids)]
        row["weights"] = weights
        row["layer_loss"] = {n: round(sum(l[n] for l in losses) / len(losses), 4) for n in base}
        row["seconds"] = round(seconds, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    contact_sheet(images, len(wnids)).save(out / "contact_sheet.png")
    (out / "layer_weights.json").write_text(json.dumps({"classes": wnids, "steps": args.steps, "seed": args.seed,
                                                        "natural_images": len(real), "rows": rows}, indent=1))
    print(f"{len(wnids)} classes, {args.steps} steps, seed {args.seed}; FID/KID on Lite0 penultimate features vs "
          f"{len(real)} natural images; [estimate, 95 % CI low, high]; contact sheet: {out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
