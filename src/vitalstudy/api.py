"""`vitalstudy.visualize`: feature visualizations from Python (a notebook, a script), without
Snakemake or a config file, through the same code as the workflow's generation jobs
(`vitalstudy.fv.generate.generate_batch`): the same settings give the same bytes.

    import vitalstudy
    fv = vitalstudy.visualize("efficientnet_lite0", "n07920052", references=["espresso1.jpg", ...], steps=200)
    fv.image, fv.alpha, fv.record      # PIL RGB image, PIL transparency map, the sidecar dict
    fv.save("espresso")                # espresso.png, espresso_alpha.png, espresso.json

`model` is a model name (built in, a torchvision classification model, or declared) or any
`nn.Module`, whose hooked layers, classifier and preprocessing are inferred as for a config
declaration unless `declaration` gives them (the keys of `models.declare.<name>`).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from torch import nn

from vitalstudy.errors import ConfigError

ORIGINAL_VIEW = {"kind": "original", "crop_box": None, "flip": False}


def _spec_and_model(model, name, declaration, weights, device):
    from vitalstudy.config import validate_declaration
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.models.declarations import resolve_declaration, torchvision_classifiers
    from vitalstudy.models.registry import known_models, register_declared, spec_from_declaration

    if isinstance(model, nn.Module):
        name = name or type(model).__name__.lower()
        decl = resolve_declaration(name, validate_declaration({"source": "import", **(declaration or {})}, name), model=model)
        return spec_from_declaration(name, decl), model.eval().requires_grad_(False).to(device)
    if not isinstance(model, str):
        raise ConfigError(f"visualize: model must be a model name or a torch nn.Module, not {type(model).__name__}")
    if declaration is not None or (model not in known_models() and model in torchvision_classifiers()):
        register_declared({"declare": {model: resolve_declaration(model, validate_declaration(declaration or {}, model))}})
    return get_spec(model), load_model(model, weights=weights, device=device)


def _reference_list(references, work: Path, target: str) -> list[dict]:
    """Stage-1 reference records from a references JSON, records, image paths or PIL images."""
    from PIL import Image

    from vitalstudy.io import read_json, sha256_file

    if isinstance(references, (str, Path)) and str(references).endswith(".json"):
        return read_json(references)["references"]
    if references is None or isinstance(references, (str, Path, Image.Image)):
        raise ConfigError(f"visualize: VITAL needs reference images of {target}: a list of image paths or PIL "
                          f"images, or a stage-1 references JSON")
    records = []
    for i, ref in enumerate(references):
        if isinstance(ref, dict):
            records.append({"image_id": Path(ref["path"]).stem, "view": ORIGINAL_VIEW, **ref,
                            "sha256": ref.get("sha256") or sha256_file(ref["path"])})
            continue
        if isinstance(ref, Image.Image):
            path = work / "references" / target / f"ref{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            ref.convert("RGB").save(path)
            ref = path
        records.append({"image_id": Path(ref).stem, "path": str(ref), "sha256": sha256_file(ref), "view": ORIGINAL_VIEW})
    return records


def method_settings(method: str, settings: dict | None = None, steps: int | None = None) -> dict:
    """A method's settings as a generation job reads them: the schema's defaults for
    `generate.<method>`, updated by `settings` and `steps`."""
    from vitalstudy.config import section_with_defaults
    from vitalstudy.fv.settings import method_config, sectioned

    overrides = dict(settings or {})
    if steps is not None:
        overrides["steps"] = int(steps)
    return method_config(section_with_defaults("generate", {"methods": [method], **sectioned(method, overrides)}),
                         method)


def visualize(model, target, method: str = "vital", references=None, steps: int | None = None,
              device: str = "cpu", seed: int = 0, *, name: str | None = None, declaration: dict | None = None,
              weights: str | None = None, settings: dict | None = None, batch_size: int | None = None,
              maco_spectrum: str | Path | None = None, concepts: list[dict] | None = None,
              work_dir: str | Path | None = None, log=None):
    """Feature visualization(s) of `target` (a WordNet id, an ImageNet class index, '<layer>_c<channel>',
    'concept-<name>' with `concepts`, or a list of them, optimised together as in one workflow job).

    `method`: vital, vital_lrp, fourier, maco (give `maco_spectrum`, an .npz from `vitalstudy
    maco-spectrum`) or deepinversion. `references` (vital, vital_lrp): image paths, PIL images or a
    stage-1 references JSON; a dict target -> references for several targets. `settings`: keys of
    the config's `generate.<method>` (schema defaults otherwise); `steps` overrides its steps.
    `batch_size`: images per optimisation batch (default: all targets in one). `work_dir`: where
    reference statistics are cached (default: a temporary folder). Returns a `Visualization`
    (a list for a list of targets) with `.image`, `.alpha`, `.record` and `.save(prefix)`.
    """
    from vitalstudy.data.classes import classes_for
    from vitalstudy.fv.generate import batches, generate_batch, target_fingerprints
    from vitalstudy.fv.maco import spectrum_path
    from vitalstudy.fv.registry import get_method
    from vitalstudy.models.features import resolve_device
    from vitalstudy.targets import parse_target

    info = get_method(method)  # an unknown method: the registry's error, naming the known ones
    single = not isinstance(target, (list, tuple))
    device = resolve_device(device)
    config = method_settings(method, settings, steps)
    spec, module = _spec_and_model(model, name, declaration, weights, device)
    classes = classes_for(spec)
    ids = [classes.id(t) if isinstance(t, int) else str(t) for t in ([target] if single else target)]
    targets = [parse_target(t, concepts, classes=classes) for t in ids]
    with ExitStack() as stack:
        work = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vitalstudy-")))
        if info.asset == "maco_spectrum":
            if maco_spectrum is None:
                raise ConfigError("visualize: method 'maco' needs maco_spectrum, the .npz `vitalstudy maco-spectrum` writes")
            destination = spectrum_path(work, int(config.get("resolution") or spec.input_size))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(maco_spectrum, destination)
        runner = info.method_class()(method, spec, module, config, work, device)
        refs = {t.id: (_reference_list(references.get(t.id) if isinstance(references, dict) else references, work, t.id)
                       if info.reads_references else []) for t in targets}
        assets = list(getattr(runner, "assets", list)())
        fingerprints = target_fingerprints(spec.name, method, targets, seed, config, refs, assets)
        size = batch_size or len(targets) * getattr(runner, "images_per_target", 1)
        results = {fv.target: fv for batch in batches(runner, targets, size)
                   for fv in generate_batch(spec, runner, batch, refs, fingerprints, seed, device, size, False,
                                            log=log or (lambda *_: None))}
    ordered = [results[t.id] for t in targets]
    return ordered[0] if single else ordered
