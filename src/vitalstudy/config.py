"""Loading and validating run configs: JSON-schema first, then checks that need the registries.

Every failure is a ConfigError whose one-line message names the key (``images.path``) and the
problem. Defaults written in the schema are filled in, so the resolved config says everything.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from vitalstudy.errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _with_defaults(validator_class):
    """A validator that also fills in `default` values (the jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
                elif sub.get("type") == "object" and name not in instance and "properties" in sub \
                        and not sub.get("required"):
                    instance[name] = {}
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(Draft202012Validator)


@lru_cache(maxsize=None)
def packaged_schema(name: str) -> dict:
    """A JSON schema shipped in vitalstudy/schemas (workflow/schemas links to the same files).
    Cached: treat the result as read-only."""
    return yaml.safe_load(resources.files("vitalstudy.schemas").joinpath(name).read_text(encoding="utf-8"))


def schema() -> dict:
    return packaged_schema("config.schema.yaml")


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{_key(error.absolute_path + type(error.absolute_path)(extra[:1]))}: unknown key (allowed here: {allowed})"
    if error.validator == "required":
        return f"{_key(error.absolute_path)}: {error.message}"
    if error.validator == "oneOf":
        return (f"{_key(error.absolute_path)}: {error.instance!r} is neither 'all' nor a list of class ids "
                f"(WordNet ids like 'n07920052', or the ids of a model's labels file)")
    return f"{_key(error.absolute_path)}: {error.message}"


def expand_env(value: str, key: str) -> str:
    def repl(match):
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{key}: environment variable {name} is not set (used in {value!r})")

    return _ENV.sub(repl, value)


def validate(config: dict, check_paths: bool = True) -> dict:
    """Validate `config` (a copy is returned with defaults filled in) or raise ConfigError.

    `check_paths=False` (dry runs) skips the checks that files and folders exist, so a plan can be
    listed on a machine without the data.
    """
    config = copy.deepcopy(config)
    errors = sorted(_Validator(schema()).iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_semantics(config, check_paths)
    return config


def schema_default(key: str):
    """The schema's default of a dotted key (`study.salt_env`), for a command's option that mirrors it."""
    node = schema()
    for part in key.split("."):
        node = node["properties"][part]
    return node["default"]


def section_defaults(section: str, values: dict | None = None) -> dict:
    """One top-level section, `values` over the schema's defaults (checked by the schema only): what
    code outside a validated run (tests, benchmarks) hands to a stage in place of the run's config."""
    instance = {section: copy.deepcopy(values or {})}
    root = schema()
    errors = list(_Validator({**root, "required": [], "properties": {section: root["properties"][section]}})
                  .iter_errors(instance))
    if errors:
        raise ConfigError(_describe(errors[0]))
    return instance[section]


def _check_semantics(config: dict, check_paths: bool) -> None:
    from vitalstudy.fv.registry import METHODS
    from vitalstudy.models.registry import get_spec

    _check_models(config, check_paths)
    models = config["models"]
    for section in ("generate", "fooling"):
        for i, name in enumerate(config.get(section, {}).get("methods", [])):
            if name not in METHODS:
                raise ConfigError(f"{section}.methods[{i}]: unknown method {name!r}; known: {', '.join(METHODS)}")
    _check_target_kinds(config.get("generate", {}))

    images = config["images"]
    if images["source"] in ("folder", "imagenet"):
        if not images.get("path"):
            raise ConfigError(f"images.path: required when images.source is {images['source']!r}")
        override = os.environ.get("VITALSTUDY_IMAGES")
        images["path"] = override or expand_env(images["path"], "images.path")
        root = Path(images["path"])
        if check_paths and not root.is_dir():
            raise ConfigError(f"images.path: directory {images['path']} does not exist")
        if check_paths and images["source"] == "imagenet" and not (root / "train").is_dir():
            raise ConfigError(f"images.path: {images['path']} has no train/ folder (expected train/<wnid>/*)")

    _check_class_targets(config, check_paths)
    for i, concept in enumerate(config["targets"].get("concepts", [])):
        concept["direction"] = expand_env(concept["direction"], f"targets.concepts[{i}].direction")
        if check_paths and not Path(concept["direction"]).is_file():
            raise ConfigError(f"targets.concepts[{i}].direction: file {concept['direction']} does not exist")
        for name in [concept["model"]] if concept.get("model") else models["targets"]:
            _check_layer(f"targets.concepts[{i}].layer", name, concept["layer"])
    for i, group in enumerate(config["targets"].get("neurons", [])):
        model = group.get("model")
        if model is not None and model not in models["targets"]:
            raise ConfigError(f"targets.neurons[{i}].model: {model!r} is not one of models.targets")
        for name in [model] if model else models["targets"]:
            if group["layer"] != get_spec(name).neuron_layer:
                _check_layer(f"targets.neurons[{i}].layer", name, group["layer"])
    for name, weights in config.get("generate", {}).get("vital", {}).get("layer_weights", {}).items():
        if name in models["targets"]:
            for layer in weights:
                _check_layer(f"generate.vital.layer_weights.{name}", name, layer)


def _check_target_kinds(generate: dict) -> None:
    """generate.target_kinds may only narrow a method to kinds it can visualise. A method it names that
    generate.methods leaves out is allowed (an overlay may change the methods and keep this key)."""
    from vitalstudy.fv.registry import METHODS

    for method, kinds in generate.get("target_kinds", {}).items():
        key = f"generate.target_kinds.{method}"
        if method not in METHODS:
            raise ConfigError(f"{key}: unknown method {method!r}; known: {', '.join(METHODS)}")
        for i, kind in enumerate(kinds):
            refusal = METHODS[method].kind_refusal(kind)
            if refusal:
                raise ConfigError(f"{key}[{i}]: {method} cannot run {kind} targets ({refusal})")


def _check_class_targets(config: dict, check_paths: bool) -> None:
    """Every class id a target names is a class of every target model it is made for (ImageNet-1k,
    or the model's labels file): a one-line error naming the key, the model and the nearest ids."""
    from vitalstudy.data.classes import classes_for
    from vitalstudy.models.registry import get_spec
    from vitalstudy.targets import parse_target

    targets = config["targets"]
    for model in config["models"]["targets"]:
        labels = get_spec(model).classes
        if labels and not check_paths and not Path(labels).is_file():
            continue  # a dry run without the data
        classes = classes_for(model)
        wanted = targets.get("classes", [])
        for key, ids in (("targets.classes", [] if wanted == "all" else wanted),
                         ("targets.circuits", targets.get("circuits", []))):
            for i, class_id in enumerate(ids):
                if class_id not in classes:
                    raise classes.unknown(f"{key}[{i}]", class_id, model)
        for i, entry in enumerate(targets.get("accentuations", [])):
            if entry.get("model") in (None, model):
                try:
                    parse_target(str(entry["target"]), targets.get("concepts"), classes=classes)
                except ConfigError as exc:
                    raise ConfigError(f"targets.accentuations[{i}].target: {exc} ({model})") from None


def _models_used(config: dict) -> list[tuple[str, str]]:
    """(config key, model name) of every model the config names."""
    models = config["models"]
    used = [(f"models.targets[{i}]", n) for i, n in enumerate(models["targets"])]
    used += [("models.held_out", models["held_out"])] if models.get("held_out") else []
    fid = config.get("metrics", {}).get("fid", {}).get("feature_model")
    used += [("metrics.fid.feature_model", fid)] if fid else []
    return used + [(f"models.weights.{n}", n) for n in models.get("weights", {})]


def _check_models(config: dict, check_paths: bool) -> None:
    """Resolve every declared model (a torchvision classification name needs no declaration),
    register them for this process and record the sha256 of every file each model reads."""
    from vitalstudy.models.registry import REGISTRY

    models = config["models"]
    declared = models.setdefault("declare", {})
    for key, name in _models_used(config):
        if name in REGISTRY or name in declared:
            continue
        from vitalstudy.models.declarations import nearest, torchvision_classifiers  # imports torch: only for others

        if name in torchvision_classifiers():
            declared[name] = validate_declaration({})
            continue
        known = [*REGISTRY, *declared]
        raise ConfigError(f"{key}: unknown model {name!r}; nearest: {nearest(name, known + torchvision_classifiers())}; "
                          f"known: {', '.join(known)}, any torchvision classification model, or one declared "
                          f"under models.declare")
    resolve_model_declarations(models, check_paths)
    for name, path in models.get("weights", {}).items():
        models["weights"][name] = path = expand_env(path, f"models.weights.{name}")
        if check_paths and not Path(path).is_file():
            raise ConfigError(f"models.weights.{name}: weight file {path} does not exist")
    models["assets"] = model_assets(config)


def resolve_model_declarations(models: dict, check_paths: bool = True) -> dict:
    """Complete every declaration of a `models` section in place (schema defaults, inferred
    layers, checked names) and register them for this process; returns the section."""
    from vitalstudy.models.registry import is_weights_file, register_declared
    from vitalstudy.provenance import asset_digest

    declared = models.setdefault("declare", {})
    for name, decl in declared.items():
        decl = validate_declaration(decl, name)
        if decl["source"] == "timm" and not (is_weights_file(decl["weights"]) or name in models.get("weights", {})):
            raise ConfigError(f"models.declare.{name}.weights: a timm model needs a local checkpoint file "
                              f"(timm's pretrained download is not used)")
        if is_weights_file(decl["weights"]):
            decl["weights"] = expand_env(decl["weights"], f"models.declare.{name}.weights")
            if check_paths and not Path(decl["weights"]).is_file():
                raise ConfigError(f"models.declare.{name}.weights: weight file {decl['weights']} does not exist")
        if decl.get("classes"):
            decl["classes"] = expand_env(decl["classes"], f"models.declare.{name}.classes")
            if check_paths and not Path(decl["classes"]).is_file():
                raise ConfigError(f"models.declare.{name}.classes: labels file {decl['classes']} does not exist")
        labels = decl.get("classes")
        digest = asset_digest(labels) if labels and Path(labels).is_file() else None  # an edited file: checked again
        declared[name] = copy.deepcopy(_resolved(name, json.dumps(decl, sort_keys=True), digest))
    register_declared(models)
    return models


@lru_cache(maxsize=None)
def _resolved(name: str, decl_json: str, _labels_sha256: str | None = None) -> dict:
    """A declaration resolved once per process (Snakemake validates the config more than once).
    Cached: callers get a copy."""
    from vitalstudy.models.declarations import resolve_declaration

    return resolve_declaration(name, json.loads(decl_json))


def section_with_defaults(section: str, value: dict) -> dict:
    """One top-level config section (e.g. `generate`) checked and completed with the schema's
    defaults, for callers without a whole config (the Python API)."""
    value = copy.deepcopy(value)
    sub = {**schema()["properties"][section], "$defs": schema()["$defs"]}
    errors = list(_Validator(sub).iter_errors(value))
    if errors:
        error = errors[0]
        error.path.appendleft(section)  # name the key from the top, as for a whole config
        raise ConfigError(_describe(error))
    return value


def validate_declaration(decl: dict, name: str = "<model>") -> dict:
    """A model declaration with the schema's defaults filled in (or ConfigError)."""
    decl = copy.deepcopy(decl)
    sub = {**schema()["$defs"]["model_declaration"], "$defs": schema()["$defs"]}
    errors = list(_Validator(sub).iter_errors(decl))
    if errors:
        error = errors[0]
        error.path.extendleft(reversed(["models", "declare", name]))
        raise ConfigError(_describe(error))
    return decl


def model_assets(config: dict) -> dict[str, dict[str, str]]:
    """{model: {file: sha256}} of the files each model the config names reads (those present):
    as part of the jobs' parameters, a swapped weight file makes Snakemake re-run them."""
    from vitalstudy.errors import MissingAssetError
    from vitalstudy.models.assets import required_assets
    from vitalstudy.provenance import asset_digest

    assets = {}
    for _key, name in _models_used(config):
        try:
            files = required_assets(name, config["models"].get("weights", {}).get(name))
        except MissingAssetError:
            files = []  # the job that loads the model says what is missing
        assets[name] = {str(f): asset_digest(f) for f in files if Path(f).is_file()}
    return assets


def _check_layer(key: str, model: str, layer: str) -> None:
    from vitalstudy.models.declarations import layer_error

    from vitalstudy.models import get_spec

    names = _layer_names(get_spec(model))
    if layer not in names:
        raise layer_error(key, model, layer, names)


@lru_cache(maxsize=None)
def _layer_names(spec) -> tuple[str, ...]:
    """Module names of an architecture, built once per model however many targets name it."""
    from vitalstudy.models import build_model

    return tuple(name for name, _ in build_model(spec, pretrained=False).named_modules() if name)


def load(paths: list[str | os.PathLike], overrides: dict | None = None, check_paths: bool = True) -> dict:
    """Read YAML config files (later ones override earlier ones, key by key) and validate."""
    merged: dict[str, Any] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        merged = deep_merge(merged, data)
    return validate(deep_merge(merged, overrides or {}), check_paths=check_paths)


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# CLI: `vitalstudy check-config`
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configfiles", nargs="+", help="YAML config files, later ones override earlier ones")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(load(args.configfiles), indent=2))
    return 0


COMMANDS = {"check-config": (add_arguments, run)}
