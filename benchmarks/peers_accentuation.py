"""Feature accentuation side by side with Horama's `accentuation()` and faccent's `render_vis`
(Hamblin et al. 2024's own package; both in the `bench` extra) on the same seed images, targets and
settings, EfficientNet-Lite0 on the CPU: the target logit's gain over the seed image, the RMS pixel
distance to the seed, and seconds per image, measured in one run.

Ours and Horama run Horama's recipe (NAdam, decay 1.5, crops + noise, pixel penalty) at the model's
input size; Horama's values_range is the model's valid input range ([-1, 1] for Lite0), which is what
our sigmoid-to-[0, 1] pixels become after the model's normalisation. The crop samplers differ where
ours does (see the note): the comparison is of outcomes, with intervals over (image, target, seed).

faccent runs its own recipe with what it lets us match: the same seed (canvas = the model's input
size, not its 512), target logit, step count, crops per step (`nb_transforms`), noise amplitude in
model space, and Lite0's normalisation in place of its (-2, 2) range. Not matchable, so its own:
Lucid's Fourier (the 1/f^decay scale in the forward pass, desaturation 5; `--faccent-decay`, its
default 1: there 1.5 moves the low frequencies far faster, unlike our gradient-only scale), Adam
(lr `--faccent-lr`, its default 0.05; our lr 1.0 means nothing in its parameterisation), its crops
(side U(0.05, 0.99), uniform corner, noise before the resize), and its regulariser: `l2_compare` at
`--faccent-reg-layer` (`input`: per-pixel L2 norm over channels of the model-space difference, the
nearest to our pixel MSE; faccent's demo uses a feature layer, cf. `blocks_4`), which needs the seed
forwarded with every crop (twice the model passes), weighted by alpha = our penalty times its
automatic balance (ratio of the two terms' first gradients).

    python benchmarks/peers_accentuation.py --steps 20 --crops 3 --seeds 0 1
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
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
    result = plan.optimise(spec.normalize, [torch.Generator().manual_seed(seed)], torch.device("cpu"))
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


def _import_faccent():
    """faccent 1.0.3 imports `decorator` (objectives.py:21) without declaring it (the bench extra adds it)."""
    try:
        from faccent import objectives, param, render, transform
    except ImportError as missing:
        raise SystemExit(f"peers_accentuation: faccent cannot be imported ({missing}); pip install '.[bench]'") from None
    return objectives, param, render, transform


def faccents(spec, model, seed01: torch.Tensor, class_index: int, seed: int, settings: dict,
             own: dict) -> tuple[torch.Tensor, float]:
    """`own`: faccent's settings that ours has no counterpart for (reg_layer, lr, decay). `model` is a
    copy: faccent's hook clears every module's hooks (render.py:347)."""
    objectives, param, render, transform = _import_faccent()
    size = (spec.input_size, spec.input_size)
    classifier = spec.classifier.replace(".", "_")  # faccent names a layer by its path joined with _
    transforms = [transform.box_crop_2(), transform.uniform_gaussian_noise(settings["noise"] * spec.std[0]),
                  transform.resize(size), spec.normalize]
    low, high = (0 - spec.mean[0]) / spec.std[0], (1 - spec.mean[0]) / spec.std[0]
    torch.manual_seed(seed)
    began = time.perf_counter()
    parameterizer = param.fourier(init_img=seed01, img_size=size, decay_power=own["decay"],
                                  device=torch.device("cpu"))
    with contextlib.redirect_stdout(io.StringIO()):  # its progress prints
        render.render_vis(model, objectives.channel(classifier, class_index, batch=0), parameterizer=parameterizer,
                          transforms=transforms, optimizer=lambda params: torch.optim.Adam(params, lr=own["lr"]),
                          out_thresholds=[settings["steps"] - 1], inline_thresholds=[],
                          nb_transforms=settings["views_per_step"], preprocess=False, progress=False,
                          model_input_size=size, model_input_range=(low, high), hook_layers=[classifier, own["reg_layer"]],
                          accent_reg_layer=own["reg_layer"], accent_reg_alpha=settings["penalty"])
        image = parameterizer.params_to_img().detach()[0]  # after the last step (render_vis keeps the one before)
    return image, time.perf_counter() - began


PEERS = ("horama", "faccent")  # each one's module has its name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crops", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help="use the first N (image, target) pairs")
    parser.add_argument("--json", help="write the per-run measurements here")
    parser.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS),
                        help="peers to run next to ours (default: all installed)")
    parser.add_argument("--faccent-reg-layer", default="input",
                        help="faccent's accent_reg_layer: 'input' (pixels) or a module path joined with _")
    parser.add_argument("--faccent-lr", type=float, default=0.05, help="faccent's Adam learning rate")
    parser.add_argument("--faccent-decay", type=float, default=1.0, help="faccent's Fourier decay_power")
    args = parser.parse_args()
    peers = []
    for name in args.peers:
        if importlib.util.find_spec(name) is None:
            print(f"skipping {name}: not installed (pip install '.[bench]')")
        else:
            peers.append(name)
    if not peers:
        print("no peer installed: pip install '.[bench]'", file=sys.stderr)
        return 2
    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    faccent_model = copy.deepcopy(model) if "faccent" in peers else None
    index = build_index({"source": "bundled"}, seed=0)[0].set_index("image_id")
    settings = default_method_config("accentuation", steps=args.steps, lr=args.lr, views_per_step=args.crops, decay=1.5,
                                     noise=0.05, penalty=1.0, optimizer="nadam", distance="pixel")
    faccent_own = {"reg_layer": args.faccent_reg_layer, "lr": args.faccent_lr, "decay": args.faccent_decay}
    classes = imagenet_classes()
    rows = []
    pairs = PAIRS[: args.pairs]
    names = ["vitalstudy", *peers]
    for image_id, wnid in pairs:
        path = index.loc[image_id, "path"]
        seed01 = load_seeds(spec, [path])
        k = classes.index(wnid)
        with torch.no_grad():
            start_value = model(spec.normalize(seed01))[0, k].item()
        for seed in args.seeds:
            # the closures are called within this iteration
            runners = {"vitalstudy": lambda: ours(spec, model, path, wnid, seed, settings),  # noqa: B023
                       "horama": lambda: horamas(spec, model, seed01[0], k, seed, settings),  # noqa: B023
                       "faccent": lambda: faccents(spec, faccent_model, seed01, k, seed, settings,  # noqa: B023
                                                   faccent_own)}
            for name in names:
                image, seconds = runners[name]()
                with torch.no_grad():
                    gain = model(spec.normalize(image[None]))[0, k].item() - start_value
                rows.append({"implementation": name, "image": image_id, "target": wnid, "seed": seed, "gain": gain,
                             "pixel_rmse": float((image - seed01[0]).pow(2).mean().sqrt()), "seconds": seconds})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nEfficientNet-Lite0, CPU ({torch.get_num_threads()} threads), {args.steps} steps, {args.crops} crops, "
          f"lr {args.lr}, {len(pairs)} (image, target) pairs x seeds {args.seeds}; mean [95 % t-interval]")
    if "faccent" in peers:
        print(f"faccent: Adam lr {args.faccent_lr}, decay_power {args.faccent_decay}, accent_reg_layer "
              f"{args.faccent_reg_layer!r}, alpha {settings['penalty']} x its balance, noise {settings['noise']} "
              "in model space")
    print("| implementation | logit gain over the seed | RMS pixel distance to the seed | seconds per image |")
    print("|---|---|---|---|")
    for name in names:
        part = [r for r in rows if r["implementation"] == name]
        cells = [t_interval(np.array([r[m] for r in part])) for m in ("gain", "pixel_rmse", "seconds")]
        print(f"| {name} | " + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in cells) + " |")
    mean_seconds = {name: np.mean([r["seconds"] for r in rows if r["implementation"] == name]) for name in names}
    for name in peers:
        print(f"speed: vitalstudy time / {name} time = {mean_seconds['vitalstudy'] / mean_seconds[name]:.2f} "
              "(same process, interleaved runs)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0 if all(math.isfinite(r["gain"]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
