"""Reference selection (PAPER_NOTES §1).

Class neurons: N seeded random images of the class from the reference pool; when fewer exist, all
of them plus seeded augmented views (random crops and flips), each recorded as such.
Inner neurons: images are cut into patches (size 64, stride 32 on the model's input crop), each
patch is resized to the input size and scored by the channel's spatial mean activation; an image's
score is its best patch; the top-k images are kept (distinct by construction). As in the authors'
code the full images are matched; the best patch box is recorded for display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from vitalstudy.data.sources import UnreadableImageError, load_rgb, original_view
from vitalstudy.errors import VitalStudyError
from vitalstudy.models.features import capture_outputs, channel_means
from vitalstudy.models.registry import ModelSpec
from vitalstudy.progress import progress
from vitalstudy.seeding import rng as seeded_rng

REFERENCE_POOLS = ("reference", "both")


def random_view(size: tuple[int, int], rng: np.random.Generator, min_area: float, flip: bool) -> dict:
    """A random-resized-crop box (area fraction in [min_area, 1], aspect 3/4..4/3) and a coin-flip mirror."""
    width, height = size
    area = rng.uniform(min_area, 1.0) * width * height
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = int(round(min(width, math.sqrt(area * aspect))))
    h = int(round(min(height, math.sqrt(area / aspect))))
    x0 = int(rng.integers(0, width - w + 1))
    y0 = int(rng.integers(0, height - h + 1))
    return {"kind": "augmented", "crop_box": [x0, y0, x0 + w, y0 + h],
            "flip": bool(flip and rng.random() < 0.5)}


@dataclass
class Selection:
    references: list[dict]  # {image_id, path, view, ...}
    how: dict
    skipped: list[dict]


def _pool(index: pd.DataFrame) -> pd.DataFrame:
    return index[index["pool"].isin(REFERENCE_POOLS)]


def select_class_references(index: pd.DataFrame, wnid: str, count: int, seed: int,
                            augment: dict) -> Selection:
    """`count` references of class `wnid`; `augment` (references.augment) over the schema's defaults."""
    from vitalstudy.config import section_defaults

    augment = section_defaults("references", {"augment": augment})["augment"]
    pool = _pool(index)
    rows = pool[pool["wnid"] == wnid].sort_values("image_id")
    if rows.empty:
        raise VitalStudyError(f"class {wnid}: no image of this class in the run's image index "
                              f"(images.source / images.path); add images of {wnid}")
    rng = seeded_rng(seed, "references", "class", wnid)
    order = rng.permutation(len(rows))
    chosen = rows.iloc[order[:count]]
    refs, skipped = [], []
    sizes = {}
    for row in chosen.itertuples():
        try:
            sizes[row.image_id] = load_rgb(row.path).size
        except UnreadableImageError as exc:
            skipped.append({"path": row.path, "reason": str(exc)})
            continue
        refs.append({"image_id": row.image_id, "path": row.path, "view": original_view()})
    if not refs:
        raise VitalStudyError(f"class {wnid}: none of its images could be read: {skipped}")
    readable, n_original = list(refs), len(refs)
    i = 0
    while len(refs) < count:  # fewer images than asked for: seeded augmented views
        base = readable[i % n_original]
        view = random_view(sizes[base["image_id"]], rng, augment["min_area"], augment["flip"])
        refs.append({"image_id": base["image_id"], "path": base["path"], "view": view})
        i += 1
    how = {"method": "seeded random images of the class from the reference pool"
                     + ("; augmented views fill up to the count" if len(refs) > n_original else ""),
           "requested": count, "distinct_images": n_original, "augmented_views": len(refs) - n_original,
           "augment": augment}
    return Selection(refs, how, skipped)


def _patch_grid(size: int, patch: int, stride: int) -> list[tuple[int, int]]:
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    return [(y, x) for y in starts for x in starts]


def _crop_to_source(box: tuple[int, int, int, int], source_size: tuple[int, int], spec: ModelSpec) -> list[int]:
    """Map a box on the model's Resize+CenterCrop input back to source pixel coordinates."""
    width, height = source_size
    scale = min(width, height) / spec.resize_size
    off_x = (width / scale - spec.input_size) / 2
    off_y = (height / scale - spec.input_size) / 2
    x0, y0, x1, y1 = box
    return [int(round((x0 + off_x) * scale)), int(round((y0 + off_y) * scale)),
            int(round((x1 + off_x) * scale)), int(round((y1 + off_y) * scale))]


@torch.no_grad()
def score_patches(model: torch.nn.Module, spec: ModelSpec, index: pd.DataFrame, layer: str,
                  patch: int, stride: int, candidates: int, seed: int, device: torch.device,
                  batch_size: int = 64) -> dict:
    """Best-patch score of every candidate image for every channel of `layer`.

    Returns arrays `image_ids` (N,), `scores` (N, C) and `boxes` (N, C, 4) in source pixels, plus
    the skipped files. Computed once per (model, layer) and shared by all its neuron targets.
    """
    pool = _pool(index).sort_values("image_id")
    if len(pool) > candidates:
        keep = seeded_rng(seed, "references", "neuron-candidates", spec.name).choice(len(pool), candidates, replace=False)
        pool = pool.iloc[np.sort(keep)]
    grid = _patch_grid(spec.input_size, patch, stride)
    image_ids, all_scores, all_boxes, skipped = [], [], [], []
    for row in progress(pool.itertuples(), total=len(pool), desc=f"score patches {spec.name} {layer}", unit="image"):
        try:
            image = load_rgb(row.path)
        except UnreadableImageError as exc:
            skipped.append({"path": row.path, "reason": str(exc)})
            continue
        x = spec.preprocess(image).to(device)
        patches = torch.stack([x[:, y:y + patch, x0:x0 + patch] for y, x0 in grid])
        patches = F.interpolate(patches, size=(spec.input_size, spec.input_size), mode="bilinear", align_corners=False)
        means = []
        with capture_outputs(model, [layer]) as captured:
            for chunk in patches.split(batch_size):
                model(chunk)
                means.append(channel_means(captured[layer]).float().cpu())
        means = torch.cat(means)  # (patches, C)
        best, where = means.max(dim=0)
        boxes = [_crop_to_source((grid[p][1], grid[p][0], grid[p][1] + patch, grid[p][0] + patch), image.size, spec)
                 for p in where.tolist()]
        image_ids.append(row.image_id)
        all_scores.append(best.numpy())
        all_boxes.append(np.asarray(boxes, dtype=np.int32))
    if not image_ids:
        raise VitalStudyError(f"no readable candidate image to score for {spec.name} {layer}")
    return {"image_ids": np.asarray(image_ids), "scores": np.stack(all_scores),
            "boxes": np.stack(all_boxes), "skipped": skipped,
            "parameters": {"layer": layer, "patch": patch, "stride": stride, "candidates": len(image_ids),
                           "patches_per_image": len(grid)}}


def select_neuron_references(index: pd.DataFrame, patch_scores: dict, channel: int, count: int) -> Selection:
    scores = patch_scores["scores"]
    if channel >= scores.shape[1]:
        raise VitalStudyError(f"channel {channel} does not exist: layer {patch_scores['parameters']['layer']} "
                              f"has {scores.shape[1]} channels")
    order = np.argsort(-scores[:, channel], kind="stable")[:count]
    paths = index.set_index("image_id")["path"]
    refs = [{"image_id": str(patch_scores["image_ids"][i]), "path": paths[str(patch_scores["image_ids"][i])],
             "view": original_view(), "score": float(scores[i, channel]),
             "patch_box": [int(v) for v in patch_scores["boxes"][i, channel]]} for i in order]
    how = {"method": "top-k distinct images by best-patch spatial-mean activation (CRAFT-style); "
                     "full images are matched, patch_box is the best patch",
           **patch_scores["parameters"], "requested": count, "selected": len(refs)}
    return Selection(refs, how, [])


@torch.no_grad()
def select_concept_references(model: torch.nn.Module, spec: ModelSpec, index: pd.DataFrame, layer: str,
                              direction: torch.Tensor, count: int, candidates: int, seed: int,
                              device: torch.device) -> Selection:
    """Top-k distinct images by their best position's cosine similarity to a concept direction
    at `layer` (the images that express the concept most, as CRAFT selects them)."""
    pool = _pool(index).sort_values("image_id")
    if len(pool) > candidates:
        keep = seeded_rng(seed, "references", "concept-candidates", spec.name).choice(len(pool), candidates, replace=False)
        pool = pool.iloc[np.sort(keep)]
    scored, skipped = [], []
    for row in progress(pool.itertuples(), total=len(pool), desc=f"concept references {spec.name} {layer}", unit="image"):
        try:
            x = spec.preprocess(load_rgb(row.path))[None].to(device)
        except UnreadableImageError as exc:
            skipped.append({"path": row.path, "reason": str(exc)})
            continue
        with capture_outputs(model, [layer]) as acts:
            model(x)
        features = acts[layer].flatten(2)[0]  # (C, P)
        if features.shape[0] != direction.numel():
            raise VitalStudyError(f"concept direction has {direction.numel()} values but {layer} has "
                                  f"{features.shape[0]} channels")
        cosine = F.cosine_similarity(features, direction.to(features)[:, None], dim=0)
        scored.append((float(cosine.max()), row.image_id, row.path))
    scored.sort(key=lambda item: (-item[0], item[1]))
    refs = [{"image_id": image_id, "path": path, "view": original_view(), "score": score}
            for score, image_id, path in scored[:count]]
    how = {"method": "top-k distinct images by the best position's cosine similarity to the concept direction",
           "layer": layer, "candidates": len(scored), "requested": count, "selected": len(refs)}
    return Selection(refs, how, skipped)
