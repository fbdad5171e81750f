"""Metrics of feature accentuations (stage 3) and their figure (stage 6).

Per accentuation image (a seed image pushed towards a class or an inner neuron):
- `accent_gain`: the target's value (class logit; channel mean before its closing ReLU) on the
  accentuation minus its value on the seed image, both as the model sees them;
- `accent_pixel_distance`: root-mean-square difference to the seed in [0, 1] pixels;
- `accent_feature_distance:<layer>`: faccent's distance at a feature layer (L2 over channels of the
  difference of the two feature maps, averaged over positions), relative to the seed's own mean
  feature norm there (so layers and models compare);
- `accent_path_rho`: path similarity (Spearman rho of per-channel means, averaged over the
  model's hooked layers) with the natural references of the target (its stage-1 references).
Aggregates per method carry a seeded bootstrap interval over the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from vitalstudy.fv.accentuation import load_seeds, seed_paths
from vitalstudy.fv.generate import output_paths
from vitalstudy.fv.vital import reference_batch
from vitalstudy.io import read_json
from vitalstudy.metrics.longformat import row
from vitalstudy.metrics.stats import bootstrap_ci
from vitalstudy.models.features import capture_outputs, capture_pre_activation, channel_means
from vitalstudy.references.targets import Target

METRICS = ("accent_gain", "accent_pixel_distance", "accent_feature_distance", "accent_path_rho")


def _pixels(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def target_values(model, spec, target: Target, x01: torch.Tensor) -> torch.Tensor:
    x = spec.normalize(x01)
    with torch.no_grad():
        if target.kind == "class":
            return model(x)[:, target.class_index]
        with capture_pre_activation(model, target.layer) as pre:
            model(x)
        return channel_means(pre[target.layer])[:, target.channel]


def accentuation_rows(run_dir, model_name: str, model, spec, methods: list[str], targets: list[Target],
                      seeds: list[int], references: dict[str, list[dict]], feature_layer: str | None,
                      bootstrap: dict, seed: int) -> list[dict]:
    run_dir = Path(run_dir)
    layer = feature_layer or spec.neuron_layers[-1].name
    layers = [hooked.name for hooked in spec.class_layers]
    rows, values = [], {}
    for target in targets:
        seed01 = load_seeds(spec, seed_paths(run_dir, [target]))
        refs = references.get(target.id) or []
        profile = None
        if refs:
            with torch.no_grad(), capture_outputs(model, layers) as acts:
                model(reference_batch(spec, refs))
                profile = {n: channel_means(acts[n]).mean(0).numpy() for n in layers}
        with torch.no_grad(), capture_outputs(model, [layer]) as acts:
            model(spec.normalize(seed01))
            seed_features = acts[layer]
        seed_value = float(target_values(model, spec, target, seed01)[0])
        for method in methods:
            for s in seeds:
                png = output_paths(run_dir, model_name, method, target.id, s)["png"]
                if not png.is_file():
                    continue
                image = _pixels(png)[None]
                if image.shape[-1] != seed01.shape[-1]:
                    image = torch.nn.functional.interpolate(image, size=seed01.shape[-2:], mode="bilinear",
                                                            antialias=True)
                with torch.no_grad(), capture_outputs(model, sorted({layer, *layers})) as acts:
                    model(spec.normalize(image))
                    feats = acts[layer]
                    rho = (np.mean([spearmanr(channel_means(acts[n])[0].numpy(), profile[n]).statistic
                                    for n in layers]) if profile else np.nan)
                measured = {
                    "accent_gain": float(target_values(model, spec, target, image)[0]) - seed_value,
                    "accent_pixel_distance": float((image - seed01).pow(2).mean().sqrt()),
                    f"accent_feature_distance:{layer}": float((feats - seed_features).norm(dim=1).mean()
                                                              / seed_features.norm(dim=1).mean()),
                    "accent_path_rho": float(rho)}
                for metric, value in measured.items():
                    rows.append(row(metric, model_name, method, value, target=target.id, seed=s, n=1))
                    values.setdefault((metric, method), []).append(value)
    for (metric, method), sample in values.items():
        sample = np.asarray(sample)
        sample = sample[~np.isnan(sample)]
        if not len(sample):
            continue
        ci = bootstrap_ci(np.mean, (sample,), bootstrap["iterations"], bootstrap["confidence"], seed, metric,
                          model_name, method)
        rows.append(row(metric, model_name, method, float(sample.mean()), n=len(sample), ci=ci,
                        note="mean over accentuations and seeds"))
    return rows


def draw_accentuations(run_dir, model_name: str, spec, methods: list[str], targets: list[Target], seed: int,
                       out: Path) -> Path:
    """Rows: accentuations. Columns: the seed, then per method the image and its transparency map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    columns = 1 + 2 * len(methods)
    fig, axes = plt.subplots(len(targets), columns, figsize=(1.9 * columns, 2.1 * len(targets)), squeeze=False)
    for r, target in enumerate(targets):
        seed01 = load_seeds(spec, seed_paths(run_dir, [target]))[0]
        axes[r, 0].imshow(seed01.permute(1, 2, 0).numpy())
        label = target.label if target.kind == "class" else target.base_id
        axes[r, 0].set_ylabel(f"{label}", fontsize=8)
        if r == 0:
            axes[r, 0].set_title("seed", fontsize=9)
        for m, method in enumerate(methods):
            paths = output_paths(run_dir, model_name, method, target.id, seed)
            image_ax, alpha_ax = axes[r, 1 + 2 * m], axes[r, 2 + 2 * m]
            if paths["png"].is_file():
                image = np.asarray(Image.open(paths["png"]).convert("RGB"))
                image_ax.imshow(image)
                if paths["alpha"].is_file():
                    alpha = np.asarray(Image.open(paths["alpha"]), dtype=np.float32) / 255.0
                    alpha_ax.imshow(np.concatenate([image / 255.0, alpha[..., None]], axis=2))
            else:
                image_ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=image_ax.transAxes)
            if r == 0:
                image_ax.set_title(method, fontsize=9)
                alpha_ax.set_title("transparency", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{model_name}: feature accentuations (seed {seed})", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def references_of(run_dir, model_name: str, targets: list[Target]) -> dict[str, list[dict]]:
    """Each accentuation's natural references: the stage-1 references of its class or neuron, when present."""
    refs = {}
    for target in targets:
        path = Path(run_dir) / "01_references" / model_name / f"{target.reference_id}.json"
        refs[target.id] = read_json(path)["references"] if path.is_file() else []
    return refs
