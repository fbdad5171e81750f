"""Every random draw of a run comes from here: one stream per purpose, named by keys after the config
seed (e.g. `rng(seed, "references", "class", wnid)`), so each draw depends only on (seed, purpose) and
never on job order or on which targets share a batch.

A stream's seed is a hash of the seed and its keys, except for the purposes in `SEED_ITSELF`: they drew
from the config seed directly before the streams were unified, and still do, so that runs made then keep
their bytes (the image index's pool split, simulated participants, the power analysis)."""

from __future__ import annotations

import hashlib

import numpy as np

SEED_ITSELF = frozenset({("index-pools",), ("simulate", "participants"), ("simulate", "power")})


def derive_seed(base: int, *parts: object) -> int:
    if parts in SEED_ITSELF:
        return int(base)
    text = "/".join([str(base), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def rng(base: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(base, *parts))


def torch_generator(base: int, *parts: object):
    """A CPU torch.Generator on the stream (FV initialisations and transforms draw from these)."""
    import torch  # the torch-free stages (metrics tables, figures, study) use the numpy streams only

    return torch.Generator().manual_seed(derive_seed(base, *parts))
