"""Circuits (the paper's Fig. 4): for a class, the channels of the model's last hidden layer that
carry the most LRP relevance for the class logit, averaged over the class's reference images.
Each such channel is then an ordinary inner-neuron target (`<layer>_c<channel>`)."""

from __future__ import annotations

import torch

from vitalstudy.data.classes import classes_for
from vitalstudy.fv.relevance import RelevanceMaps, Start
from vitalstudy.fv.sortmatch import as_channels_by_positions
from vitalstudy.fv.vital import reference_batch
from vitalstudy.models.registry import ModelSpec
from vitalstudy.references.targets import neuron_id


def top_channels(spec: ModelSpec, model, wnid: str, references: list[dict], count: int,
                 device: torch.device) -> dict:
    relevance = RelevanceMaps(spec, model, "lrp")
    classes = classes_for(spec)
    index = classes.index(wnid)
    per_channel = []
    for chunk in reference_batch(spec, references).split(16):
        maps = relevance(chunk.to(device), [spec.neuron_layer], Start("class", indices=(index,) * len(chunk)))
        per_channel.append(as_channels_by_positions(maps[spec.neuron_layer]).sum(-1).cpu())
    mean = torch.cat(per_channel).mean(0)
    values, channels = mean.topk(count)
    return {"class": {"wnid": wnid, "label": classes.name(wnid)}, "model": spec.name,
            "layer": spec.neuron_layer, "references": [r["image_id"] for r in references],
            "how": "top channels of the last hidden layer by LRP relevance (class logit start), "
                   "mean over the class's reference images",
            "channels": [{"channel": int(c), "relevance": float(v), "target": neuron_id(spec.neuron_layer, int(c))}
                         for c, v in zip(channels.tolist(), values.tolist())]}
