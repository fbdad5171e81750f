"""The images metrics read: stage-2 feature visualizations, checked against the file contract
(docs/contracts.md) on load, and the run's natural images of the metric pool.

A metric must never score an image that is not what it claims to be (an RGBA file, another size,
a sidecar written for another target), so any breach raises InvalidImageError naming the file and
the field. Which FVs a run has is decided here once (`planned_images`, from the `generate` config),
for both the Snakemake rules (their inputs) and the commands (what they load).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import runs_kind
from vitalstudy.layout import FVLayout
from vitalstudy.models.registry import ModelSpec

SIDECAR_FIELDS = ("model", "method", "target", "seed", "resolution", "hyperparameters", "compute", "versions")
COMPUTE_FIELDS = ("steps", "forward_passes", "backward_passes", "seconds", "device")
METRIC_POOLS = ("metric", "both")


class InvalidImageError(VitalStudyError):
    """An FV file or sidecar that breaks the stage-2 contract; the message names file and field."""


@dataclass(frozen=True)
class FVKey:
    """One FV of a model: `02_fv/<model>/<method>/<target>/seed<seed>.png`."""

    method: str
    target: str
    seed: int

    def png(self, fv_root: str | Path, model: str) -> Path:
        return FVLayout(Path(fv_root)).png(model, self.method, self.target, self.seed)

    def sidecar(self, fv_root: str | Path, model: str) -> Path:
        return FVLayout(Path(fv_root)).sidecar(model, self.method, self.target, self.seed)


@dataclass
class FVImage:
    key: FVKey
    path: Path
    image: Image.Image  # RGB
    sidecar: dict


def planned_images(generate_cfg: dict, spec: ModelSpec, class_targets: list[str],
                   neuron_targets: list[str]) -> list[FVKey]:
    """Every FV stage 2 writes for this model: generate.methods x targets x generate.seeds, less the
    (method, target kind) pairs the model cannot run (fv.registry) or the config does not
    (generate.target_kinds)."""
    keys = []
    for method in generate_cfg["methods"]:
        for kind, targets in (("class", class_targets), ("neuron", neuron_targets)):
            if runs_kind(generate_cfg, method, kind) and get_method(method).not_applicable(spec, kind) is None:
                keys += [FVKey(method, t, s) for t in targets for s in generate_cfg["seeds"]]
    return keys


def _fail(path: Path, field: str, problem: str) -> InvalidImageError:
    return InvalidImageError(f"{path}: {field}: {problem} (stage-2 contract, docs/contracts.md)")


def _expected_size(sidecar_path: Path, resolution) -> tuple[int, int]:
    if isinstance(resolution, int) and not isinstance(resolution, bool) and resolution > 0:
        return resolution, resolution
    if (isinstance(resolution, list) and len(resolution) == 2
            and all(isinstance(r, int) and r > 0 for r in resolution)):
        return resolution[0], resolution[1]
    raise _fail(sidecar_path, "resolution", f"{resolution!r} is neither a positive int nor [width, height]")


def read_sidecar(path: Path, model: str, key: FVKey) -> dict:
    """The sidecar JSON, with every contract field present and agreeing with the file's place."""
    if not path.is_file():
        raise _fail(path, "sidecar", "missing: every FV PNG needs its seed<k>.json beside it")
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, "sidecar", f"not valid JSON ({exc})") from None
    if not isinstance(sidecar, dict):
        raise _fail(path, "sidecar", "the top level must be an object")
    for field in SIDECAR_FIELDS:
        if field not in sidecar:
            raise _fail(path, field, "missing")
    expected = {"model": model, "method": key.method, "seed": key.seed}
    for field, value in expected.items():
        if sidecar[field] != value:
            raise _fail(path, field, f"is {sidecar[field]!r} but the file's path says {value!r}")
    target = sidecar["target"]
    if not isinstance(target, dict) or "kind" not in target or "id" not in target:
        raise _fail(path, "target", "must be an object with 'kind' and 'id' (as in stage 1)")
    if target["id"] != key.target:
        raise _fail(path, "target.id", f"is {target['id']!r} but the file's path says {key.target!r}")
    compute = sidecar["compute"]
    if not isinstance(compute, dict):
        raise _fail(path, "compute", "must be an object")
    for field in COMPUTE_FIELDS:
        if field not in compute:
            raise _fail(path, f"compute.{field}", "missing")
    if not isinstance(sidecar["hyperparameters"], dict):
        raise _fail(path, "hyperparameters", "must be an object")
    return sidecar


def load_fv(fv_root: str | Path, model: str, key: FVKey) -> FVImage:
    """Load one FV and its sidecar, or raise InvalidImageError naming the file and the field at fault."""
    png = key.png(fv_root, model)
    sidecar_path = key.sidecar(fv_root, model)
    if not png.is_file():
        raise _fail(png, "file", "missing")
    sidecar = read_sidecar(sidecar_path, model, key)
    try:
        with Image.open(png) as handle:
            handle.load()
            image_format, mode, size = handle.format, handle.mode, handle.size
            image = handle.copy()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _fail(png, "file", f"unreadable image ({type(exc).__name__}: {exc})") from None
    if image_format != "PNG":
        raise _fail(png, "format", f"is {image_format}, expected PNG")
    if mode != "RGB":
        raise _fail(png, "mode", f"is {mode!r}, expected 'RGB' (8-bit, no alpha; alpha goes to seed<k>_alpha.png)")
    width, height = _expected_size(sidecar_path, sidecar["resolution"])
    if size != (width, height):
        raise _fail(png, "size", f"is {size[0]}x{size[1]} but the sidecar's resolution says {width}x{height}")
    return FVImage(key, png, image, sidecar)


def load_fvs(fv_root: str | Path, model: str, keys: list[FVKey]) -> list[FVImage]:
    return [load_fv(fv_root, model, key) for key in keys]


def natural_images(index: pd.DataFrame, wnids: list[str]) -> pd.DataFrame:
    """The run's metric-pool images of these classes (kept apart from reference images by stage 0)."""
    rows = index[index["pool"].isin(METRIC_POOLS) & index["wnid"].isin(wnids)]
    return rows.sort_values(["wnid", "image_id"]).reset_index(drop=True)
