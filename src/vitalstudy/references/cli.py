"""`vitalstudy references`: stage 1 (patch scoring for inner neurons, then the selection of a batch of targets)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from vitalstudy.config import schema_default, section_defaults
from vitalstudy.data.sources import read_index
from vitalstudy.io import atomic_path, save_png, sha256_file, write_json
from vitalstudy.progress import log, progress
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
    select = sub.add_parser("select", parents=[common], help="choose the references of one or more targets")
    select.add_argument("--targets", nargs="+", required=True, help="WordNet ids, <layer>_c<channel> or concept ids")
    select.add_argument("--patch-scores", nargs="*", default=[], metavar="LAYER=NPZ",
                        help="the patch scores of each inner-neuron layer among the targets")
    select.add_argument("--run-dir", required=True,
                        help="results/<run>: each target's JSON, montage and provenance go where the run layout puts them")
    select.add_argument("--record", required=True, help="job record to write when every target is done")
    circuits = sub.add_parser("circuits", help="a class's most relevant last-hidden-layer channels (Fig. 4)")
    circuits.add_argument("--stage-config", required=True)
    circuits.add_argument("--model", required=True)
    circuits.add_argument("--references", required=True, help="the class's 01_references JSON")
    circuits.add_argument("--out", required=True)


def _score(args, cfg) -> int:
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.features import resolve_device
    from vitalstudy.references.select import score_patches

    device = resolve_device(cfg.get("device", schema_default("device")))
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


def _layer_files(pairs: list[str]) -> dict[str, str]:
    files = {}
    for pair in pairs:
        layer, sep, path = pair.partition("=")
        if not (sep and layer and path):
            raise SystemExit(f"vitalstudy references select: --patch-scores takes LAYER=NPZ, got {pair!r}")
        files[layer] = path
    return files


class _Batch:
    """What the targets of one job share: the index (read and hashed once), the hashes of images
    already read, each layer's patch scores and the model (loaded once, for concept targets)."""

    def __init__(self, args, cfg):
        self.args, self.cfg = args, cfg
        self.index = read_index(args.index)
        self.index_sha256 = sha256_file(args.index)
        self.layer_files = _layer_files(args.patch_scores)
        self.hashes: dict[str, str] = {}
        self._scores: dict[str, dict] = {}
        self._model = None

    def patch_scores(self, layer: str) -> tuple[str, dict]:
        path = self.layer_files.get(layer)
        if path is None:
            raise SystemExit(f"vitalstudy references select: no --patch-scores for layer {layer!r} "
                             f"(inner-neuron targets need their layer's patch scores)")
        if layer not in self._scores:
            self._scores[layer] = _load_scores(path)
        return path, self._scores[layer]

    def model(self):
        if self._model is None:
            from vitalstudy.models import load_model
            from vitalstudy.models.features import resolve_device

            device = resolve_device(self.cfg.get("device", schema_default("device")))
            weights = self.cfg.get("models", {}).get("weights", {}).get(self.args.model)
            self._model = load_model(self.args.model, weights=weights, device=device), device
        return self._model


def _select_target(batch: _Batch, target_id: str, paths) -> dict[str, str]:
    """One target's references: JSON, montage and provenance where the run layout puts them.
    Returns the outputs with their sha256."""
    from vitalstudy.data.classes import classes_for
    from vitalstudy.references.montage import montage
    from vitalstudy.references.select import select_class_references, select_neuron_references
    from vitalstudy.targets import parse_target

    args, cfg, index = batch.args, batch.cfg, batch.index
    target = parse_target(target_id, cfg.get("concepts"), classes=classes_for(args.model))
    # the job's settings as given (its provenance), read over the schema's defaults
    prov = Provenance("references", {"model": args.model, "target": target_id, "references": cfg["references"]},
                      seed=cfg["seed"])
    prov.add_input(args.index, batch.index_sha256)
    refs_cfg = section_defaults("references", cfg["references"])
    if target.kind == "class":
        selection = select_class_references(index, target.wnid, refs_cfg["class_count"], cfg["seed"],
                                            refs_cfg["augment"])
    elif target.kind == "concept":
        from vitalstudy.models import get_spec
        from vitalstudy.references.select import select_concept_references

        model, device = batch.model()
        prov.add_input(target.direction_file)
        selection = select_concept_references(model, get_spec(args.model), index, target.layer, target.direction(),
                                              refs_cfg["neuron_count"], refs_cfg["neuron_candidates"], cfg["seed"], device)
    else:
        path, scores = batch.patch_scores(target.layer)
        prov.add_input(path)
        selection = select_neuron_references(index, scores, target.channel, refs_cfg["neuron_count"])
    for ref in selection.references:
        if ref["path"] not in batch.hashes:
            batch.hashes[ref["path"]] = sha256_file(ref["path"])
        ref["sha256"] = prov.add_input(ref["path"], batch.hashes[ref["path"]])
    used = {r["image_id"] for r in selection.references}
    pools = set(index[index["image_id"].isin(used)]["pool"])
    out_json, out_png = paths.json(args.model, target_id), paths.montage(args.model, target_id)
    write_json(out_json, {
        "target": target.as_dict(), "model": args.model, "references": selection.references,
        "how": selection.how, "seed": cfg["seed"], "skipped": selection.skipped,
        "disjoint_from_metrics": "both" not in pools,
    })
    save_png(out_png, montage(selection.references, refs_cfg["montage_columns"]))
    for path in (out_json, out_png):
        prov.add_output(path)
    prov.write(paths.provenance(args.model, target_id))
    for item in selection.skipped:
        log(f"vitalstudy references: {target_id}: skipped {item['path']}: {item['reason']}")
    return prov.record["outputs"]


def _select(args, cfg) -> int:
    """The references of every target of the job, then the job record (the workflow's output: an
    interrupted job leaves no record, so Snakemake re-runs it; each target's files are written whole)."""
    from vitalstudy.layout import RunLayout

    batch, paths = _Batch(args, cfg), RunLayout(args.run_dir).references
    outputs = {}
    for target_id in progress(args.targets, desc=f"references {args.model}", unit="target",
                              disable=len(args.targets) < 2):
        outputs |= _select_target(batch, target_id, paths)
    write_json(args.record, {"stage": "references", "model": args.model, "targets": args.targets,
                             "outputs": outputs})
    return 0


def _circuits(args, cfg) -> int:
    from vitalstudy.io import read_json
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.features import resolve_device
    from vitalstudy.references.circuits import top_channels

    device = resolve_device(cfg.get("device", schema_default("device")))
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


COMMANDS = {"references": (add_arguments, run)}
