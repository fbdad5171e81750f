"""`vitalstudy index`: write the run's image index (stage 0)."""

from __future__ import annotations

import argparse
import json

from vitalstudy.data.sources import build_index
from vitalstudy.io import atomic_path
from vitalstudy.provenance import Provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="the config's `images` section as JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="images.csv to write")
    parser.add_argument("--skipped", required=True, help="skipped.csv to write (unreadable files)")
    parser.add_argument("--provenance", required=True)


def run(args: argparse.Namespace) -> int:
    images_config = json.loads(args.images)
    prov = Provenance("index", {"images": images_config}, seed=args.seed)
    index, skipped = build_index(images_config, args.seed)
    for path, frame in ((args.out, index), (args.skipped, skipped)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        prov.add_output(path)
    for row in skipped.itertuples():
        print(f"vitalstudy index: skipped {row.path}: {row.reason}")
    prov.record["counts"] = {"indexed": len(index), "skipped": len(skipped),
                             "pools": index["pool"].value_counts().to_dict()}
    prov.write(args.provenance)
    return 0


COMMANDS = {"index": (add_arguments, run)}
