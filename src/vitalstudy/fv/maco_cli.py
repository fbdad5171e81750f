"""`vitalstudy maco-spectrum`: the natural-image Fourier magnitude MACO fixes, from the run's images."""

from __future__ import annotations

import argparse

import numpy as np

from vitalstudy.data.sources import read_index
from vitalstudy.io import atomic_path
from vitalstudy.provenance import Provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="the run's 00_index/images.csv")
    parser.add_argument("--size", type=int, required=True, help="image side (the MACO resolution)")
    parser.add_argument("--count", type=int, default=1000, help="images averaged (a seeded sample)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help=".npz to write")
    parser.add_argument("--provenance", required=True)


def run(args: argparse.Namespace) -> int:
    from vitalstudy.fv.maco import natural_spectrum

    prov = Provenance("maco-spectrum", {"size": args.size, "count": args.count}, seed=args.seed)
    prov.add_input(args.index)
    magnitude, used, skipped = natural_spectrum(read_index(args.index), args.size, args.count, args.seed)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, magnitude=magnitude.astype(np.float32), image_ids=np.asarray(used))
    prov.record.update(images=used, skipped=skipped)
    prov.add_output(args.out)
    prov.write(args.provenance)
    return 0
