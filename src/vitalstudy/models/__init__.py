"""Model registry: one place that knows each model (see registry.py)."""

from vitalstudy.models.loading import build_model, load_model
from vitalstudy.models.registry import REGISTRY, HookedLayer, ModelSpec, RelevanceSupport, get_spec

__all__ = ["REGISTRY", "HookedLayer", "ModelSpec", "RelevanceSupport", "build_model", "get_spec", "load_model"]
