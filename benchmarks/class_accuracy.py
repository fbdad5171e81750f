"""Target-model and held-out accuracy of class-neuron FVs already generated in a run, plus a
contact sheet (classes x seeds) for looking at them. Uses the metrics stage's loaders, so images
that break the stage-2 contract are refused.

    python benchmarks/class_accuracy.py results/sample --model efficientnet_lite0 \
        --held-out efficientnet_lite2 --methods vital --seeds 0 --targets n01440764 ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.metrics.accuracy import topk_hits
from vitalstudy.metrics.forward import forward_fvs
from vitalstudy.metrics.images import FVKey, load_fvs
from vitalstudy.models import get_spec, load_model


def contact_sheet(images: dict[tuple[str, int], Image.Image], targets: list[str], seeds: list[int], tile=112) -> Image.Image:
    sheet = Image.new("RGB", (tile * len(seeds), tile * len(targets)), "white")
    for r, target in enumerate(targets):
        for c, seed in enumerate(seeds):
            sheet.paste(images[target, seed].resize((tile, tile)), (c * tile, r * tile))
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", required=True)
    parser.add_argument("--held-out", required=True)
    parser.add_argument("--methods", nargs="+", default=["vital"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--targets", nargs="+", required=True)
    args = parser.parse_args()
    classes = imagenet_classes()
    cpu = torch.device("cpu")
    judges = {}  # judge name -> model, loaded on first use and reused for every method
    for method in args.methods:
        keys = [FVKey(method, t, s) for t in args.targets for s in args.seeds]
        fvs = load_fvs(Path(args.run_dir) / "02_fv", args.model, keys)
        truth = np.array([classes.index(k.target) for k in keys])
        for judge in (args.model, args.held_out):
            if judge not in judges:
                judges[judge] = load_model(judge)
            logits = forward_fvs(judges[judge], get_spec(judge), [f.image for f in fvs], cpu, 16).logits
            top1 = topk_hits(logits, truth, 1).mean() * 100
            top5 = topk_hits(logits, truth, 5).mean() * 100
            print(f"{method}: {judge} top-1 {top1:.1f} %, top-5 {top5:.1f} % over {len(keys)} images")
        out = Path(args.run_dir) / "02_fv" / args.model / method / "contact_sheet.png"
        contact_sheet({(f.key.target, f.key.seed): f.image for f in fvs}, args.targets, args.seeds).save(out)
        print(f"contact sheet: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
