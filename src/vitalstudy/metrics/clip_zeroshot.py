"""CLIP zero-shot classification of FVs (the paper's Table 1 "Zero-Shot Prediction", App. A.2): does a
model that never saw the FV's optimisation recognise its class?

open_clip `ViT-B-32-quickgelu` with `pretrained='openai'` (plain `ViT-B-32` would run GELU on weights
trained with QuickGELU), or a local checkpoint. Each class embedding is the mean of the normalised
embeddings of the 80 OpenAI ImageNet templates, re-normalised; an image's scores are cosine
similarities to all 1000 classes. Natural images the target model classifies correctly give the
reference row (`method = real`). Weights that cannot be had raise MissingAssetError: the caller writes
`unavailable` rows, never a stand-in model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vitalstudy.config import expand_env
from vitalstudy.errors import ConfigError, MissingAssetError
from vitalstudy.metrics.accuracy import hit_rate_rows, topk_hits

REAL = "real"


@dataclass
class Clip:
    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable
    source: str  # what was loaded, for notes and provenance


def _cached_weights(model_name: str, tag: str) -> str | None:
    """A local copy of open_clip's pretrained file (Hugging Face cache or open_clip's URL cache), if any."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache
    from open_clip import pretrained

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise ConfigError(f"metrics.clip.pretrained: open_clip has no tag {tag!r} for {model_name!r}")
    if cfg.get("hf_hub"):
        for filename in (pretrained.HF_SAFE_WEIGHTS_NAME, pretrained.HF_WEIGHTS_NAME):
            found = try_to_load_from_cache(cfg["hf_hub"].strip("/"), filename)
            if isinstance(found, str):
                return found
    if cfg.get("url"):
        cached = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if cached.is_file():
            return str(cached)
    return None


def load_clip(clip_cfg: dict, device: torch.device) -> Clip:
    """The configured CLIP model in eval mode, or MissingAssetError saying how to provide the weights."""
    import open_clip

    name, tag = clip_cfg["model"], clip_cfg["pretrained"]
    if clip_cfg.get("weights"):
        source = expand_env(clip_cfg["weights"], "metrics.clip.weights")
        if not Path(source).is_file():
            raise MissingAssetError(f"metrics.clip.weights: CLIP checkpoint {source} does not exist")
    else:
        source = _cached_weights(name, tag)
        if source is None and not clip_cfg["download"]:
            raise MissingAssetError(
                f"CLIP weights {name}/{tag} are not in the local caches and metrics.clip.download is false; "
                f"set metrics.clip.weights to a local open_clip checkpoint or allow the download")
        source = source or tag
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=source, device=device)
    except Exception as exc:  # offline downloads fail with several error types
        raise MissingAssetError(f"CLIP weights {name}/{source} could not be loaded "
                                f"({type(exc).__name__}: {str(exc)[:200]}); set metrics.clip.weights "
                                f"to a local open_clip checkpoint") from None
    if Path(source).is_file():  # a local or cached checkpoint: hashed into the stage's provenance
        from vitalstudy.provenance import record_asset

        record_asset(source)
    model.eval().requires_grad_(False)
    return Clip(model, preprocess, open_clip.get_tokenizer(name), f"{name} ({source})")


@torch.inference_mode()
def class_embeddings(clip: Clip, classnames: Sequence[str], templates: Sequence[Callable[[str], str]],
                     device: torch.device, batch_size: int = 1000) -> torch.Tensor:
    """(C, D): per class, the re-normalised mean of its normalised template embeddings.

    Prompts are encoded in batches across classes (80 templates x 1000 classes = 80 000 prompts).
    """
    prompts = [template(name) for name in classnames for template in templates]
    parts = [F.normalize(clip.model.encode_text(clip.tokenizer(prompts[i:i + batch_size]).to(device)), dim=-1)
             for i in range(0, len(prompts), batch_size)]
    per_prompt = torch.cat(parts).float().cpu().view(len(classnames), len(templates), -1)
    return F.normalize(per_prompt.mean(dim=1), dim=-1)


@torch.inference_mode()
def image_embeddings(clip: Clip, images: Sequence, load: Callable[[object], Image.Image], device: torch.device,
                     batch_size: int) -> torch.Tensor:
    """(N, D) normalised image embeddings; `load` turns an item into a PIL image one batch at a time."""
    parts = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([clip.preprocess(load(item)) for item in images[start:start + batch_size]])
        parts.append(F.normalize(clip.model.encode_image(batch.to(device)), dim=-1).float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def zeroshot_rows(model: str, methods: list[str], scores: np.ndarray, true_index: np.ndarray, bootstrap: dict,
                  seed: int, note: str) -> list[dict]:
    """`clip_top1` and `clip_top5` per method from (N, C) similarity scores."""
    return [r for metric, k in (("clip_top1", 1), ("clip_top5", 5))
            for r in hit_rate_rows(metric, model, methods, topk_hits(scores, true_index, k), bootstrap, seed, note)]
