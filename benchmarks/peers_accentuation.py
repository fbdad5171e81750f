"""Feature accentuation side by side with Horama's `accentuation()` (the `bench` extra) on the same
seed images, targets and settings, EfficientNet-Lite0 on the CPU: the target logit's gain over the
seed image, the RMS pixel distance to the seed, and seconds per image, measured in one run.

Both run Horama's recipe (NAdam, decay 1.5, crops + noise, pixel penalty) at the model's input size;
Horama's values_range is the model's valid input range ([-1, 1] for Lite0), which is what our
sigmoid-to-[0, 1] pixels become after the model's normalisation. The crop samplers differ where
ours does (see the note): the comparison is of outcomes, with intervals over (image, target, seed).

    python benchmarks/peers_accentuation.py --steps 20 --crops 3 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.data.sources import build_index
from vitalstudy.fooling.experiment import t_interval
from vitalstudy.fv.accentuation import AccentuationMethod, load_seeds
from vitalstudy.fv.loop import optimise
from vitalstudy.fv.settings import default_method_config
from vitalstudy.models import get_spec, load_model
from vitalstudy.targets import accentuation_id, parse_target

# (seed image of the bundled set, target class): a class in its own photo and in another's
PAIRS = [("skimage_chelsea", "n02123159"), ("skimage_coffee", "n07920052"), ("skimage_coffee", "n02123159"),
         ("sklearn_flower", "n07920052")]


def ours(spec, model, path: str, wnid: str, seed: int, settings: dict) -> tuple[torch.Tensor, float]:
    entries = [{"image": path, "target": wnid}]
    target = parse_target(accentuation_id(entries[0]), accentuations=entries)
    plan = AccentuationMethod("accentuation", spec, model, settings, None, torch.device("cpu")).plan([target], {})
    began = time.perf_counter()
    result = optimise(plan.parameterisation, plan.objective, spec.normalize, plan.transforms, plan.settings,
                      [torch.Generator().manual_seed(seed)], torch.device("cpu"), image_prior=plan.image_prior)
    return result.images[0], time.perf_counter() - began


def horamas(spec, model, seed01: torch.Tensor, class_index: int, seed: int, settings: dict) -> tuple[torch.Tensor, float]:
    from horama import accentuation

    low, high = (0 - spec.mean[0]) / spec.std[0], (1 - spec.mean[0]) / spec.std[0]
    torch.manual_seed(seed)
    began = time.perf_counter()
    image, _ = accentuation(lambda x: model(x)[:, class_index].mean(), seed01, decay_power=settings["decay"],
                            total_steps=settings["steps"], learning_rate=settings["lr"], image_size=spec.input_size,
                            model_input_size=spec.input_size, noise=settings["noise"], values_range=(low, high),
                            crops_per_iteration=settings["views_per_step"], penalty=settings["penalty"], device="cpu")
    seconds = time.perf_counter() - began
    return ((image.detach() - low) / (high - low)).clamp(0, 1), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crops", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help="use the first N (image, target) pairs")
    parser.add_argument("--json", help="write the per-run measurements here")
    args = parser.parse_args()
    try:
        import horama  # noqa: F401
    except ImportError:
        print("horama is not installed: pip install '.[bench]'", file=sys.stderr)
        return 2
    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    index = build_index({"source": "bundled"}, seed=0)[0].set_index("image_id")
    settings = default_method_config("accentuation", steps=args.steps, lr=args.lr, views_per_step=args.crops, decay=1.5,
                                     noise=0.05, penalty=1.0, optimizer="nadam", distance="pixel")
    classes = imagenet_classes()
    rows = []
    pairs = PAIRS[: args.pairs]
    for image_id, wnid in pairs:
        path = index.loc[image_id, "path"]
        seed01 = load_seeds(spec, [path])
        k = classes.index(wnid)
        with torch.no_grad():
            start_value = model(spec.normalize(seed01))[0, k].item()
        for seed in args.seeds:
            # both closures are called within this iteration
            for name, runner in (("vitalstudy", lambda: ours(spec, model, path, wnid, seed, settings)),  # noqa: B023
                                 ("horama", lambda: horamas(spec, model, seed01[0], k, seed, settings))):  # noqa: B023
                image, seconds = runner()
                with torch.no_grad():
                    gain = model(spec.normalize(image[None]))[0, k].item() - start_value
                rows.append({"implementation": name, "image": image_id, "target": wnid, "seed": seed, "gain": gain,
                             "pixel_rmse": float((image - seed01[0]).pow(2).mean().sqrt()), "seconds": seconds})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nEfficientNet-Lite0, CPU ({torch.get_num_threads()} threads), {args.steps} steps, {args.crops} crops, "
          f"lr {args.lr}, {len(pairs)} (image, target) pairs x seeds {args.seeds}; mean [95 % t-interval]")
    print("| implementation | logit gain over the seed | RMS pixel distance to the seed | seconds per image |")
    print("|---|---|---|---|")
    for name in ("vitalstudy", "horama"):
        part = [r for r in rows if r["implementation"] == name]
        cells = [t_interval(np.array([r[m] for r in part])) for m in ("gain", "pixel_rmse", "seconds")]
        print(f"| {name} | " + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in cells) + " |")
    ratio = np.mean([r["seconds"] for r in rows if r["implementation"] == "vitalstudy"]) / \
        np.mean([r["seconds"] for r in rows if r["implementation"] == "horama"])
    print(f"speed: vitalstudy time / horama time = {ratio:.2f} (same process, interleaved runs)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0 if all(math.isfinite(r["gain"]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
