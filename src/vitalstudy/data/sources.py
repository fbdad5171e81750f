"""Image sources and the run's image index.

Three sources: `bundled` (real photos that installed packages ship, mapped to ImageNet classes in
bundled.yaml), `folder` (flat `<wnid>_*.JPEG` files, like the 1000-image ImageNet sample) and
`imagenet` (`train/<wnid>/*`, `val/<wnid>/*`). The class ids are ImageNet-1k's WordNet ids and the
ids of the run's labels files (`images.labels_files`, models whose outputs are other classes). The
index assigns every image to the reference pool or the metric pool, so that images used as
references are never the ones metrics are computed on
(impossible when a class has one image: it is then marked `both` and the reference JSON says so).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml
from PIL import Image, ImageOps, UnidentifiedImageError

from vitalstudy.data.classes import ClassList, imagenet_classes, read_labels_file
from vitalstudy.errors import ConfigError, VitalStudyError
from vitalstudy.seeding import rng as seeded_rng

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}
INDEX_COLUMNS = ["image_id", "path", "wnid", "class_index", "source", "split", "pool"]


class UnreadableImageError(VitalStudyError):
    """An image file that cannot be decoded; the message names the path."""


@dataclass(frozen=True)
class SourceImage:
    image_id: str
    path: str
    wnid: str
    source: str
    split: str  # train | val | none


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully as RGB, or raise UnreadableImageError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None


def original_view() -> dict:
    """A source image as it is (no crop, no flip). Views live with the sources because every stage that
    reads a reference (selection, generation, metrics) applies them."""
    return {"kind": "original", "crop_box": None, "flip": False}


def apply_view(image: Image.Image, view: dict) -> Image.Image:
    """The reference image as matched: the recorded crop and flip applied to the source pixels."""
    if view.get("crop_box"):
        image = image.crop(tuple(view["crop_box"]))
    if view.get("flip"):
        image = ImageOps.mirror(image)
    return image


@lru_cache(maxsize=1)
def bundled_manifest() -> list[dict]:
    text = resources.files("vitalstudy.data").joinpath("bundled.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["images"]


def _bundled_images() -> list[SourceImage]:
    images = []
    for entry in bundled_manifest():
        try:
            package = importlib.import_module(entry["package"])
        except ImportError:
            raise ConfigError(
                f"images.source=bundled: the photo {entry['id']} ships with the Python package "
                f"{entry['package']!r}, which is not installed") from None
        path = Path(package.__file__).parent / entry["resource"]
        images.append(SourceImage(entry["id"], str(path), entry["wnid"], "bundled", "none"))
    return images


def _class_of_file(name: str, known) -> str | None:
    """The class id a file `<id>_*.jpg` (or `<id>.jpg`) names: the longest known id the name starts
    with, followed by '_' or '.' (ids of a labels file may themselves hold '_' and '.')."""
    cuts = [i for i, ch in enumerate(name) if ch in "_."]
    return next((name[:i] for i in reversed(cuts) if name[:i] in known), None)


def _folder_images(root: Path, known) -> list[SourceImage]:
    images = []
    for path in sorted(root.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        class_id = _class_of_file(path.name, known)
        if class_id is not None:
            images.append(SourceImage(path.stem, str(path.resolve()), class_id, "folder", "none"))
    if not images:
        raise ConfigError(f"images.path: {root} holds no images named <class id>_*.JPEG")
    return images


def _imagenet_images(root: Path, classes) -> list[SourceImage]:
    images = []
    for split in ("train", "val"):
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for class_dir in sorted(split_dir.iterdir()):
            if class_dir.name not in classes or not class_dir.is_dir():
                continue
            with os.scandir(class_dir) as entries:
                names = sorted(e.name for e in entries if Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
            images += [SourceImage(f"{split}/{class_dir.name}/{n}", str((class_dir / n).resolve()),
                                   class_dir.name, "imagenet", split) for n in names]
    return images


def run_classes(images_config: dict) -> list[ClassList]:
    """The class lists whose ids name image classes: ImageNet-1k, then each labels file's."""
    return [imagenet_classes(), *(read_labels_file(p) for p in images_config.get("labels_files") or {})]


def list_images(source: str, path: str | None, classes: list[ClassList] | None = None) -> list[SourceImage]:
    if source == "bundled":
        return _bundled_images()
    root = Path(path or "")
    if not root.is_dir():
        raise ConfigError(f"images.path: directory {root} does not exist")
    known = {c for listed in classes or [imagenet_classes()] for c in listed.ids}
    return _folder_images(root, known) if source == "folder" else _imagenet_images(root, known)


def _assign_pools(frame: pd.DataFrame, metric_fraction: float, seed: int) -> pd.Series:
    """Seeded per-class split into reference and metric pools (val/ is the metric pool for ImageNet)."""
    rng = seeded_rng(seed, "index-pools")
    pool = pd.Series("reference", index=frame.index, dtype=object)
    if (frame["split"] == "val").any():
        pool[frame["split"] == "val"] = "metric"
        return pool
    for _, rows in frame.groupby("wnid", sort=True):
        if len(rows) == 1:
            pool[rows.index] = "both"
            continue
        n_metric = max(1, int(round(len(rows) * metric_fraction)))
        pool[rng.choice(rows.index.to_numpy(), size=n_metric, replace=False)] = "metric"
    return pool


def build_index(images_config: dict, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's image index and the list of skipped files (`path`, `reason`). `class_index`: the
    id's index in the first class list holding it (ImageNet-1k's, else its labels file's); stages
    take a model's output index from that model's own class list."""
    lists = run_classes(images_config)
    images = list_images(images_config["source"], images_config.get("path"), lists)
    skipped = []
    if images_config.get("verify", True):
        kept = []
        for image in images:
            try:
                with Image.open(image.path) as handle:
                    handle.verify()
                kept.append(image)
            except Exception as exc:  # PIL raises many types for corrupt data
                skipped.append({"path": image.path, "reason": f"unreadable image ({type(exc).__name__}: {exc})"})
        images = kept
    frame = pd.DataFrame([asdict(i) for i in images], columns=["image_id", "path", "wnid", "source", "split"])
    frame["class_index"] = [next(c.index(w) for c in lists if w in c) for w in frame["wnid"]]
    frame["pool"] = _assign_pools(frame, images_config.get("metric_fraction", 0.2), seed)
    return frame[INDEX_COLUMNS], pd.DataFrame(skipped, columns=["path", "reason"])


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str, "path": str, "wnid": str, "split": str, "pool": str})
