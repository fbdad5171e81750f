"""`vitalstudy fooling`: run the fooling-circuit test of a config and draw its figure and table."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", nargs="+", help="config file(s), merged in order")
    source.add_argument("--stage-config", help="the resolved config as JSON (the workflow passes it)")
    source.add_argument("--merge", nargs="+", help="output folders of runs of the same test with other "
                                                   "fooling.methods: combine their measures into --out")
    parser.add_argument("--out", required=True, help="output folder, e.g. results/<run>/fooling/<model>")


def run(args: argparse.Namespace) -> int:
    from vitalstudy import config as config_module
    from vitalstudy.fooling.experiment import run as run_test
    from vitalstudy.fooling.figure import draw
    from vitalstudy.provenance import Provenance

    import json

    if args.merge:
        from vitalstudy.fooling.experiment import merge

        merge([Path(d) for d in args.merge], Path(args.out))
        draw(Path(args.out))
        return 0
    cfg = config_module.load(args.config) if args.config else config_module.validate(json.loads(args.stage_config))
    out = Path(args.out)
    prov = Provenance("fooling", {"fooling": cfg["fooling"], "generate": cfg["generate"]}, seed=cfg["seed"],
                      device="cpu")
    run_test(cfg, out)
    draw(out)
    for name in ("fooling.json", "measures.csv", "summary.csv", "fooling.png", "fooling.md"):
        prov.add_output(out / name)
    prov.write(out / "_provenance.json")
    return 0


COMMANDS = {"fooling": (add_arguments, run)}
