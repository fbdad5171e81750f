"""Natural query images for 2AFC trials, ranked by how strongly they drive a unit.

Zimmermann et al. (2021) ask which of two natural images activates a unit more: one drawn from the
unit's most activating images, one from its least. Ranking needs the model; it is injected as a
``score(images) -> list[float]`` callable per target so the selection logic is testable without one.
The target's own reference images are left out where the index allows: FVs were matched to them,
so querying with them would favour methods that use references.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from PIL import Image

from vitalstudy.errors import VitalStudyError

Score = Callable[[list[Image.Image]], list[float]]
ScorerFactory = Callable[[str, dict], Score]  # (target id, stage-1 target object) -> score


def query_candidates(rows: Sequence[dict], references: set[str]) -> list[dict]:
    """Index rows that may serve as queries for a target with these reference image ids.

    Reference-only images never do; the target's own references only when the index marks them
    `both` (a class with a single image, as in the offline demo, has nothing else to offer).
    """
    return [r for r in rows if r["pool"] != "reference" and (r["image_id"] not in references or r["pool"] == "both")]


def read_index(run_dir: Path) -> list[dict]:
    """Rows of ``00_index/images.csv`` (image_id, path, wnid, ...)."""
    path = run_dir / "00_index" / "images.csv"
    if not path.exists():
        raise VitalStudyError(f"{path}: missing; 2AFC query images come from the run's image index")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def rank_images(rows: Sequence[dict], score: Score, batch: int = 32) -> list[dict]:
    """Rows sorted by descending score (ties by image_id, so the order is deterministic)."""
    scores: list[float] = []
    for start in range(0, len(rows), batch):
        images = []
        for row in rows[start : start + batch]:
            with Image.open(row["path"]) as im:
                images.append(im.convert("RGB"))
        scores.extend(float(s) for s in score(images))
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]["image_id"]))
    return [rows[i] for i in order]


def model_scorer(model_name: str, weights: str | None = None) -> ScorerFactory:
    """Scores from the model registry: the class logit, or a channel's spatial mean activation.

    The model is loaded on first use, so a study whose inputs are incomplete fails on that first.
    """

    @cache
    def loaded():
        from vitalstudy.models import get_spec, load_model

        return get_spec(model_name), load_model(model_name, weights=weights)

    def for_target(target: str, meta: dict) -> Score:
        def score(images: list[Image.Image]) -> list[float]:
            import torch

            from vitalstudy.models.features import capture_outputs, channel_means

            spec, model = loaded()
            batch = torch.stack([spec.preprocess(im) for im in images])
            with torch.no_grad():
                if meta.get("kind") == "class":
                    return model(batch)[:, int(meta["class_index"])].tolist()
                layer, _, channel = target.rpartition("_c")
                with capture_outputs(model, [layer]) as captured:
                    model(batch)
                return channel_means(captured[layer])[:, int(channel)].tolist()

        return score

    return for_target
