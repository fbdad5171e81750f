"""`vitalstudy references`: stage 1 (patch scoring for inner neurons, then per-target selection)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from vitalstudy.data.sources import read_index
from vitalstudy.io import atomic_path, save_png, write_json
from vitalstudy.provenance import Provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stage-config", required=True,
                        help="JSON with the config keys this stage reads: seed, device, references, models")
    common.add_argument("--index", required=True, help="the run's 00_index/images.csv")
    common.add_argument("--model", required=True)
    score = sub.add_parser("score-patches", parents=[common], help="best-patch scores of candidate images for a layer")
    score.add_argument("--layer", required=True)
    score.add_argument("--out", required=True, help=".npz to write")
    select = sub.add_parser("select", parents=[common], help="choose the references of one target")
    select.add_argument("--target", required=True, help="WordNet id or <layer>_c<channel>")
    select.add_argument("--patch-scores", help="the layer's .npz (inner-neuron targets)")
    select.add_argument("--out-json", required=True)
    select.add_argument("--out-png", required=True)
    select.add_argument("--provenance", required=True)
    circuits = sub.add_parser("circuits", help="a class's most relevant last-hidden-layer channels (Fig. 4)")
    circuits.add_argument("--stage-config", required=True)
    circuits.add_argument("--model", required=True)
    circuits.add_argument("--references", required=True, help="the class's 01_references JSON")
    circuits.add_argument("--out", required=True)


def _score(args, cfg) -> int:
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.features import resolve_device
    from vitalstudy.references.select import score_patches

    device = resolve_device(cfg.get("device", "auto"))
    spec = get_spec(args.model)
    model = load_model(args.model, weights=cfg.get("models", {}).get("weights", {}).get(args.model), device=device)
    refs = cfg["references"]
    result = score_patches(model, spec, read_index(args.index), args.layer, refs["patch"]["size"],
                           refs["patch"]["stride"], refs["neuron_candidates"], cfg["seed"], device)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, image_ids=result["image_ids"], scores=result["scores"], boxes=result["boxes"],
                     parameters=json.dumps(result["parameters"]), skipped=json.dumps(result["skipped"]))
    return 0


def _load_scores(path: str) -> dict:
    with np.load(path) as data:
        return {"image_ids": data["image_ids"], "scores": data["scores"], "boxes": data["boxes"],
                "parameters": json.loads(str(data["parameters"])), "skipped": json.loads(str(data["skipped"]))}


def _select(args, cfg) -> int:
    from vitalstudy.references.montage import montage
    from vitalstudy.references.select import select_class_references, select_neuron_references
    from vitalstudy.data.classes import classes_for
    from vitalstudy.references.targets import parse_target

    target = parse_target(args.target, cfg.get("concepts"), classes=classes_for(args.model))
    refs_cfg = cfg["references"]
    prov = Provenance("references", {"model": args.model, "target": args.target, "references": refs_cfg},
                      seed=cfg["seed"])
    prov.add_input(args.index)
    index = read_index(args.index)
    if target.kind == "class":
        selection = select_class_references(index, target.wnid, refs_cfg["class_count"], cfg["seed"],
                                            refs_cfg.get("augment", {}))
    elif target.kind == "concept":
        from vitalstudy.models import get_spec, load_model
        from vitalstudy.models.features import resolve_device
        from vitalstudy.references.select import select_concept_references

        device = resolve_device(cfg.get("device", "auto"))
        model = load_model(args.model, weights=cfg.get("models", {}).get("weights", {}).get(args.model), device=device)
        prov.add_input(target.direction_file)
        selection = select_concept_references(model, get_spec(args.model), index, target.layer, target.direction(),
                                              refs_cfg["neuron_count"], refs_cfg["neuron_candidates"], cfg["seed"], device)
    else:
        if not args.patch_scores:
            raise SystemExit("vitalstudy references select: --patch-scores is required for inner-neuron targets")
        prov.add_input(args.patch_scores)
        selection = select_neuron_references(index, _load_scores(args.patch_scores), target.channel,
                                             refs_cfg["neuron_count"])
    hashes = {}
    for ref in selection.references:
        if ref["path"] not in hashes:
            hashes[ref["path"]] = prov.add_input(ref["path"])
        ref["sha256"] = hashes[ref["path"]]
    used = {r["image_id"] for r in selection.references}
    pools = set(index[index["image_id"].isin(used)]["pool"])
    write_json(args.out_json, {
        "target": target.as_dict(), "model": args.model, "references": selection.references,
        "how": selection.how, "seed": cfg["seed"], "skipped": selection.skipped,
        "disjoint_from_metrics": "both" not in pools,
    })
    save_png(args.out_png, montage(selection.references, refs_cfg.get("montage_columns", 8)))
    for path in (args.out_json, args.out_png):
        prov.add_output(path)
    prov.write(args.provenance)
    for item in selection.skipped:
        print(f"vitalstudy references: skipped {item['path']}: {item['reason']}")
    return 0


def _circuits(args, cfg) -> int:
    from vitalstudy.io import read_json
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.features import resolve_device
    from vitalstudy.references.circuits import top_channels

    device = resolve_device(cfg.get("device", "auto"))
    spec = get_spec(args.model)
    model = load_model(args.model, weights=cfg.get("models", {}).get("weights", {}).get(args.model), device=device)
    refs = read_json(args.references)
    prov = Provenance("circuits", {"model": args.model, "count": cfg["references"]["circuit_channels"]},
                      seed=cfg["seed"], device=str(device))
    prov.add_input(args.references)
    result = top_channels(spec, model, refs["target"]["wnid"], refs["references"],
                          cfg["references"]["circuit_channels"], device)
    write_json(args.out, {**result, "provenance": prov.record})
    return 0


def run(args: argparse.Namespace) -> int:
    cfg = json.loads(args.stage_config)
    actions = {"score-patches": _score, "select": _select, "circuits": _circuits}
    return actions[args.action](args, cfg)
