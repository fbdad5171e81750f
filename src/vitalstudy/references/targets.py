"""Target ids (docs/contracts.md): a WordNet id for a class neuron, `<layer>_c<channel>` for an
inner neuron, `concept-<name>` for a concept direction defined under `targets.concepts`. One
parser so that every stage reads them the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.errors import ConfigError

_NEURON = re.compile(r"^(?P<layer>.+)_c(?P<channel>[0-9]+)$")


CONCEPT_PREFIX = "concept-"


@dataclass(frozen=True)
class Target:
    kind: str  # "class" | "neuron" | "concept"
    id: str
    wnid: str | None = None
    layer: str | None = None
    channel: int | None = None
    direction_file: str | None = None  # concept: a .npy vector with one value per channel of `layer`

    def as_dict(self) -> dict:
        if self.kind == "class":
            classes = imagenet_classes()
            return {"kind": "class", "id": self.id, "wnid": self.wnid,
                    "class_index": classes.index(self.wnid), "label": classes.name(self.wnid)}
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


def parse_target(target_id: str, concepts: list[dict] | None = None) -> Target:
    """`concepts` is the config's `targets.concepts`, needed only for concept ids."""
    if target_id in imagenet_classes():
        return Target("class", target_id, wnid=target_id)
    if target_id.startswith(CONCEPT_PREFIX):
        name = target_id[len(CONCEPT_PREFIX):]
        spec = next((c for c in concepts or [] if c["name"] == name), None)
        if spec is None:
            raise ConfigError(f"target {target_id!r}: no concept {name!r} under targets.concepts")
        return Target("concept", target_id, layer=spec["layer"], direction_file=spec["direction"])
    match = _NEURON.match(target_id)
    if match:
        return Target("neuron", target_id, layer=match["layer"], channel=int(match["channel"]))
    raise ConfigError(f"target {target_id!r} is neither a WordNet id, '<layer>_c<channel>' nor 'concept-<name>'")


def neuron_id(layer: str, channel: int) -> str:
    return f"{layer}_c{channel}"


def class_targets(config: dict) -> list[str]:
    wanted = config["targets"].get("classes", [])
    return list(imagenet_classes().wnids) if wanted == "all" else list(wanted)


def neuron_targets(config: dict, model: str) -> list[str]:
    ids = []
    for group in config["targets"].get("neurons", []):
        if group.get("model") in (None, model):
            ids += [neuron_id(group["layer"], c) for c in group["channels"]]
    return ids


def concept_targets(config: dict, model: str) -> list[str]:
    return [CONCEPT_PREFIX + c["name"] for c in config["targets"].get("concepts", []) if c.get("model") in (None, model)]

