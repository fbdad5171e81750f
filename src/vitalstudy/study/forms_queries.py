"""Natural query images for 2AFC trials, ranked by how strongly they drive a unit.

Zimmermann et al. (2021) ask which of two natural images activates a unit more: one drawn from the
unit's most activating images, one from its least. Ranking needs the model; it is injected as a
``score(images) -> {target: [score per image]}`` callable, so the selection logic is testable
without one, and one forward pass serves every unit of a section. The candidates are a seeded
sample of the index (ImageNet is far too large to score whole), and a target's own reference images
are left out where the index allows: FVs were matched to them, so querying with them would favour
methods that use references.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from PIL import Image

from vitalstudy.errors import VitalStudyError

Score = Callable[[list[Image.Image]], dict[str, list[float]]]
ScorerFactory = Callable[[dict[str, dict]], Score]  # {target id: stage-1 target object} -> score


def read_index(run_dir: Path) -> list[dict]:
    """Rows of ``00_index/images.csv`` (image_id, path, wnid, ...)."""
    path = run_dir / "00_index" / "images.csv"
    if not path.exists():
        raise VitalStudyError(f"{path}: missing; 2AFC query images come from the run's image index")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def sample_candidates(rows: Sequence[dict], limit: int, seed: str) -> list[dict]:
    """At most ``limit`` rows that are not reference-only, drawn with a seeded RNG."""
    eligible = [r for r in rows if r["pool"] != "reference"]
    return eligible if len(eligible) <= limit else random.Random(seed).sample(eligible, limit)


def query_candidates(ranked: Sequence[dict], references: set[str]) -> list[dict]:
    """The ranked rows that may serve as queries for a target with these reference image ids.

    The target's references only do when the index marks them `both` (a class with a single image,
    as in the offline demo, has nothing else to offer).
    """
    return [r for r in ranked if r["image_id"] not in references or r["pool"] == "both"]


def rank_images(rows: Sequence[dict], score: Score, batch: int = 32) -> dict[str, list[dict]]:
    """Per target, the rows by descending score (ties by image_id, so the order is deterministic)."""
    scores: dict[str, list[float]] = {}
    for start in range(0, len(rows), batch):
        images = []
        for row in rows[start : start + batch]:
            with Image.open(row["path"]) as im:
                images.append(im.convert("RGB"))
        for target, values in score(images).items():
            scores.setdefault(target, []).extend(float(v) for v in values)
    return {
        target: [rows[i] for i in sorted(range(len(rows)), key=lambda i: (-values[i], rows[i]["image_id"]))]
        for target, values in scores.items()
    }


def model_scorer(model_name: str, weights: str | None = None) -> ScorerFactory:
    """Scores from the model registry: the class logit, or a channel's spatial mean activation.

    The model is loaded on first use, so a study whose inputs are incomplete fails on that first.
    """

    @cache
    def loaded():
        from vitalstudy.models import get_spec, load_model

        return get_spec(model_name), load_model(model_name, weights=weights)

    def for_targets(targets: dict[str, dict]) -> Score:
        units = {t: t.rpartition("_c") for t, meta in targets.items() if meta.get("kind") != "class"}
        layers = sorted({layer for layer, _, _ in units.values()})

        def score(images: list[Image.Image]) -> dict[str, list[float]]:
            import torch

            from vitalstudy.models.features import capture_outputs, channel_means

            spec, model = loaded()
            batch = torch.stack([spec.preprocess(im) for im in images])
            with torch.no_grad(), capture_outputs(model, layers) as captured:
                logits = model(batch)
            out = {t: logits[:, int(m["class_index"])].tolist() for t, m in targets.items() if t not in units}
            for t, (layer, _, channel) in units.items():
                out[t] = channel_means(captured[layer])[:, int(channel)].tolist()
            return out

        return score

    return for_targets
