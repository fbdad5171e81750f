"""What the side-by-side benchmarks report for a set of class-neuron images: held-out and target-model
top-1 / top-5 with bootstrap CIs, and FID / KID on the target model's penultimate features against
the same natural images (the metrics stage's functions; imported by peers.py and layer_weights.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image, ImageDraw

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.metrics.accuracy import topk_hits
from vitalstudy.metrics.fid import frechet_distance, mmd2_unbiased
from vitalstudy.metrics.forward import forward_fvs, forward_paths
from vitalstudy.metrics.stats import bootstrap_ci
from vitalstudy.models import get_spec

CPU = torch.device("cpu")
SAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "sample.yaml"


def sample_classes() -> list[str]:
    """The sample config's classes, in its order (the benchmarks take the first N)."""
    return yaml.safe_load(SAMPLE_CONFIG.read_text())["targets"]["classes"]


def add_common_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The options the benchmarks share: which sample classes, the seed, the natural images and CIs."""
    parser.add_argument("--classes", type=int, default=8, help="the first N of the sample config's 20 classes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", default=os.environ.get("VITALSTUDY_SAMPLE_DIR", "../shared/data/imagenet-sample"),
                        help="natural images: the FID/KID reference set (and MACO's spectrum in peers.py)")
    parser.add_argument("--natural-images", type=int, default=250, help="a seeded sample of them for FID/KID")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", default=out)


def prepare(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """All cores to torch, the output folder made; returns it and the classes the run visualises."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, sample_classes()[: args.classes]


def natural_features(model, model_name: str, index, count: int, seed: int) -> np.ndarray:
    """Penultimate features of a seeded sample of `count` natural images of the index (FID's reference)."""
    natural = index.sample(min(count, len(index)), random_state=seed).sort_values("image_id")
    return forward_paths(model, get_spec(model_name), list(natural["path"]), CPU, 32).penultimate


def score(name: str, images: list[Image.Image], wnids: list[str], nets: dict, real: np.ndarray,
          bootstrap: int, seed: int) -> dict:
    """`nets`: label -> (model, registry name), the target model last (its features give FID/KID).
    Every figure is [estimate, 95 % CI low, high]; accuracies in %."""
    classes = imagenet_classes()
    truth = np.array([classes.index(w) for w in wnids])
    row = {"method": name, "images": len(images)}
    features = None
    for label, (net, net_name) in nets.items():
        outputs = forward_fvs(net, get_spec(net_name), images, CPU, 16)
        for k in (1, 5):
            hits = topk_hits(outputs.logits, truth, k).astype(float)
            ci = bootstrap_ci(np.mean, (hits,), bootstrap, 0.95, seed, "peers", label, k, name)
            row[f"{label}_top{k}"] = [round(100 * hits.mean(), 1), round(100 * ci[0], 1), round(100 * ci[1], 1)]
        features = outputs.penultimate
    fid_ci = bootstrap_ci(frechet_distance, (features, real), bootstrap, 0.95, seed, "peers-fid", name, recenter=True)
    kid_ci = bootstrap_ci(mmd2_unbiased, (features, real), bootstrap, 0.95, seed, "peers-kid", name, recenter=True)
    row["fid"] = [round(frechet_distance(features, real), 2), round(max(fid_ci[0], 0), 2), round(fid_ci[1], 2)]
    row["kid"] = [round(mmd2_unbiased(features, real), 4), round(kid_ci[0], 4), round(kid_ci[1], 4)]
    return row


def contact_sheet(columns: dict[str, list[Image.Image]], rows: int, tile: int = 112) -> Image.Image:
    """Columns = methods (or settings), rows = classes, a header with each column's name."""
    header = 16
    sheet = Image.new("RGB", (tile * len(columns), header + tile * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (name, images) in enumerate(columns.items()):
        draw.text((c * tile + 3, 2), name, fill="black")
        for r, image in enumerate(images):
            sheet.paste(image.resize((tile, tile)), (c * tile, header + r * tile))
    return sheet
