"""The fooling-circuit test: does a method's visualization of a unit show a pattern planted by a
circuit that natural images never trigger?

1. Natural-image pass of the original model over the run's images: the unit's values (a class
   logit and an inner channel), the top-1 prediction, and the hooked layers' channel means.
2. Thresholds from a calibration half of the images (every other image by id), one circuit per
   unit (`circuit.FoolingCircuit`), and the invariance on *all* images and on the held-out half:
   top-1 change in percentage points, Pearson r of the unit's values, how many images open the gate.
3. Every method visualises both units on the original and on the manipulated model, `seeds` times.
   Per image: the planted pattern's score (`StripeScore` of the saved pixels), the unit's value on
   the model it was made for, and the path similarity (mean Spearman rho over the hooked layers of
   the image's channel means with those of the unit's natural references, as in
   `metrics.path_similarity`).
4. Summary per (unit, method): mean and Student-t 95 % interval over seeds on each model, and of
   the paired difference manipulated - original.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats as scipy_stats

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.data.sources import apply_view, load_rgb, original_view
from vitalstudy.fooling.circuit import Branch, FoolingCircuit, StripeScore, Unit
from vitalstudy.fv.generate import _alpha_png, _to_png, image_generators
from vitalstudy.fv.maco import natural_spectrum, spectrum_path
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import method_config, sectioned
from vitalstudy.errors import VitalStudyError
from vitalstudy.io import read_json, save_png, sha256_file, write_json
from vitalstudy.models.features import capture_outputs, capture_pre_activation, channel_means
from vitalstudy.models.registry import ModelSpec
from vitalstudy.references.select import select_class_references
from vitalstudy.targets import accentuation_id, parse_target

VARIANTS = ("original", "manipulated")


def load_images(spec: ModelSpec, paths: list[str], log=print) -> torch.Tensor:
    """Every image as the model sees it, decoded once for all passes."""
    images = []
    for i, path in enumerate(paths):
        images.append(spec.preprocess(load_rgb(path)))
        if (i + 1) % 200 == 0:
            log(f"fooling: loaded {i + 1}/{len(paths)} images")
    return torch.stack(images)


def natural_pass(model, images: torch.Tensor, unit_layer: str, unit_channel: int, layers: list[str],
                 batch: int = 50, log=print) -> dict[str, np.ndarray]:
    """Logits (N, 1000), the inner channel's spatial mean (N,) and each layer's channel means."""
    logits, unit, means = [], [], {name: [] for name in layers}
    for start in range(0, len(images), batch):
        x = images[start:start + batch]
        with torch.no_grad(), capture_pre_activation(model, unit_layer) as pre, capture_outputs(model, layers) as acts:
            logits.append(model(x))
            unit.append(channel_means(pre[unit_layer])[:, unit_channel])
            for name in layers:
                means[name].append(channel_means(acts[name]))
        if (start // batch) % 5 == 4 or start + batch >= len(images):
            log(f"fooling: natural pass {min(start + batch, len(images))}/{len(images)}")
    out = {"logits": torch.cat(logits).numpy(), "unit": torch.cat(unit).numpy()}
    out.update({f"layer:{n}": torch.cat(v).numpy() for n, v in means.items()})
    return out


def threshold(values: np.ndarray, margin: float) -> float:
    """Above the largest calibration value by `margin` times the calibration range."""
    return float(values.max() + margin * (values.max() - values.min()))


def invariance(original: dict, manipulated: dict, unit_values: tuple[np.ndarray, np.ndarray], limit: float,
               mask: np.ndarray) -> dict:
    """Top-1 change (pp) and Pearson r of the unit on the images selected by `mask`."""
    top_o, top_m = original["logits"][mask].argmax(1), manipulated["logits"][mask].argmax(1)
    u_o, u_m = unit_values[0][mask], unit_values[1][mask]
    return {"images": int(mask.sum()), "top1_changed": int((top_o != top_m).sum()),
            "top1_difference_pp": float(100.0 * abs((top_o != top_m).mean())),
            "unit_pearson_r": float(np.corrcoef(u_o, u_m)[0, 1]),
            "unit_max_abs_difference": float(np.abs(u_o - u_m).max()),
            "images_over_threshold": int((u_o > limit).sum())}


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds (nan interval for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or values.std(ddof=1) == 0:
        return mean, (mean if len(values) >= 2 else math.nan), (mean if len(values) >= 2 else math.nan)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def path_similarity(model, spec: ModelSpec, images01: torch.Tensor, layers: list[str],
                    natural: dict[str, np.ndarray]) -> np.ndarray:
    """Mean over layers of Spearman rho between each image's channel means and the natural profile."""
    with torch.no_grad(), capture_outputs(model, layers) as acts:
        model(spec.normalize(images01))
        rhos = np.stack([[scipy_stats.spearmanr(v, natural[n]).statistic for v in channel_means(acts[n]).numpy()]
                         for n in layers])
    return rhos.mean(axis=0)


def reference_views(paths_views: list[tuple[str, dict]], spec: ModelSpec) -> torch.Tensor:
    return torch.stack([spec.preprocess(apply_view(load_rgb(p), v)) for p, v in paths_views])


def method_settings(config: dict, method: str, override: dict) -> dict:
    """The method's settings with this test's `fooling.method_settings` over its `generate` section, filled
    and checked by the schema as a run's are (an override naming part of a nested block gets its defaults)."""
    from vitalstudy.config import section_defaults

    generate = dict(config["generate"])
    for section, values in sectioned(method, override).items():
        generate[section] = {**generate.get(section, {}), **values}
    return method_config(section_defaults("generate", generate), method)


def run(config: dict, out_dir: str | Path, log=print) -> dict:
    """The whole test for `config` (the resolved config; its `fooling` section drives it)."""
    torch.manual_seed(0)
    cfg = config["fooling"]
    out_dir = Path(out_dir)
    from vitalstudy.data.sources import build_index
    from vitalstudy.models import get_spec, load_model

    spec = get_spec(cfg["model"])
    model = load_model(cfg["model"], weights=config["models"].get("weights", {}).get(cfg["model"]))
    index, _ = build_index(config["images"], seed=config["seed"])
    index = index.sort_values("image_id").reset_index(drop=True)
    paths = index["path"].tolist()
    classes = imagenet_classes()
    class_index = classes.index(cfg["class"])
    unit_layer = cfg["unit"]["layer"] or spec.neuron_layer
    unit_channel = int(cfg["unit"]["channel"])
    layers = [layer.name for layer in spec.class_layers]
    score = StripeScore(**cfg.get("pattern", {}))

    cache = out_dir / "_work" / "natural.npz"  # the natural passes, reused when the test is re-run
    calibration = (np.arange(len(paths)) % 2) == 0
    units = {"class": Unit(class_index), "unit": Unit(unit_channel, unit_layer)}
    if cache.is_file():
        saved = np.load(cache)
        original = {k[2:]: saved[k] for k in saved.files if k.startswith("o:")}
        manipulated = {k[2:]: saved[k] for k in saved.files if k.startswith("m:")}
        thresholds = {"class": float(saved["threshold_class"]), "unit": float(saved["threshold_unit"])}
        circuit = FoolingCircuit(model, [Branch(units[k], thresholds[k], cfg["gain"]) for k in units], score)
        natural_score_max = float(saved["natural_score_max"])
    else:
        natural = load_images(spec, paths, log)
        original = natural_pass(model, natural, unit_layer, unit_channel, layers, log=log)
        values = {"class": original["logits"][:, class_index], "unit": original["unit"]}
        thresholds = {k: threshold(values[k][calibration], cfg["margin"]) for k in units}
        # one manipulated copy carries both planted units
        circuit = FoolingCircuit(model, [Branch(units[k], thresholds[k], cfg["gain"]) for k in units], score)
        manipulated = natural_pass(circuit.model, natural, unit_layer, unit_channel, [], log=log)
        natural_score_max = float(max(score(chunk).max() for chunk in natural.split(100)))
        del natural
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **{f"o:{k}": v for k, v in original.items()}, **{f"m:{k}": v for k, v in manipulated.items()},
                 threshold_class=thresholds["class"], threshold_unit=thresholds["unit"],
                 natural_score_max=natural_score_max)
    natural_report = {}
    for key in units:
        values = original["logits"][:, class_index] if key == "class" else original["unit"]
        m_values = manipulated["logits"][:, class_index] if key == "class" else manipulated["unit"]
        limit = thresholds[key]
        natural_report[key] = {
            "unit": {"class": cfg["class"], "label": classes.name(cfg["class"])} if key == "class"
            else {"layer": unit_layer, "channel": unit_channel},
            "threshold": limit, "gain": cfg["gain"], "calibration_max": float(values[calibration].max()),
            "all_images": invariance(original, manipulated, (values, m_values), limit, np.ones(len(paths), bool)),
            "held_out_half": invariance(original, manipulated, (values, m_values), limit, ~calibration)}
        log(f"fooling: {key} branch: {natural_report[key]['all_images']}")
    circuits = {"class": circuit, "unit": circuit}

    # Visualisations at the test's resolution (a smaller image keeps the CPU run short).
    size = int(cfg["resolution"])
    fv_spec = replace(spec, input_size=size, resize_size=round(size * spec.resize_size / spec.input_size))
    top_units = np.argsort(-original["unit"])[: int(cfg["unit_references"])]
    class_refs = select_class_references(index, cfg["class"], int(cfg["class_references"]), config["seed"],
                                         config["references"]["augment"]).references
    unit_refs = [{"image_id": index.image_id[i], "path": paths[i], "view": original_view()} for i in top_units]
    for ref in class_refs + unit_refs:
        ref["sha256"] = sha256_file(ref["path"])
    natural_profiles = {}
    for key, refs in (("class", class_refs), ("unit", unit_refs)):
        x = reference_views([(r["path"], r["view"]) for r in refs], spec)
        with torch.no_grad(), capture_outputs(model, layers) as acts:
            model(x)
            natural_profiles[key] = {n: channel_means(acts[n]).mean(0).numpy() for n in layers}
    unit_id = f"{unit_layer}_c{unit_channel}"
    seed_images = {"class": class_refs[0]["path"], "unit": unit_refs[0]["path"]}
    accentuations = [{"image": seed_images["class"], "target": cfg["class"]},
                     {"image": seed_images["unit"], "target": unit_id}]
    target_ids = {"class": {"plain": cfg["class"], "seeded": accentuation_id(accentuations[0])},
                  "unit": {"plain": unit_id, "seeded": accentuation_id(accentuations[1])}}
    references = {cfg["class"]: class_refs, unit_id: unit_refs,
                  target_ids["class"]["seeded"]: class_refs, target_ids["unit"]["seeded"]: unit_refs}

    work = out_dir / "_work" / str(size)  # VITAL's prototype cache and MACO's spectrum, at this size
    spectrum = spectrum_path(work, size)
    if "maco" in cfg["methods"] and not spectrum.is_file():
        magnitude, _, _ = natural_spectrum(index, size, count=int(config["generate"]["maco"]["spectrum_images"]),
                                           seed=config["seed"])
        spectrum.parent.mkdir(parents=True, exist_ok=True)
        np.savez(spectrum, magnitude=magnitude)
    (work / "00_index").mkdir(parents=True, exist_ok=True)
    index.to_csv(work / "00_index" / "images.csv", index=False)

    rows = []
    seeds = [int(s) for s in cfg["seeds"]]
    for method_name in cfg["methods"]:
        settings = method_settings(config, method_name, cfg["method_settings"].get(method_name, {}))
        for key in ("class", "unit"):
            if method_name == "deepinversion" and key == "unit":
                continue  # DeepInversion inverts classes only
            seeded = get_method(method_name).serves("accentuation")
            target = parse_target(target_ids[key]["seeded" if seeded else "plain"], accentuations=accentuations)
            for variant in VARIANTS:
                net = model if variant == "original" else circuits[key].model
                method = get_method(method_name).method_class()(method_name, fv_spec, net, settings, work, torch.device("cpu"))
                plan = method.plan([target] * len(seeds), {target.id: references[target.id]})
                per = plan.images_per_target
                generators = [g for s in seeds for g in image_generators(s, spec.name, method_name, [target.id], per)]
                log(f"fooling: {method_name} {key} on the {variant} model, seeds {seeds}")
                result = plan.optimise(fv_spec.normalize, generators, torch.device("cpu"))
                images = result.images[::per]
                pattern = score(images).numpy()
                with torch.no_grad():
                    x = fv_spec.normalize(images)
                    if key == "class":
                        values = net(x)[:, class_index].numpy()
                    else:
                        with capture_pre_activation(net, unit_layer) as pre:
                            net(x)
                        values = channel_means(pre[unit_layer])[:, unit_channel].numpy()
                path_rho = path_similarity(model, fv_spec, images, layers, natural_profiles[key])
                for i, s in enumerate(seeds):
                    png = out_dir / variant / method_name / target.id / f"seed{s}.png"
                    save_png(png, _to_png(images[i]))
                    save_png(png.with_name(f"seed{s}_alpha.png"), _alpha_png(result.alpha[i * per]))
                    rows.append({"unit": key, "target": target.id, "method": method_name, "variant": variant,
                                 "seed": s, "pattern_score": float(pattern[i]), "unit_value": float(values[i]),
                                 "over_threshold": bool(values[i] > circuit.threshold(units[key])),
                                 "path_rho": float(path_rho[i]), "png": str(png),
                                 "seconds": result.compute["seconds"]})
    measures = pd.DataFrame(rows)
    measures.to_csv(out_dir / "measures.csv", index=False)
    summary = summarise(measures)
    summary.to_csv(out_dir / "summary.csv", index=False)
    pattern_png = out_dir / "planted_pattern.png"
    save_png(pattern_png, _to_png(score.pattern(size)))
    report = {"natural_images": natural_report, "images": len(paths), "calibration": "every other image by image id",
              "resolution": size, "seeds": seeds, "methods": cfg["methods"], "pattern": asdict(score),
              "seed_images": seed_images, "pattern_png": str(pattern_png),
              "pattern_score_of_the_pattern": float(score(score.pattern(size)[None])[0]),
              "natural_pattern_score_max": natural_score_max,
              "manipulated_model": "one copy carrying both planted units (class logit and inner channel)"}
    write_json(out_dir / "fooling.json", report)
    return report


def summarise(measures: pd.DataFrame) -> pd.DataFrame:
    """Per (unit, method, measure): mean and t-interval on each model and of the paired difference."""
    rows = []
    for (unit, method), group in measures.groupby(["unit", "method"], sort=False):
        by = {v: group[group.variant == v].sort_values("seed") for v in VARIANTS}
        for measure in ("pattern_score", "path_rho", "unit_value"):
            row = {"unit": unit, "method": method, "measure": measure, "seeds": len(by["original"])}
            for variant in VARIANTS:
                row[f"{variant}_mean"], row[f"{variant}_low"], row[f"{variant}_high"] = t_interval(by[variant][measure])
            diff = by["manipulated"][measure].to_numpy() - by["original"][measure].to_numpy()
            row["difference_mean"], row["difference_low"], row["difference_high"] = t_interval(diff)
            rows.append(row)
    return pd.DataFrame(rows)


def merge(parts: list[Path], out_dir: Path) -> None:
    """Combine runs of the same test (same natural passes and thresholds) that ran different methods."""
    reports = [read_json(p / "fooling.json") for p in parts]
    if any(r["natural_images"] != reports[0]["natural_images"] or r["seeds"] != reports[0]["seeds"]
           for r in reports):
        raise VitalStudyError("fooling --merge: the parts differ in their natural-image pass or seeds")
    measures = pd.concat([pd.read_csv(p / "measures.csv") for p in parts], ignore_index=True)
    if measures.duplicated(["unit", "method", "variant", "seed"]).any():
        raise VitalStudyError("fooling --merge: a method appears in more than one part")
    out_dir.mkdir(parents=True, exist_ok=True)
    measures.to_csv(out_dir / "measures.csv", index=False)
    summarise(measures).to_csv(out_dir / "summary.csv", index=False)
    write_json(out_dir / "fooling.json", {**reports[0], "methods": list(dict.fromkeys(measures.method)),
                                          "merged_from": [str(p) for p in parts]})
