"""Target ids (docs/contracts.md): a class id of the model's class list (a WordNet id for
ImageNet-1k, an id of its labels file otherwise) for a class neuron, `<layer>_c<channel>` for an
inner neuron, `concept-<name>` for a concept direction defined under `targets.concepts`,
`accent-<image>-<target>` for a feature accentuation of a class or inner neuron seeded with an image
(`targets.accentuations`). One parser so that every stage reads them the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vitalstudy.data.classes import NEURON_ID, ClassList, classes_for, imagenet_classes
from vitalstudy.errors import ConfigError


CONCEPT_PREFIX = "concept-"
ACCENT_PREFIX = "accent-"


@dataclass(frozen=True)
class Target:
    kind: str  # "class" | "neuron" | "concept"
    id: str
    wnid: str | None = None  # class: its id in the model's class list (a WordNet id for ImageNet-1k)
    class_index: int | None = None  # class: the model output it names
    label: str | None = None  # class: its readable name
    layer: str | None = None
    channel: int | None = None
    direction_file: str | None = None  # concept: a .npy vector with one value per channel of `layer`
    seed_image: str | None = None  # accentuation: an image id of the run's index, or an image path
    base_id: str | None = None  # accentuation: the id of the class or neuron it accentuates

    @property
    def reference_id(self) -> str:
        """The target whose stage-1 references serve this one (an accentuation: its class or neuron)."""
        return self.base_id or self.id

    def base(self) -> "Target":
        """The class or neuron target itself, without the seed image."""
        return replace(self, id=self.base_id, seed_image=None, base_id=None) if self.base_id else self

    def as_dict(self) -> dict:
        if self.base_id:
            return {**self.base().as_dict(), "id": self.id, "accentuates": self.base_id, "seed_image": self.seed_image}
        if self.kind == "class":
            return {"kind": "class", "id": self.id, "wnid": self.wnid, "class_index": self.class_index,
                    "label": self.label}
        if self.kind == "concept":
            from vitalstudy.io import sha256_file

            return {"kind": "concept", "id": self.id, "layer": self.layer, "direction_file": self.direction_file,
                    "direction_sha256": sha256_file(self.direction_file)}
        return {"kind": "neuron", "id": self.id, "layer": self.layer, "channel": self.channel}

    def direction(self):
        import numpy as np
        import torch

        try:
            vector = np.load(self.direction_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"targets.concepts: direction file {self.direction_file} of {self.id} is not a "
                              f"readable .npy vector ({exc})") from None
        return torch.as_tensor(vector, dtype=torch.float32).flatten()


def parse_target(target_id: str, concepts: list[dict] | None = None,
                 accentuations: list[dict] | None = None, classes: ClassList | None = None) -> Target:
    """`concepts` and `accentuations` are the config's `targets.concepts` and
    `targets.accentuations`, needed only for those ids; `classes` the model's class list
    (`classes_for(spec)`; default ImageNet-1k). A labels file's ids never look like the other kinds."""
    classes = classes if classes is not None else imagenet_classes()
    if target_id.startswith(ACCENT_PREFIX):
        spec = next((a for a in accentuations or [] if accentuation_id(a) == target_id), None)
        if spec is None:
            raise ConfigError(f"target {target_id!r}: no such entry under targets.accentuations")
        base = parse_target(str(spec["target"]), concepts, classes=classes)
        if base.kind not in ("class", "neuron"):
            raise ConfigError(f"targets.accentuations: {target_id!r} accentuates {base.id!r}; only classes and "
                              f"inner neurons ('<layer>_c<channel>') can be accentuated")
        return replace(base, id=target_id, seed_image=str(spec["image"]), base_id=base.id)
    if target_id in classes:
        return Target("class", target_id, wnid=target_id, class_index=classes.index(target_id),
                      label=classes.name(target_id))
    if target_id.startswith(CONCEPT_PREFIX):
        name = target_id[len(CONCEPT_PREFIX):]
        spec = next((c for c in concepts or [] if c["name"] == name), None)
        if spec is None:
            raise ConfigError(f"target {target_id!r}: no concept {name!r} under targets.concepts")
        return Target("concept", target_id, layer=spec["layer"], direction_file=spec["direction"])
    match = NEURON_ID.match(target_id)
    if match:
        return Target("neuron", target_id, layer=match["layer"], channel=int(match["channel"]))
    raise ConfigError(f"target {target_id!r} is neither {classes.describe()}, '<layer>_c<channel>' nor "
                      f"'concept-<name>'")


def accentuation_id(entry: dict) -> str:
    """`accent-<image>-<target>`; `<image>` is the image id, or a path's file stem, made path-safe."""
    image = str(entry["image"])
    key = image.rsplit("/", 1)[-1].rsplit(".", 1)[0] if "/" in image or "." in image else image
    return f"{ACCENT_PREFIX}{re.sub(r'[^A-Za-z0-9_]+', '_', key)}-{entry['target']}"


def accentuation_targets(config: dict, model: str) -> list[str]:
    return list(dict.fromkeys(accentuation_id(a) for a in config["targets"].get("accentuations", [])
                              if a.get("model") in (None, model)))


def neuron_id(layer: str, channel: int) -> str:
    return f"{layer}_c{channel}"


def class_targets(config: dict, model: str | None = None) -> list[str]:
    """targets.classes; "all": every class of `model`'s class list (ImageNet-1k's 1000 without one)."""
    wanted = config["targets"].get("classes", [])
    if wanted != "all":
        return list(wanted)
    return list((classes_for(model) if model else imagenet_classes()).ids)


def neuron_targets(config: dict, model: str) -> list[str]:
    ids = []
    for group in config["targets"].get("neurons", []):
        if group.get("model") in (None, model):
            ids += [neuron_id(group["layer"], c) for c in group["channels"]]
    return ids


def concept_targets(config: dict, model: str) -> list[str]:
    return [CONCEPT_PREFIX + c["name"] for c in config["targets"].get("concepts", []) if c.get("model") in (None, model)]

