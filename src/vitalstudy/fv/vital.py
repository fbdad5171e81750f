"""VITAL: match per-channel feature distributions of real references (PAPER_NOTES §1).

Two methods share this module:
- `vital`: activations at the registry's hooked layers (class neurons: `class_layers`; inner
  neurons: `neuron_layers`, with the neuron's top-k images as references);
- `vital_lrp`: relevance-weighted activations `A ⊙ W`, where W is the relevance for the target
  (class logit, channel or concept direction; `relevance.py`) min-max normalised per (image,
  channel). As in the authors' code, each channel's squared sort-matching error is multiplied by
  the channel's importance: the spatial max of a reference's relevance, min-max normalised over
  channels per reference, averaged over the references (a linear weight; `importance.applied_to:
  features` and `importance.normalised: after_mean` are the other readings). The synthetic
  image's relevance is recomputed every step and treated as a constant weight (no gradient
  through the attribution).

Reference statistics (prototype quantiles and channel importance) are computed once per target and
cached on disk, so every seed and every step reuses them.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path

import torch

from vitalstudy.data.sources import apply_view, load_rgb
from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.plan import Plan, loop_settings
from vitalstudy.fv.pixels import NormalisedPixels, RollJitter
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.relevance import RelevanceMaps, Start, minmax
from vitalstudy.layout import RunLayout
from vitalstudy.fv.sortmatch import as_channels_by_positions, prototype, sort_match_loss
from vitalstudy.models.features import capture_outputs, capture_pre_activation, channel_means
from vitalstudy.models.registry import HookedLayer, ModelSpec
from vitalstudy.targets import Target


def reference_batch(spec: ModelSpec, references: list[dict]) -> torch.Tensor:
    """Reference views as the model sees them: recorded crop/flip, then the model's preprocessing."""
    return torch.stack([spec.preprocess(apply_view(load_rgb(r["path"]), r["view"])) for r in references])


class VitalObjective:
    """Weighted sort-matching over the hooked layers, one prototype per batch item.

    With relevance, an image whose target has no relevance at all (its channel is inactive on the
    synthetic image, e.g. a dead ReLU on the noise start) gets no sort-matching gradient, in the
    authors' code as here; `diagnostics` counts those steps per image so the sidecar and the log
    say so instead of leaving a flat loss trace to be found. Two readings that are not the authors'
    (`dead_relevance`) act on such an image until its target turns on: `match_activations` gives it
    weights of 1 (plain activation matching); `activate_target` adds minus its target's activation
    (the class logit, or the channel mean before the layer's closing ReLU, which has a gradient
    where the ReLU's output has none)."""

    def __init__(self, model, layers: list[HookedLayer], prototypes: dict[str, torch.Tensor],
                 relevance: RelevanceMaps | None = None, start: Start | None = None,
                 importance: dict[str, torch.Tensor] | None = None, importance_on: str = "error",
                 dead_relevance: str = "no_gradient"):
        self.model, self.layers, self.prototypes = model, layers, prototypes
        self.relevance, self.start, self.importance, self.importance_on = relevance, start, importance, importance_on
        self.dead_relevance = dead_relevance
        self.calls, self.zero_relevance = 0, None  # steps seen; per image, steps with no relevance (on device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        names = [layer.name for layer in self.layers]
        on_features = self.importance if self.importance_on == "features" else None
        weights = relevance_weights(self.relevance, x, names, self.start, on_features) if self.relevance else None
        if weights is not None:  # counted where the weights live: no device sync per step
            alive = torch.stack([w.flatten(1).amax(dim=1) > 0 for w in weights.values()]).any(dim=0)
            dead = (~alive).long()
            self.zero_relevance = dead if self.zero_relevance is None else self.zero_relevance + dead
            self.calls += 1
            if self.dead_relevance == "match_activations":
                weights = {n: _unit_where(~alive, w, on_features[n] if on_features else None)
                           for n, w in weights.items()}
        wake = weights is not None and self.dead_relevance == "activate_target"
        with capture_outputs(self.model, names) as acts, \
                (capture_pre_activation(self.model, self.start.layer) if wake and self.start.layer else nullcontext({})) as pre:
            logits = self.model(x)
        total = torch.zeros(x.shape[0], device=x.device)
        if wake:
            total = total - (~alive).to(total) * _target_activation(self.start, logits, pre)
        for layer in self.layers:
            features = acts[layer.name] if weights is None else acts[layer.name] * weights[layer.name]
            on_error = None if self.importance is None or self.importance_on != "error" else self.importance[layer.name]
            total = total + layer.weight * sort_match_loss(as_channels_by_positions(features),
                                                           self.prototypes[layer.name], on_error)
        return total

    def diagnostics(self) -> list[dict] | None:
        """Per image: steps (of this run) in which its target had no relevance on it; None without relevance."""
        if self.zero_relevance is None:
            return None
        return [{"zero_relevance_steps": int(n), "steps": self.calls} for n in self.zero_relevance.tolist()]


def _target_activation(start: Start, logits: torch.Tensor, pre: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per image, the activation its relevance starts from: the class logit or the channel mean
    (pre-activation where the layer closes with a ReLU)."""
    index = torch.tensor(start.indices, device=logits.device)
    rows = torch.arange(len(index), device=logits.device)
    source = logits if start.kind == "class" else channel_means(pre[start.layer])
    return source[rows, index]


def _unit_where(dead: torch.Tensor, weights: torch.Tensor, importance: torch.Tensor | None) -> torch.Tensor:
    """`weights` with the images in `dead` (B,) set to 1 (times `importance` when the features
    reading carries it in the weights); a select, not a branch, so no device sync."""
    unit = torch.ones_like(weights)
    if importance is not None:
        unit = unit * _per_channel(importance, unit)
    return torch.where(dead.view(-1, *[1] * (weights.dim() - 1)), unit, weights)


def _per_channel(importance: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, C) importance shaped to broadcast over `like`: (B, C, H, W) maps or (B, tokens, C)."""
    shape = (-1, like.shape[1], 1, 1) if like.dim() == 4 else (-1, 1, like.shape[2])
    return importance.to(like).view(shape)


def relevance_weights(relevance: RelevanceMaps, x: torch.Tensor, names: list[str], start: Start,
                      importance: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """W = min-max(relevance) per (image, channel), times `importance` when given (the features reading)."""
    return weights_from_relevance(relevance(x, names, start), importance)


def _position_dims(r: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, r.dim())) if r.dim() == 4 else (1,)


def weights_from_relevance(raw: dict[str, torch.Tensor],
                           importance: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    weights = {}
    for name, r in raw.items():
        w = minmax(r, dim=_position_dims(r))
        if importance is not None:
            w = w * _per_channel(importance[name], w)
        weights[name] = w.detach()
    return weights


IMPORTANCE_ON = ("error", "features")
IMPORTANCE_NORMALISED = ("per_reference", "after_mean")
DEAD_RELEVANCE = ("no_gradient", "match_activations", "activate_target")


def relevance_peaks(relevance: torch.Tensor) -> torch.Tensor:
    """(R, C, ...) relevance -> (R, C) spatial max per channel."""
    return as_channels_by_positions(relevance).amax(dim=-1)


def channel_importance(peaks: torch.Tensor, normalised: str = "per_reference") -> torch.Tensor:
    """(R, C) references' relevance peaks -> (C,) importance: min-max over channels per reference,
    then averaged (the authors'), or averaged then min-max (`after_mean`)."""
    if normalised == "per_reference":
        return minmax(peaks, dim=1).mean(dim=0)
    return minmax(peaks.mean(dim=0), dim=0)


def _start_for(targets: list[Target]) -> Start:
    kinds, layers = {t.kind for t in targets}, {t.layer for t in targets}
    if kinds == {"class"}:
        return Start("class", indices=tuple(t.class_index for t in targets))
    if len(kinds) != 1 or len(layers) != 1:
        raise VitalStudyError("a VITAL batch holds class targets only, or channels (or concepts) of one layer")
    if kinds == {"concept"}:  # App. B.3: relevance starts from the direction
        return Start("direction", layer=layers.pop(), directions=torch.stack([t.direction() for t in targets]))
    return Start("channel", layer=layers.pop(), indices=tuple(t.channel for t in targets))


def _layers_before(model, layer: str, candidates) -> list[HookedLayer]:
    """The candidate layers computed before `layer` (module registration order, which is the
    forward order of the networks we hook; an enclosing module of `layer` finishes after it)."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    if layer not in order:
        raise VitalStudyError(f"layer {layer!r} is not a module of the model")
    return [l for l in candidates if order[l.name] < order[layer] and not layer.startswith(l.name + ".")]


class VitalMethod:
    """Builds the loop plan for a batch of targets (`vital` or `vital_lrp`)."""

    def __init__(self, name: str, spec: ModelSpec, model, config: dict, run_dir: Path, device: torch.device):
        self.name, self.spec, self.model, self.config = name, spec, model, config
        self.cache_dir, self.device = RunLayout(run_dir).fv.prototypes(spec.name), device
        self.attribution = config["attribution"] if get_method(name).needs_lrp else None
        importance = config["importance"]
        self.importance_on, self.importance_normalised = importance["applied_to"], importance["normalised"]
        if self.importance_on not in IMPORTANCE_ON or self.importance_normalised not in IMPORTANCE_NORMALISED:
            raise VitalStudyError(f"vital importance {importance}: applied_to one of {IMPORTANCE_ON}, "
                                  f"normalised one of {IMPORTANCE_NORMALISED}")
        self.stem_pool, self.dead_relevance = config["stem_pool"], config["dead_relevance"]
        if self.dead_relevance not in DEAD_RELEVANCE:
            raise VitalStudyError(f"vital dead_relevance {self.dead_relevance!r}: one of {DEAD_RELEVANCE}")
        self.relevance = RelevanceMaps(spec, model, self.attribution, self.stem_pool) if self.attribution else None

    def group_key(self, target: Target) -> str:
        return "class" if target.kind == "class" else f"{target.kind}:{target.layer}"

    def layers(self, target: Target) -> list[HookedLayer]:
        """The matched layers: the class layers, or for an inner neuron (or concept) the neuron
        layers that run before its own layer (relevance cannot reach a layer computed after it)."""
        base = self.spec.class_layers if target.kind == "class" else _layers_before(self.model, target.layer,
                                                                                    self.spec.neuron_layers)
        if not base:
            raise VitalStudyError(f"{self.spec.name}: no matched layer of VITAL runs before {target.layer!r} "
                                  f"(neuron layers: {', '.join(l.name for l in self.spec.neuron_layers)}); "
                                  f"choose a deeper layer for target {target.id}")
        override = self.config["layer_weights"].get(self.spec.name, {})
        return [HookedLayer(l.name, float(override.get(l.name, l.weight))) for l in base]

    def aux_weight(self, target: Target) -> float:
        aux = self.config["aux_weight"]
        if target.kind != "class":  # inner neurons and concept directions
            return float(aux["neuron"])
        if self.relevance is not None and aux["class_relevance"] is not None:
            return float(aux["class_relevance"])
        return float(aux["class"]) if aux["class"] is not None else self.spec.class_aux_weight

    def reference_statistics(self, target: Target, references: list[dict]) -> dict:
        """Prototypes (and channel importance) of one target, from the disk cache when present."""
        layers = self.layers(target)
        key = json.dumps({"refs": [[r["sha256"], r["view"]] for r in references], "layers": [l.name for l in layers],
                          "attribution": self.attribution, "model": self.spec.name, "target": target.as_dict(),
                          "importance": [self.importance_on, self.importance_normalised], "stem_pool": self.stem_pool,
                          "format": 2}, sort_keys=True)
        path = self.cache_dir / f"{target.id}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        names = [l.name for l in layers]
        features = {n: [] for n in names}
        importance = {n: [] for n in names}
        for chunk in reference_batch(self.spec, references).split(16):
            chunk = chunk.to(self.device)
            weights = None
            if self.relevance is not None:
                start = _start_for([target] * len(chunk))
                raw = self.relevance(chunk, names, start)
                for n, r in raw.items():
                    importance[n].append(relevance_peaks(r).cpu())
                weights = weights_from_relevance(raw, None)  # the same relevance, not a second pass
            with torch.no_grad(), capture_outputs(self.model, names) as acts:
                self.model(chunk)
                for n in names:
                    f = acts[n] if weights is None else acts[n] * weights[n]
                    features[n].append(as_channels_by_positions(f).float().cpu())
        stats = {"prototypes": {n: prototype(torch.cat(features[n])) for n in names}}
        if self.relevance is not None:
            stats["importance"] = {n: channel_importance(torch.cat(importance[n]), self.importance_normalised)
                                   for n in names}
            if self.importance_on == "features":
                # A non-negative constant per channel: scaling the prototype equals prototyping the
                # scaled features (sorting commutes with it).
                stats["prototypes"] = {n: p * stats["importance"][n][:, None] for n, p in stats["prototypes"].items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        from vitalstudy.io import atomic_path

        with atomic_path(path) as tmp:
            torch.save(stats, tmp)
        return stats

    def plan(self, targets: list[Target], references: dict[str, list[dict]]) -> Plan:
        layers = self.layers(targets[0])
        stats = [self.reference_statistics(t, references[t.id]) for t in targets]
        prototypes = {l.name: torch.stack([s["prototypes"][l.name] for s in stats]).to(self.device) for l in layers}
        importance = None
        start = None
        if self.relevance is not None:
            importance = {l.name: torch.stack([s["importance"][l.name] for s in stats]).to(self.device) for l in layers}
            start = _start_for(targets)
            if start.kind == "direction" and self.dead_relevance == "activate_target":
                raise VitalStudyError("generate.vital.dead_relevance: activate_target needs a class or channel target; "
                                      "concept directions have no single activation to raise (use match_activations)")
        objective = VitalObjective(self.model, layers, prototypes, self.relevance, start, importance, self.importance_on,
                                   self.dead_relevance)
        aux = self.aux_weight(targets[0])
        cfg = self.config
        settings = loop_settings(cfg, optimizer="adam", schedule="cosine", tv_weight=aux, l2_weight=aux)
        hyper = {"layers": {l.name: l.weight for l in layers}, "aux_weight": aux, "jitter": int(cfg["jitter"]),
                 "attribution": self.attribution, "relevance_start": start.kind if start else None,
                 **({"importance": {"applied_to": self.importance_on, "normalised": self.importance_normalised},
                     "stem_pool": self.stem_pool, "dead_relevance": self.dead_relevance} if self.relevance else {}),
                 "parameterisation": "normalised pixels, N(0,1) init, clamped to [0,1] pixels",
                 "loop": settings.as_dict()}
        return Plan(NormalisedPixels(self.spec, self.spec.input_size), [RollJitter(int(cfg["jitter"]))],
                    objective, settings, hyper, self.spec.input_size)
