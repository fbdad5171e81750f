"""Seeds derived from the config seed and a job's identity, so each target's randomness depends
only on (config, target, seed) and never on job order or on which targets share a batch."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(base: int, *parts: object) -> int:
    text = "/".join([str(base), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def rng(base: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(base, *parts))
