"""One function per metric job: read the stage 0/1/2 files a job needs, run the models, return rows.

The pure computations live in the metric modules (accuracy, fid, cosy, ...); this module only wires
files, models and devices to them. A model or CLIP checkpoint that is missing turns into
`unavailable` rows with the loader's reason, so a table can still be written and says why it is
incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.data.sources import load_rgb, read_index
from vitalstudy.errors import ConfigError, MissingAssetError, VitalStudyError
from vitalstudy.io import read_json
from vitalstudy.metrics import accuracy, clip_zeroshot, cosy, fid, path_similarity, tsne
from vitalstudy.metrics.forward import forward_fvs, forward_images, forward_paths
from vitalstudy.metrics.images import FVImage, load_fvs, natural_images, planned_images
from vitalstudy.metrics.longformat import unavailable
from vitalstudy.models import get_spec, load_model
from vitalstudy.models.features import resolve_device
from vitalstudy.models.registry import ModelSpec
from vitalstudy.references.select import apply_view
from vitalstudy.references.targets import class_targets, neuron_targets, parse_target


@dataclass
class Context:
    """What every job of one target model reads: config sections, index, planned FVs."""

    cfg: dict  # seed, device, models, targets, references, metrics (already validated)
    model: str
    index_path: str
    fv_root: str
    device: torch.device = field(init=False)
    spec: ModelSpec = field(init=False)
    _models: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.device = resolve_device(self.cfg.get("device", "auto"))
        self.spec = get_spec(self.model)

    @property
    def metrics(self) -> dict:
        return self.cfg["metrics"]

    @property
    def seed(self) -> int:
        return self.cfg["seed"]

    def index(self) -> pd.DataFrame:
        return read_index(self.index_path)

    def class_targets(self) -> list[str]:
        return class_targets(self.cfg)

    def fvs(self, kind: str) -> list[FVImage]:
        """The planned FVs of one target kind, validated against the contract."""
        classes, neurons = (self.class_targets(), []) if kind == "class" else ([], neuron_targets(self.cfg, self.model))
        return load_fvs(self.fv_root, self.model, planned_images(self.metrics, self.spec, classes, neurons))

    def load(self, name: str):
        """A registry model (loaded once per context), or MissingAssetError when its weights are absent."""
        if name not in self._models:
            weights = self.cfg["models"].get("weights", {}).get(name)
            self._models[name] = load_model(name, weights=weights, device=self.device)
        return self._models[name]

    def forward_fvs(self, model, spec: ModelSpec, images: list[FVImage], layers=()):
        return forward_fvs(model, spec, [i.image for i in images], self.device, self.metrics["batch_size"], layers)

    def forward_paths(self, model, spec: ModelSpec, paths: list[str], layers=()):
        return forward_paths(model, spec, paths, self.device, self.metrics["batch_size"], layers)


def _labels(images: list[FVImage]) -> tuple[list[str], list[str], list[int]]:
    return [i.key.method for i in images], [i.key.target for i in images], [i.key.seed for i in images]


def _true_index(wnids: list[str]) -> np.ndarray:
    classes = imagenet_classes()
    return np.array([classes.index(w) for w in wnids], dtype=int)


def accuracy_job(ctx: Context) -> tuple[list[dict], pd.DataFrame]:
    """Top-1 accuracy of class FVs under the target model and the held-out judge; per-image predictions."""
    images = ctx.fvs("class")
    if not images:
        return [], pd.DataFrame()
    methods, targets, seeds = _labels(images)
    true = _true_index(targets)
    rows, predictions = [], []
    judges = [("accuracy_top1", ctx.model)]
    if ctx.cfg["models"].get("held_out"):
        judges.append(("held_out_accuracy_top1", ctx.cfg["models"]["held_out"]))
    for metric, judge in judges:
        try:
            model = ctx.load(judge)
        except MissingAssetError as exc:
            rows += unavailable([metric], ctx.model, list(dict.fromkeys(methods)), str(exc))
            continue
        logits = ctx.forward_fvs(model, get_spec(judge), images).logits
        hits = accuracy.topk_hits(logits, true, 1)
        rows += accuracy.hit_rate_rows(metric, ctx.model, methods, hits, ctx.metrics["bootstrap"], ctx.seed,
                                       f"judge: {judge}")
        predictions.append(accuracy.predictions_table(judge, methods, targets, seeds, logits, true))
    return rows, (pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame())


def _correctly_classified(ctx: Context, natural: pd.DataFrame) -> pd.DataFrame:
    model = ctx.load(ctx.model)
    logits = ctx.forward_paths(model, ctx.spec, list(natural["path"])).logits
    return natural[logits.argmax(axis=1) == natural["class_index"].to_numpy()]


def clip_job(ctx: Context, clip_loader=clip_zeroshot.load_clip) -> list[dict]:
    """CLIP zero-shot top-1/top-5 of class FVs over the 1000 ImageNet classes, plus the natural-image row."""
    import open_clip

    images = ctx.fvs("class")
    if not images:
        return []
    methods, targets, _ = _labels(images)
    everyone = list(dict.fromkeys(methods)) + [clip_zeroshot.REAL]
    try:
        clip = clip_loader(ctx.metrics["clip"], ctx.device)
    except MissingAssetError as exc:
        return unavailable(["clip_top1", "clip_top5"], ctx.model, everyone, str(exc))
    weights = clip_zeroshot.class_embeddings(clip, open_clip.IMAGENET_CLASSNAMES, open_clip.OPENAI_IMAGENET_TEMPLATES,
                                             ctx.device)
    settings = (ctx.metrics["bootstrap"], ctx.seed)
    note = f"CLIP {clip.source}, 1000 classes x {len(open_clip.OPENAI_IMAGENET_TEMPLATES)} templates"

    def scores(items, load) -> np.ndarray:
        embedded = clip_zeroshot.image_embeddings(clip, items, load, ctx.device, ctx.metrics["batch_size"])
        return (embedded @ weights.T).numpy()

    rows = clip_zeroshot.zeroshot_rows(ctx.model, methods, scores([i.image for i in images], lambda im: im),
                                       _true_index(targets), *settings, note)
    try:
        real = _correctly_classified(ctx, natural_images(ctx.index(), ctx.class_targets()))
    except MissingAssetError as exc:
        return rows + unavailable(["clip_top1", "clip_top5"], ctx.model, [clip_zeroshot.REAL],
                                  f"natural images are kept when {ctx.model} classifies them correctly: {exc}")
    if real.empty:
        return rows + unavailable(["clip_top1", "clip_top5"], ctx.model, [clip_zeroshot.REAL],
                                  f"{ctx.model} classifies none of the natural images of the target classes correctly")
    return rows + clip_zeroshot.zeroshot_rows(
        ctx.model, [clip_zeroshot.REAL] * len(real), scores(list(real["path"]), load_rgb),
        real["class_index"].to_numpy(), *settings,
        f"{note}; {len(real)} natural images of the target classes that {ctx.model} classifies correctly")


def fid_job(ctx: Context) -> list[dict]:
    """FID/KID of class FVs vs natural images of the same classes, on the feature model (`fid`, `kid`)
    and on the target model's own penultimate features (`fid_arch`, `kid_arch`)."""
    fid_cfg = ctx.metrics["fid"]
    images = ctx.fvs("class")
    if not images:
        return []
    methods = [i.key.method for i in images]
    natural = natural_images(ctx.index(), ctx.class_targets())
    extractors = {"": fid_cfg["feature_model"]}
    if fid_cfg["own_features"]:
        extractors["_arch"] = ctx.model
    cache: dict[str, tuple[dict[str, np.ndarray], np.ndarray] | str] = {}
    rows = []
    for suffix, name in extractors.items():
        if name not in cache:
            cache[name] = _penultimate_by_method(ctx, name, images, methods, list(natural["path"]))
        if isinstance(cache[name], str):
            rows += unavailable([f"fid{suffix}", f"kid{suffix}"], ctx.model, list(dict.fromkeys(methods)), cache[name])
            continue
        by_method, real = cache[name]
        note = (f"features: {name} penultimate ({real.shape[1]}-d), natural images of "
                f"{natural['wnid'].nunique()} classes (metric pool)")
        rows += fid.fid_rows(suffix, ctx.model, by_method, real, fid_cfg, ctx.metrics["bootstrap"], ctx.seed, note)
    return rows


def _penultimate_by_method(ctx: Context, name: str, images: list[FVImage], methods: list[str],
                           natural_paths: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray] | str:
    """Penultimate features of each method's FVs and of the natural images; the reason when unavailable."""
    try:
        spec = get_spec(name)
    except ConfigError as exc:
        raise ConfigError(f"metrics.fid.feature_model: {exc}") from None
    try:
        model = ctx.load(name)
    except MissingAssetError as exc:
        return str(exc)
    feats = ctx.forward_fvs(model, spec, images).penultimate
    methods_arr = np.asarray(methods)
    real = ctx.forward_paths(model, spec, natural_paths).penultimate
    return {m: feats[methods_arr == m] for m in dict.fromkeys(methods)}, real


def cosy_job(ctx: Context, references_dir: str) -> list[dict]:
    """AUC/MAD per inner neuron and method (control = the neuron's stage-1 top-k references), and means."""
    images = ctx.fvs("neuron")
    if not images:
        return []
    model = ctx.load(ctx.model)
    per_neuron = []
    for target in dict.fromkeys(i.key.target for i in images):
        neuron = parse_target(target)
        ref_path = Path(references_dir) / f"{target}.json"
        refs = read_json(ref_path)["references"]
        if not refs:
            raise VitalStudyError(f"{ref_path}: references: empty, no control images for {target}")
        control = forward_images(
            model, ctx.spec, refs, lambda r: ctx.spec.preprocess(apply_view(load_rgb(r["path"]), r["view"])),
            ctx.device, ctx.metrics["batch_size"], [neuron.layer]).layer_means[neuron.layer][:, neuron.channel]
        mine = [i for i in images if i.key.target == target]
        syn = ctx.forward_fvs(model, ctx.spec, mine, [neuron.layer]).layer_means[neuron.layer][:, neuron.channel]
        for method in dict.fromkeys(i.key.method for i in mine):
            chosen = np.array([i.key.method == method for i in mine])
            per_neuron += cosy.neuron_rows(ctx.model, method, target, syn[chosen], control,
                                           f"activation: spatial mean of {neuron.layer} channel {neuron.channel}")
    return per_neuron + cosy.summary_rows(ctx.model, per_neuron, ctx.metrics["bootstrap"], ctx.seed)


def tsne_job(ctx: Context) -> pd.DataFrame:
    """t-SNE coordinates of the target model's penultimate features: natural images and class FVs."""
    wanted = ctx.metrics["tsne"]["classes"] or ctx.class_targets()
    unknown = sorted(set(wanted) - set(ctx.class_targets()))
    if unknown:
        raise ConfigError(f"metrics.tsne.classes: {', '.join(unknown)} are not class targets of this run")
    images = [i for i in ctx.fvs("class") if i.key.target in wanted]
    natural = natural_images(ctx.index(), wanted)
    model = ctx.load(ctx.model)
    features = np.concatenate([ctx.forward_paths(model, ctx.spec, list(natural["path"])).penultimate,
                               ctx.forward_fvs(model, ctx.spec, images).penultimate])
    classes = imagenet_classes()
    points = pd.DataFrame({
        "kind": ["natural"] * len(natural) + ["fv"] * len(images),
        "method": ["real"] * len(natural) + [i.key.method for i in images],
        "target": list(natural["wnid"]) + [i.key.target for i in images],
        "seed": [""] * len(natural) + [str(i.key.seed) for i in images],
        "image": list(natural["image_id"]) + [str(i.path) for i in images],
    })
    points.insert(3, "label", [classes.name(w) for w in points["target"]])
    return tsne.coordinates_table(points, features, ctx.metrics["tsne"]["perplexity"], ctx.seed)


def path_similarity_job(ctx: Context) -> list[dict]:
    """Per hooked layer: Spearman rho of each class FV's channel means with its class vs other classes."""
    images = ctx.fvs("class")
    if not images:
        return []
    methods, targets, seeds = _labels(images)
    natural = natural_images(ctx.index(), ctx.class_targets())
    model = ctx.load(ctx.model)
    layers = ctx.spec.class_layer_names
    fv_out = ctx.forward_fvs(model, ctx.spec, images, layers)
    nat_out = ctx.forward_paths(model, ctx.spec, list(natural["path"]), layers)
    rows = []
    for layer in layers:
        same, other = path_similarity.rank_correlations(fv_out.layer_means[layer], targets,
                                                        nat_out.layer_means[layer], list(natural["wnid"]))
        rows += path_similarity.layer_rows(ctx.model, layer, methods, targets, seeds, same, other,
                                           ctx.metrics["bootstrap"], ctx.seed)
    return rows
