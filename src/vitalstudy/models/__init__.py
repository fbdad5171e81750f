"""Model registry: one place that knows each model (see registry.py). Building and loading
(`build_model`, `load_model`) import torch on first use, so that what only plans (the workflow,
config validation) reads the registry without it."""

from vitalstudy.models.registry import REGISTRY, HookedLayer, ModelSpec, RelevanceSupport, get_spec

__all__ = ["REGISTRY", "HookedLayer", "ModelSpec", "RelevanceSupport", "build_model", "get_spec", "load_model"]


def __getattr__(name: str):
    if name in ("build_model", "load_model"):
        from vitalstudy.models import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
