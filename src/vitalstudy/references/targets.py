"""Target ids (docs/contracts.md): a WordNet id for a class neuron, `<layer>_c<channel>` for an
inner neuron. One parser so that every stage reads them the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.errors import ConfigError

_NEURON = re.compile(r"^(?P<layer>.+)_c(?P<channel>[0-9]+)$")


@dataclass(frozen=True)
class Target:
    kind: str  # "class" | "neuron"
    id: str
    wnid: str | None = None
    layer: str | None = None
    channel: int | None = None

    def as_dict(self) -> dict:
        if self.kind == "class":
            classes = imagenet_classes()
            return {"kind": "class", "id": self.id, "wnid": self.wnid,
                    "class_index": classes.index(self.wnid), "label": classes.name(self.wnid)}
        return {"kind": "neuron", "id": self.id, "layer": self.layer, "channel": self.channel}


def parse_target(target_id: str) -> Target:
    if target_id in imagenet_classes():
        return Target("class", target_id, wnid=target_id)
    match = _NEURON.match(target_id)
    if match:
        return Target("neuron", target_id, layer=match["layer"], channel=int(match["channel"]))
    raise ConfigError(f"target {target_id!r} is neither a WordNet id nor '<layer>_c<channel>'")


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

