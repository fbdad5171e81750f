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

from vitalstudy.config import schema_default
from vitalstudy.data.classes import ClassList, classes_for
from vitalstudy.data.sources import apply_view, load_rgb, read_index
from vitalstudy.errors import ConfigError, MissingAssetError, VitalStudyError
from vitalstudy.io import read_json
from vitalstudy.metrics import accuracy, clip_zeroshot, cosy, fid, path_similarity, tsne
from vitalstudy.metrics.forward import Outputs, forward_fvs, forward_images, forward_paths
from vitalstudy.metrics.images import FVImage, load_fvs, natural_images, planned_images
from vitalstudy.metrics.longformat import unavailable
from vitalstudy.models import get_spec, load_model
from vitalstudy.models.features import resolve_device
from vitalstudy.models.registry import ModelSpec
from vitalstudy.targets import class_targets, neuron_targets, parse_target


@dataclass
class Context:
    """What the jobs of one target model share: config, planned FVs and model outputs, each computed
    once (a job of the paper's size passes 50 000 natural images through five models)."""

    cfg: dict  # seed, device, models, targets, references, generate, metrics (already validated)
    model: str
    index_path: str
    fv_root: str
    device: torch.device = field(init=False)
    spec: ModelSpec = field(init=False)
    files_read: list[Path] = field(init=False, default_factory=list)  # FVs, sidecars, references: provenance
    _cache: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.device = resolve_device(self.cfg.get("device", schema_default("device")))
        self.spec = get_spec(self.model)

    def _once(self, key: tuple, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def metrics(self) -> dict:
        return self.cfg["metrics"]

    @property
    def seed(self) -> int:
        return self.cfg["seed"]

    def class_targets(self) -> list[str]:
        return class_targets(self.cfg, self.model)

    @property
    def classes(self) -> ClassList:
        """The target model's class list: its outputs' ids and names."""
        return classes_for(self.spec)

    def natural(self) -> pd.DataFrame:
        """Metric-pool natural images of the run's class targets (FVs are compared with them)."""
        def load() -> pd.DataFrame:
            natural = natural_images(read_index(self.index_path), self.class_targets())
            if natural.empty:
                raise VitalStudyError(f"{self.index_path}: no image of the pools 'metric'/'both' shows a class "
                                      f"target; the metrics compare FVs with natural images of their classes")
            return natural
        return self._once(("natural",), load)

    def fvs(self, kind: str) -> list[FVImage]:
        """The planned FVs of one target kind ("class" or "neuron"), validated against the contract."""
        def load() -> list[FVImage]:
            classes = self.class_targets() if kind == "class" else []
            neurons = neuron_targets(self.cfg, self.model) if kind == "neuron" else []
            images = load_fvs(self.fv_root, self.model, planned_images(self.cfg["generate"], self.spec, classes, neurons))
            self.files_read += [p for i in images for p in (i.path, i.path.with_suffix(".json"))]
            return images
        return self._once(("fvs", kind), load)

    def load(self, name: str):
        """A registry model, or MissingAssetError when its weights are absent."""
        weights = self.cfg["models"].get("weights", {}).get(name)
        return self._once(("model", name), lambda: load_model(name, weights=weights, device=self.device))

    def _layers(self, name: str) -> list[str]:
        """The target model's hooked layers are read on every pass (path similarity needs them)."""
        return self.spec.class_layer_names if name == self.model else []

    def class_fv_outputs(self, name: str) -> Outputs:
        """Model `name` on the class FVs: logits, penultimate features (and hooked layers for the target model)."""
        images = [i.image for i in self.fvs("class")]
        return self._once(("fv-out", name), lambda: forward_fvs(
            self.load(name), get_spec(name), images, self.device, self.metrics["batch_size"], self._layers(name)))

    def natural_outputs(self, name: str) -> Outputs:
        """Model `name` on the natural images of `natural()`."""
        paths = list(self.natural()["path"])
        return self._once(("natural-out", name), lambda: forward_paths(
            self.load(name), get_spec(name), paths, self.device, self.metrics["batch_size"], self._layers(name)))


def _labels(images: list[FVImage]) -> tuple[list[str], list[str], list[int]]:
    return [i.key.method for i in images], [i.key.target for i in images], [i.key.seed for i in images]


def _true_index(class_ids, classes: ClassList) -> np.ndarray:
    return np.array([classes.index(c) for c in class_ids], dtype=int)


def accuracy_job(ctx: Context) -> tuple[list[dict], pd.DataFrame]:
    """Top-1 accuracy of class FVs under the target model and the held-out judge; per-image predictions."""
    images = ctx.fvs("class")
    if not images:
        return [], pd.DataFrame(columns=accuracy.PREDICTION_COLUMNS)
    methods, targets, seeds = _labels(images)
    rows, predictions = [], []
    judges = [("accuracy_top1", ctx.model)]
    if ctx.cfg["models"].get("held_out"):
        judges.append(("held_out_accuracy_top1", ctx.cfg["models"]["held_out"]))
    for metric, judge in judges:
        classes = classes_for(judge)  # a target's output index is the judge's own
        missing = sorted(set(targets) - set(classes.ids))
        if missing:
            rows += unavailable([metric], ctx.model, list(dict.fromkeys(methods)),
                                f"judge {judge}'s classes ({classes.origin}) lack {', '.join(missing)}")
            continue
        try:
            logits = ctx.class_fv_outputs(judge).logits
        except MissingAssetError as exc:
            rows += unavailable([metric], ctx.model, list(dict.fromkeys(methods)), str(exc))
            continue
        true = _true_index(targets, classes)
        hits = accuracy.topk_hits(logits, true, 1)
        rows += accuracy.hit_rate_rows(metric, ctx.model, methods, hits, ctx.metrics["bootstrap"], ctx.seed,
                                       f"judge: {judge}")
        predictions.append(accuracy.predictions_table(judge, methods, targets, seeds, logits, true, classes))
    return rows, (pd.concat(predictions, ignore_index=True) if predictions
                  else pd.DataFrame(columns=accuracy.PREDICTION_COLUMNS))


def _correctly_classified(ctx: Context) -> pd.DataFrame:
    natural = ctx.natural()
    return natural[ctx.natural_outputs(ctx.model).logits.argmax(axis=1) == _true_index(natural["wnid"], ctx.classes)]


def clip_job(ctx: Context, clip_loader=clip_zeroshot.load_clip) -> list[dict]:
    """CLIP zero-shot top-1/top-5 of class FVs over the target model's classes (ImageNet-1k's 1000 with
    open_clip's names, or its labels file's display names), plus the natural-image row."""
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
    names = open_clip.IMAGENET_CLASSNAMES if ctx.classes.is_imagenet else ctx.classes.names
    weights = clip_zeroshot.class_embeddings(clip, names, open_clip.OPENAI_IMAGENET_TEMPLATES, ctx.device)
    settings = (ctx.metrics["bootstrap"], ctx.seed)
    note = f"CLIP {clip.source}, {len(names)} classes x {len(open_clip.OPENAI_IMAGENET_TEMPLATES)} templates"

    def scores(items, load) -> np.ndarray:
        embedded = clip_zeroshot.image_embeddings(clip, items, load, ctx.device, ctx.metrics["batch_size"])
        return (embedded @ weights.T).numpy()

    rows = clip_zeroshot.zeroshot_rows(ctx.model, methods, scores([i.image for i in images], lambda im: im),
                                       _true_index(targets, ctx.classes), *settings, note)
    try:
        real = _correctly_classified(ctx)
    except MissingAssetError as exc:
        return rows + unavailable(["clip_top1", "clip_top5"], ctx.model, [clip_zeroshot.REAL],
                                  f"natural images are kept when {ctx.model} classifies them correctly: {exc}")
    if real.empty:
        return rows + unavailable(["clip_top1", "clip_top5"], ctx.model, [clip_zeroshot.REAL],
                                  f"{ctx.model} classifies none of the natural images of the target classes correctly")
    return rows + clip_zeroshot.zeroshot_rows(
        ctx.model, [clip_zeroshot.REAL] * len(real), scores(list(real["path"]), load_rgb),
        _true_index(real["wnid"], ctx.classes), *settings,
        f"{note}; {len(real)} natural images of the target classes that {ctx.model} classifies correctly")


def fid_job(ctx: Context) -> list[dict]:
    """FID/KID of class FVs vs natural images of the same classes, on the feature model (`fid`, `kid`)
    and on the target model's own penultimate features (`fid_arch`, `kid_arch`)."""
    fid_cfg = ctx.metrics["fid"]
    images = ctx.fvs("class")
    if not images:
        return []
    methods = np.asarray([i.key.method for i in images])
    extractors = {"": fid_cfg["feature_model"]}
    if fid_cfg["own_features"]:
        extractors["_arch"] = ctx.model
    rows = []
    for suffix, name in extractors.items():
        try:
            get_spec(name)
        except ConfigError as exc:
            raise ConfigError(f"metrics.fid.feature_model: {exc}") from None
        try:
            feats, real = ctx.class_fv_outputs(name).penultimate, ctx.natural_outputs(name).penultimate
        except MissingAssetError as exc:
            rows += unavailable([f"fid{suffix}", f"kid{suffix}"], ctx.model, list(dict.fromkeys(methods)), str(exc))
            continue
        by_method = {m: feats[methods == m] for m in dict.fromkeys(methods)}
        note = (f"features: {name} penultimate ({real.shape[1]}-d), natural images of "
                f"{ctx.natural()['wnid'].nunique()} classes (metric pool)")
        rows += fid.fid_rows(suffix, ctx.model, by_method, real, fid_cfg, ctx.metrics["bootstrap"], ctx.seed, note)
    return rows


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
        selection = read_json(ref_path)
        ctx.files_read.append(ref_path)
        if selection.get("target", {}).get("id") != target:
            raise VitalStudyError(f"{ref_path}: target.id: expected {target!r} (stage-1 contract)")
        refs = selection.get("references")
        if not refs:
            raise VitalStudyError(f"{ref_path}: references: missing or empty, no control images for {target}")
        control = forward_images(
            model, ctx.spec, refs, lambda r: ctx.spec.preprocess(apply_view(load_rgb(r["path"]), r["view"])),
            ctx.device, ctx.metrics["batch_size"], [neuron.layer]).layer_means[neuron.layer][:, neuron.channel]
        mine = [i for i in images if i.key.target == target]
        syn = forward_fvs(model, ctx.spec, [i.image for i in mine], ctx.device, ctx.metrics["batch_size"],
                          [neuron.layer]).layer_means[neuron.layer][:, neuron.channel]
        for method in dict.fromkeys(i.key.method for i in mine):
            chosen = np.array([i.key.method == method for i in mine])
            per_neuron += cosy.neuron_rows(ctx.model, method, target, syn[chosen], control,
                                           f"activation: spatial mean of {neuron.layer} channel {neuron.channel}")
    return per_neuron + cosy.summary_rows(ctx.model, per_neuron, ctx.metrics["bootstrap"], ctx.seed)


def tsne_job(ctx: Context) -> pd.DataFrame:
    """t-SNE coordinates of the target model's penultimate features: natural images and class FVs."""
    if not ctx.fvs("class"):
        return pd.DataFrame(columns=tsne.COLUMNS)
    wanted = ctx.metrics["tsne"]["classes"] or ctx.class_targets()
    unknown = sorted(set(wanted) - set(ctx.class_targets()))
    if unknown:
        raise ConfigError(f"metrics.tsne.classes: {', '.join(unknown)} are not class targets of this run")
    fv_keep = np.array([i.key.target in wanted for i in ctx.fvs("class")], dtype=bool)
    images = [i for i, keep in zip(ctx.fvs("class"), fv_keep) if keep]
    natural_keep = ctx.natural()["wnid"].isin(wanted).to_numpy()
    natural = ctx.natural()[natural_keep]
    features = np.concatenate([ctx.natural_outputs(ctx.model).penultimate[natural_keep],
                               ctx.class_fv_outputs(ctx.model).penultimate[fv_keep]])
    classes = ctx.classes
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
    fv_out, natural_out = ctx.class_fv_outputs(ctx.model), ctx.natural_outputs(ctx.model)
    rows = []
    for layer in ctx.spec.class_layer_names:
        same, other = path_similarity.rank_correlations(fv_out.layer_means[layer], targets,
                                                        natural_out.layer_means[layer], list(ctx.natural()["wnid"]))
        rows += path_similarity.layer_rows(ctx.model, layer, methods, targets, seeds, same, other,
                                           ctx.metrics["bootstrap"], ctx.seed)
    return rows
