"""Ours side by side with the reference implementations (the `bench` extra installs them):
MACO and the paper's Fourier against Horama's `maco()` / `fourier()`, Lucid's Fourier against
Lucent's `render_vis`, on EfficientNet-Lite0, the same classes, the same step and crop budget.

Reported per method: held-out (EfficientNet-Lite2) and target-model top-1 / top-5 with bootstrap
CIs, FID and KID on Lite0 penultimate features against the same natural images, image-steps/s
and model passes/s measured in this run, and a contact sheet (rows = classes, columns = methods).

Like for like: Horama is given our natural-image magnitude (it would download one), its image
range is Lite0's valid input range (-1, 1) (its default (-2.5, 2.5) is ImageNet-normalised space),
and ours runs with Horama's optimiser (NAdam lr 1.0) and crop count; Lucent gets Lite0's input
normalisation instead of its ImageNet one, and our `fourier_lucid` the same number of model passes.
Ours optimises all classes in one batch (as the workflow does); the peers one image at a time.

    nice python benchmarks/peers.py --classes 8 --steps 64 --crops 4 --out results/peers
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from scoring import add_common_arguments, contact_sheet, natural_features, prepare, score
from vitalstudy.data.classes import imagenet_classes
from vitalstudy.data.sources import build_index
from vitalstudy.fv.maco import natural_spectrum, spectrum_path
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import default_method_config
from vitalstudy.models import get_spec, load_model
from vitalstudy.models.preprocessing import denormalize
from vitalstudy.targets import parse_target
from vitalstudy.seeding import derive_seed, torch_generator

MODEL, HELD_OUT = "efficientnet_lite0", "efficientnet_lite2"
PAIRS = ("maco", "fourier", "fourier_lucid")


def _pixels_to_pil(pixels: torch.Tensor) -> Image.Image:
    array = (pixels.clamp(0, 1).permute(1, 2, 0).detach().cpu().numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def run_ours(method: str, settings: dict, wnids: list[str], model, run_dir: Path, seed: int):
    spec = get_spec(MODEL)
    config = default_method_config(method, **settings)  # `settings` over the schema's defaults
    planner = get_method(method).method_class()(method, spec, model, config, run_dir, torch.device("cpu"))
    targets = [parse_target(w) for w in wnids]
    plan = planner.plan(targets, {})
    generators = [torch_generator(seed, MODEL, method, t.id) for t in targets]
    start = time.perf_counter()
    result = plan.optimise(spec.normalize, generators, torch.device("cpu"))
    seconds = time.perf_counter() - start
    return [_pixels_to_pil(x) for x in result.images], seconds


@contextlib.contextmanager
def _in_directory(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_horama(kind: str, wnids: list[str], model, magnitude: np.ndarray, steps: int, crops: int, seed: int):
    import horama

    spec = get_spec(MODEL)
    classes = imagenet_classes()
    if len(set(spec.mean)) != 1 or len(set(spec.std)) != 1:
        raise SystemExit("peers: Horama's values_range is one interval for all channels; this model's is not")
    valid = ((0.0 - spec.mean[0]) / spec.std[0], (1.0 - spec.mean[0]) / spec.std[0])  # Lite0: (-1, 1)
    images, seconds = [], 0.0
    with tempfile.TemporaryDirectory() as tmp, _in_directory(Path(tmp)):
        np.save("spectrum_decorrelated.npy", magnitude.astype(np.float32))  # Horama loads it instead of downloading
        for wnid in wnids:
            index = classes.index(wnid)
            torch.manual_seed(derive_seed(seed, MODEL, f"horama-{kind}", wnid))
            objective = lambda crops_, i=index: model(crops_)[:, i].mean()  # noqa: E731
            start = time.perf_counter()
            run = horama.maco if kind == "maco" else horama.fourier
            image, _ = run(objective, total_steps=steps, learning_rate=1.0, image_size=spec.input_size,
                           model_input_size=spec.input_size, noise=0.05, values_range=valid,
                           crops_per_iteration=crops, box_size=(0.20, 0.25), device="cpu")
            seconds += time.perf_counter() - start
            images.append(_pixels_to_pil(denormalize(spec, image.detach()[None])[0]))
    return images, seconds


def run_lucent(wnids: list[str], model, passes: int, seed: int):
    from lucent.optvis import objectives, param, render, transform

    spec = get_spec(MODEL)
    classes = imagenet_classes()
    normalise = lambda x: spec.normalize(x)  # noqa: E731  (Lite0's input scaling instead of Lucent's ImageNet one)
    images, seconds = [], 0.0
    for wnid in wnids:
        torch.manual_seed(derive_seed(seed, MODEL, "lucent", wnid))
        start = time.perf_counter()
        out = render.render_vis(model, objectives.channel("fc", classes.index(wnid)),
                                param_f=lambda: param.image(spec.input_size, fft=True, decorrelate=True),
                                transforms=transform.standard_transforms + [normalise], thresholds=(passes,),
                                preprocess=False, show_image=False, progress=False)
        seconds += time.perf_counter() - start
        images.append(Image.fromarray((np.clip(out[-1][0], 0, 1) * 255).round().astype(np.uint8)))
    return images, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--crops", type=int, default=4, help="crops per step (Horama default 6)")
    parser.add_argument("--spectrum-images", type=int, default=200)
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, default=list(PAIRS),
                        help="which (ours, peer) pairs to run, each ours then its peer")
    add_common_arguments(parser, "results/peers")
    args = parser.parse_args()
    if args.crops < 2 and {"maco", "fourier"} & set(args.pairs):
        parser.error("--crops must be at least 2 for the Horama pairs (Horama 0.3's crop step fails on 1 crop)")
    out, wnids = prepare(args)
    model, judge = load_model(MODEL), load_model(HELD_OUT)
    index, _ = build_index({"source": "folder", "path": args.images}, seed=args.seed)
    magnitude, _, _ = natural_spectrum(index, get_spec(MODEL).input_size, args.spectrum_images, args.seed)
    asset = spectrum_path(out, get_spec(MODEL).input_size)
    asset.parent.mkdir(parents=True, exist_ok=True)
    np.savez(asset, magnitude=magnitude)

    budget = {"steps": args.steps, "lr": 1.0, "optimizer": "nadam", "views_per_step": args.crops}
    passes = args.steps * args.crops
    pairs = {
        "maco": {"maco (ours)": lambda: run_ours("maco", budget, wnids, model, out, args.seed),
                 "maco (Horama)": lambda: run_horama("maco", wnids, model, magnitude, args.steps, args.crops, args.seed)},
        "fourier": {"fourier (ours)": lambda: run_ours("fourier", budget, wnids, model, out, args.seed),
                    "fourier (Horama)": lambda: run_horama("fourier", wnids, model, magnitude, args.steps, args.crops,
                                                           args.seed)},
        "fourier_lucid": {"fourier_lucid (ours)": lambda: run_ours("fourier_lucid", {"steps": passes, "lr": 0.05},
                                                                   wnids, model, out, args.seed),
                          "fourier_lucid (Lucent)": lambda: run_lucent(wnids, model, passes, args.seed)},
    }
    runs = {name: run for pair in args.pairs for name, run in pairs[pair].items()}
    images, seconds = {}, {}
    for name, run in runs.items():
        try:
            images[name], seconds[name] = run()
        except ImportError as missing:  # a peer not installed: say so, and how to get it
            print(f"skipping {name}: {missing} (pip install '.[bench]'; torch-lucent apart from faccent: "
                  f"pip install --no-deps --target DIR torch-lucent==0.1.8 and PYTHONPATH=DIR)", flush=True)
            continue
        print(f"{name}: {seconds[name]:.1f} s", flush=True)

    nets = {"lite2": (judge, HELD_OUT), "lite0": (model, MODEL)}
    real = natural_features(model, MODEL, index, args.natural_images, args.seed)
    rows = []
    for name, pics in images.items():
        row = score(name, pics, wnids, nets, real, args.bootstrap, args.seed)
        row["seconds"] = round(seconds[name], 1)
        steps = passes if "lucid" in name else args.steps
        row["image_steps_per_s"] = round(len(pics) * steps / seconds[name], 2)
        row["model_passes_per_s"] = round(len(pics) * passes / seconds[name], 2)
        rows.append(row)
    for ours, peer in (("maco (ours)", "maco (Horama)"), ("fourier (ours)", "fourier (Horama)"),
                       ("fourier_lucid (ours)", "fourier_lucid (Lucent)")):
        if peer not in images:
            continue
        a, b = next(r for r in rows if r["method"] == ours), next(r for r in rows if r["method"] == peer)
        a["speed_vs_peer"] = round(a["image_steps_per_s"] / b["image_steps_per_s"], 2)
    contact_sheet(images, len(wnids)).save(out / "contact_sheet.png")
    (out / "peers.json").write_text(json.dumps({"classes": wnids, "steps": args.steps, "crops": args.crops,
                                                "natural_images": len(real), "rows": rows}, indent=1))
    print(f"{len(wnids)} classes, {args.steps} steps x {args.crops} crops ({passes} passes per image); "
          f"FID/KID on Lite0 penultimate features vs {len(real)} natural images; [estimate, 95 % CI low, high]")
    for row in rows:
        print(json.dumps(row))
    print(f"contact sheet: {out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
