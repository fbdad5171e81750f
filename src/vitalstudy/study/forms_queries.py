"""Natural query images for 2AFC trials, ranked by how strongly they drive a unit.

Zimmermann et al. (2021) ask which of two natural images activates a unit more: one drawn from the
unit's most activating images, one from its least. Ranking needs the model; it is injected as a
``score(images) -> list[float]`` callable per target so the selection logic is testable without one.
The target's own reference images are left out: FVs were matched to them, so querying with them
would favour methods that use references.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from vitalstudy.errors import VitalStudyError

Score = Callable[[list[Image.Image]], list[float]]
ScorerFactory = Callable[[str, dict], Score]  # (target id, stage-1 target object) -> score


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


def model_scorer(model_name: str) -> ScorerFactory:
    """Scores from the model registry: the class logit, or a channel's spatial mean activation."""
    import torch

    from vitalstudy.models import get_spec, load_model

    spec = get_spec(model_name)
    model = load_model(model_name, weights=None)
    modules = dict(model.named_modules())

    def for_target(target: str, meta: dict) -> Score:
        layer, _, channel = target.rpartition("_c")
        is_class = meta.get("kind") == "class"

        def score(images: list[Image.Image]) -> list[float]:
            batch = torch.stack([spec.preprocess(im) for im in images])
            if is_class:
                index = int(meta["class_index"])
                with torch.no_grad():
                    return model(batch)[:, index].tolist()
            if layer not in modules:
                raise VitalStudyError(f"target {target}: model {model_name} has no layer '{layer}'")
            captured = []
            handle = modules[layer].register_forward_hook(lambda m, i, o: captured.append(o))
            try:
                with torch.no_grad():
                    model(batch)
            finally:
                handle.remove()
            return captured[0][:, int(channel)].flatten(1).mean(1).tolist()

        return score

    return for_target
