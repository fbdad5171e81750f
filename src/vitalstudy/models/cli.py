"""`vitalstudy layers <model>`: the layers a model can hook, with their output shapes (one forward
pass of the untrained architecture), and which of them VITAL hooks by default, so a user can fill
in a declaration (`models.declare.<name>`)."""

from __future__ import annotations

import argparse

from vitalstudy.models.registry import ModelSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a built-in model, a torchvision classification model, or one your config declares")
    parser.add_argument("--configfile", nargs="+", default=None,
                        help="config file(s) whose models.declare defines the model")
    parser.add_argument("--input-size", type=int, default=None, help="input side in px (default: the model's)")


def spec_for(name: str, configfiles: list[str] | None) -> ModelSpec:
    """The model's spec: declared by the config files when given, else built in, else a
    torchvision classification model declared with the defaults."""
    from vitalstudy.config import load, validate_declaration
    from vitalstudy.models.declarations import resolve_declaration, torchvision_classifiers
    from vitalstudy.models.registry import REGISTRY, get_spec, spec_from_declaration

    if configfiles:
        load(configfiles)  # registers the declarations
        return get_spec(name)
    if name in REGISTRY:
        return REGISTRY[name]
    if name not in torchvision_classifiers():
        return get_spec(name)  # the unknown-model error, with the nearest names
    return spec_from_declaration(name, resolve_declaration(name, validate_declaration({})))


def default_roles(spec: ModelSpec) -> dict[str, list[str]]:
    """layer -> what VITAL uses it for by default."""
    roles: dict[str, list[str]] = {}
    for layer in spec.class_layers:
        roles.setdefault(layer.name, []).append(f"class x{layer.weight:g}")
    for layer in spec.neuron_layers:
        roles.setdefault(layer.name, []).append(f"neuron x{layer.weight:g}")
    roles.setdefault(spec.neuron_layer, []).append("last hidden (neuron targets)")
    roles.setdefault(spec.classifier, []).append("classifier")
    return roles


def layer_table(spec: ModelSpec, input_size: int | None = None) -> str:
    from vitalstudy.models import build_model
    from vitalstudy.models.declarations import trace_layers

    size = input_size or spec.input_size
    layers, _ = trace_layers(build_model(spec, pretrained=False), size)
    rows = [(l.name, l.type, str(l.shape)) for l in layers if l.shape is not None]
    roles = default_roles(spec)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(("layer", "type", "output shape"))]
    lines = [f"{spec.name} ({spec.family} {spec.factory or spec.variant}): {len(rows)} hookable layers, output "
             f"shapes for a (1, 3, {size}, {size}) input; * = hooked by default",
             f"  {'layer':<{widths[0]}}  {'type':<{widths[1]}}  {'output shape':<{widths[2]}}  VITAL default"]
    for name, kind, shape in rows:
        mark = "*" if name in roles else " "
        row = f"{mark} {name:<{widths[0]}}  {kind:<{widths[1]}}  {shape:<{widths[2]}}  {', '.join(roles.get(name, []))}"
        lines.append(row.rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(layer_table(spec_for(args.model, args.configfile), args.input_size))
    return 0


COMMANDS = {"layers": (add_arguments, run)}
