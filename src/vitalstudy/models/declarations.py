"""Model declarations: how a config (or the built-in registry) says which model to build and how
VITAL uses it, and how the missing pieces are inferred from the architecture itself.

A declaration is a mapping with the keys of `models.declare.<name>` in the config schema. What it
leaves out (null) is inferred from one forward pass of the untrained architecture: the stem
convolution and the last module at each spatial resolution are hooked (ResNet's conv1 and
layer1..layer4, the layers the paper matches), the last of them is the "last hidden layer" of inner
neurons, the classifier is the final linear layer. timm's `feature_info` and `pretrained_cfg` and
torchvision's weights metadata give the stage ends and the preprocessing where they exist.
`resolve_declaration` returns the complete declaration, so the resolved config says everything.
"""

from __future__ import annotations

import difflib
import importlib
import json
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from vitalstudy.errors import ConfigError

SOURCES = ("torchvision", "timm", "import", "efficientnet_lite")
PREPROCESSING_PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # inputs scaled to [-1, 1]
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # pixels in [0, 1] as they are
}
# zennit canonizers vitalstudy.fv.relevance builds, and the torchvision architectures they fit.
RELEVANCE_CANONIZERS = ("resnet", "densenet", "efficientnet_lite")
_TORCHVISION_RESNETS = ("resnet", "wide_resnet", "resnext")
FIRST_NEURON_LAYER_WEIGHT = 0.1  # the stem's weight for inner neurons (the registry's convention)


def nearest(name: str, candidates, n: int = 3) -> str:
    """'a, b, c': the closest valid names to a wrong one (difflib), for one-line errors."""
    scored = sorted((-difflib.SequenceMatcher(None, name, c).ratio(), c) for c in set(candidates))
    found = [c for score, c in scored if -score >= 0.4][:n]  # ties in name order
    return ", ".join(found) if found else "none close"


def layer_error(key: str, model: str, layer: str, names) -> ConfigError:
    return ConfigError(f"{key}: {model} has no layer {layer!r}; nearest: {nearest(layer, names)} "
                       f"(all names: vitalstudy layers {model})")


# --------------------------------------------------------------------------- building

def _import_factory(path: str, key: str):
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{key}: {path!r} is not an import path 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{key}: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"{key}: {module_name} has no callable {attribute!r}")
    return factory


@lru_cache(maxsize=1)
def torchvision_classifiers() -> list[str]:
    """The classification models torchvision builds by name."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def build_architecture(name: str, decl: dict) -> nn.Module:
    """The declared architecture without loading weights (a factory builds what it builds)."""
    source, arch, kwargs = decl["source"], decl.get("architecture") or name, dict(decl.get("kwargs") or {})
    key = f"models.declare.{name}"
    if source == "torchvision":
        import torchvision

        if arch not in torchvision_classifiers():
            raise ConfigError(f"{key}.architecture: {arch!r} is not a torchvision classification model; nearest: "
                              f"{nearest(arch, torchvision_classifiers())}")
        return torchvision.models.get_model(arch, weights=None, **kwargs)
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise ConfigError(f"{key}.source: timm is not installed: pip install 'vitalstudy[timm]'") from None
        if not timm.is_model(arch):
            raise ConfigError(f"{key}.architecture: {arch!r} is not a timm model; nearest: "
                              f"{nearest(arch, timm.list_models())}")
        return timm.create_model(arch, pretrained=False, **kwargs)
    if source == "import":
        if not decl.get("factory"):
            raise ConfigError(f"{key}.factory: required when source is 'import' ('package.module:factory')")
        model = _import_factory(decl["factory"], f"{key}.factory")(**kwargs)
        if not isinstance(model, nn.Module):
            raise ConfigError(f"{key}.factory: {decl['factory']} returned {type(model).__name__}, not a torch nn.Module")
        return model
    if source == "efficientnet_lite":
        from efficientnet_lite_pytorch import EfficientNet

        from vitalstudy.models.efficientnet_lite import EfficientNetLite

        return EfficientNetLite(EfficientNet.from_name(f"efficientnet-{arch}"))
    raise ConfigError(f"{key}.source: {source!r} is not one of {', '.join(SOURCES)}")


# --------------------------------------------------------------------------- one forward pass

@dataclass(frozen=True)
class LayerInfo:
    """A module the forward pass ran: its name, type and (last) output shape, in finishing order."""

    name: str
    type: str
    shape: tuple[int, ...] | None  # None: the output is not one tensor


def trace_layers(model: nn.Module, input_size: int) -> tuple[list[LayerInfo], torch.Tensor]:
    """Every named module's output shape on one (1, 3, S, S) input, in the order they finish
    (a module called twice keeps its last call), and the model's output."""
    finished: dict[str, LayerInfo] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, _inputs, output, name=name):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            finished.pop(name, None)
            finished[name] = LayerInfo(name, type(mod).__name__, shape)
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        with torch.no_grad():
            output = model(torch.zeros(1, 3, input_size, input_size, device=device))
    except Exception as exc:  # a model that cannot take this input: say which size was tried
        raise ConfigError(f"the model does not run on a (1, 3, {input_size}, {input_size}) input "
                          f"({type(exc).__name__}: {str(exc)[:200]}); set input_size") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return list(finished.values()), output


def _stage_ends(layers: list[LayerInfo]) -> list[str]:
    """The last module to finish at each spatial resolution above 1x1 (outermost first when a
    block and its last child end together, since the block finishes after its child)."""
    ends: dict[tuple[int, int], str] = {}
    for layer in layers:
        if layer.shape is not None and len(layer.shape) == 4 and layer.shape[2] * layer.shape[3] > 1:
            ends.pop(layer.shape[2:], None)
            ends[layer.shape[2:]] = layer.name
    return list(ends.values())


def _infer_class_layers(name: str, model: nn.Module, layers: list[LayerInfo]) -> list[str]:
    by_name = {layer.name: layer for layer in layers}
    convs = [l for l in layers if l.type == "Conv2d" and l.shape is not None and len(l.shape) == 4]
    if not convs:
        raise ConfigError(f"models.declare.{name}.class_layers: cannot be inferred ({name} has no convolutional "
                          f"feature maps); give the layers to match (see `vitalstudy layers {name}`)")
    stem = convs[0]
    feature_info = getattr(model, "feature_info", None)  # timm knows its own stage ends
    if feature_info is not None and hasattr(feature_info, "module_name"):
        ends = [n for n in feature_info.module_name() if n in by_name]
    else:
        ends = _stage_ends(layers)
    ends = [n for n in ends if by_name[n].shape is not None and len(by_name[n].shape) == 4
            and by_name[n].shape[2:] != stem.shape[2:] and n != stem.name]
    if not ends:
        raise ConfigError(f"models.declare.{name}.class_layers: cannot be inferred (no feature maps after the "
                          f"stem {stem.name}); give them (see `vitalstudy layers {name}`)")
    return [stem.name] + ends


def _infer_classifier(name: str, model: nn.Module, layers: list[LayerInfo], output: torch.Tensor) -> str:
    modules = dict(model.named_modules())
    get_classifier = getattr(model, "get_classifier", None)  # timm
    if callable(get_classifier):
        head = get_classifier()
        found = [n for n, m in modules.items() if m is head and n]
        if found:
            return found[0]
    linears = [l.name for l in layers if isinstance(modules[l.name], nn.Linear)
               and l.shape is not None and output.dim() == 2 and l.shape[-1] == output.shape[-1]]
    if not linears:
        raise ConfigError(f"models.declare.{name}.classifier: cannot be inferred (no linear layer gives the "
                          f"model's {tuple(output.shape)} output); give the final linear layer's name")
    return linears[-1]


def _infer_preprocessing(name: str, decl: dict, model: nn.Module) -> tuple[list, list, int, int]:
    """(mean, std, input_size, resize_size) from the library's metadata, else ImageNet's at 224."""
    source, arch = decl["source"], decl.get("architecture") or name
    mean, std = PREPROCESSING_PRESETS["imagenet"]
    size, resize = 224, 256
    if source == "torchvision":
        from torchvision.models import get_model_weights

        try:
            weights = get_model_weights(arch)
            member = weights[decl["weights"]] if decl.get("weights") in weights.__members__ else weights.DEFAULT
            transforms = member.transforms()
            mean, std = tuple(transforms.mean), tuple(transforms.std)
            size, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
        except (ValueError, KeyError, AttributeError, TypeError):
            pass  # no weights metadata for this architecture: ImageNet's
    elif source == "timm":
        from timm.data import resolve_data_config

        data = resolve_data_config({}, model=model)
        mean, std, size = tuple(data["mean"]), tuple(data["std"]), int(data["input_size"][-1])
        resize = int(round(size / data.get("crop_pct", 0.875)))
    return list(mean), list(std), size, resize


def _infer_relevance(decl: dict, arch: str, model: nn.Module) -> dict:
    if decl["source"] == "torchvision" and arch.startswith(_TORCHVISION_RESNETS):
        return {"composite": "epsilon_plus_flat", "canonizer": "resnet",
                "reason": "zennit EpsilonPlusFlat with ResNetCanonizer (torchvision ResNet blocks)"}
    kinds = {type(m).__name__ for m in model.modules()}
    if kinds & {"LayerNorm", "MultiheadAttention", "Attention"}:
        reason = "zennit has no canonizer for LayerNorm and attention, so LRP relevance is not faithful here"
    else:
        reason = (f"no zennit canonizer is known to be faithful for this {decl['source']} architecture; declare "
                  f"relevance.composite and relevance.canonizer ({', '.join(RELEVANCE_CANONIZERS)}) to enable vital_lrp")
    return {"composite": None, "canonizer": None, "reason": reason}


def _preprocessing_values(name: str, preprocessing) -> tuple[list, list]:
    if isinstance(preprocessing, str):
        if preprocessing not in PREPROCESSING_PRESETS:
            raise ConfigError(f"models.declare.{name}.preprocessing: unknown preset {preprocessing!r}; "
                              f"known: {', '.join(PREPROCESSING_PRESETS)}")
        mean, std = PREPROCESSING_PRESETS[preprocessing]
        return list(mean), list(std)
    return list(preprocessing["mean"]), list(preprocessing["std"])


def _check_class_count(name: str, labels: str | None, output: torch.Tensor) -> None:
    """The class list names every output: ImageNet-1k's 1000, or one line of the labels file each."""
    from pathlib import Path

    from vitalstudy.data.classes import IMAGENET, imagenet_classes, read_labels_file

    if labels and not Path(labels).is_file():
        return  # a dry run without the data: the job that reads it says so
    try:
        classes = read_labels_file(labels) if labels else imagenet_classes()
    except ConfigError as exc:
        raise ConfigError(f"models.declare.{name}.classes: {exc}") from None
    outputs = output.shape[-1] if output.dim() == 2 else None
    if outputs is not None and outputs != len(classes):
        where = f"{labels} has {len(classes)} classes" if labels else f"without it the classes are {IMAGENET}'s 1000"
        raise ConfigError(f"models.declare.{name}.classes: {name} has {outputs} outputs but {where}"
                          + ("" if labels else "; give a labels file with one line per output"))


def resolve_declaration(name: str, decl: dict, model: nn.Module | None = None) -> dict:
    """The complete declaration: every null key inferred, every layer name checked against the
    architecture's real module names (a wrong one is a one-line ConfigError naming the key and the
    nearest valid names). `model`: the architecture when the caller has built it already."""
    decl = json.loads(json.dumps(decl))  # a copy, plain JSON values
    decl.setdefault("source", "torchvision")
    model = model if model is not None else build_architecture(name, decl)
    arch = decl.get("architecture") or name
    mean, std, size, resize = _infer_preprocessing(name, decl, model)
    if decl.get("preprocessing") is not None:
        mean, std = _preprocessing_values(name, decl["preprocessing"])
    decl["preprocessing"] = {"mean": mean, "std": std}
    if decl.get("input_size") is None:
        decl["input_size"] = size
    if decl.get("resize_size") is None:
        decl["resize_size"] = max(decl["input_size"], round(decl["input_size"] * resize / size))
    layers, output = trace_layers(model, decl["input_size"])
    names = [l.name for l in layers]
    modules = {n for n, _ in model.named_modules() if n}
    for key in ("class_layers", "neuron_layers"):
        for layer in decl.get(key) or {}:
            if layer not in modules:
                raise layer_error(f"models.declare.{name}.{key}", name, layer, names)
    for key in ("neuron_layer", "classifier"):
        if decl.get(key) is not None and decl[key] not in modules:
            raise layer_error(f"models.declare.{name}.{key}", name, decl[key], names)
    if decl.get("class_layers") is None:
        decl["class_layers"] = dict.fromkeys(_infer_class_layers(name, model, layers), 1.0)
    class_names = list(decl["class_layers"])
    if decl.get("neuron_layer") is None:
        decl["neuron_layer"] = class_names[-1]
    if decl.get("neuron_layers") is None:
        below = class_names[:-1] if class_names[-1] == decl["neuron_layer"] else class_names
        decl["neuron_layers"] = {n: (FIRST_NEURON_LAYER_WEIGHT if i == 0 else 1.0) for i, n in enumerate(below)}
    if decl.get("classifier") is None:
        decl["classifier"] = _infer_classifier(name, model, layers, output)
    _check_class_count(name, decl.get("classes"), output)
    decl.setdefault("class_aux_weight", 0.0)
    if decl.get("has_batchnorm") is None:
        decl["has_batchnorm"] = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if decl.get("relevance") is None:
        decl["relevance"] = _infer_relevance(decl, arch, model)
    decl.setdefault("kwargs", {})
    decl.setdefault("weights", None)
    return decl
