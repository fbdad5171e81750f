"""The ``vitalstudy`` command: one subcommand per stage.

One scheme for every command: a stage's commands live in its package's ``cli.py`` (a core module that is
one command, like ``config`` or ``audit``, holds its own), which maps each command name to its pair
``(add_arguments(parser), run(args) -> int)`` in ``COMMANDS``. Modules are imported only when chosen, so
``vitalstudy --help`` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vitalstudy.errors import VitalStudyError

# name -> (module holding it in COMMANDS, one-line help). Stage modules live beside the code they drive.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "check-config": ("vitalstudy.config", "validate a config file and print the resolved config"),
    "preflight": ("vitalstudy.preflight", "list every asset (weights, images, CLIP, text encoder) a config needs and lacks"),
    "index": ("vitalstudy.data.cli", "list a run's source images with their class and pool"),
    "references": ("vitalstudy.references.cli", "select reference images for targets (stage 1)"),
    "generate": ("vitalstudy.fv.cli", "generate feature visualizations for a batch of targets (stage 2)"),
    "maco-spectrum": ("vitalstudy.fv.cli", "the natural-image Fourier magnitude MACO keeps fixed (an asset)"),
    "bench": ("vitalstudy.fv.cli", "measure generation throughput per batch size and pick the fastest"),
    "plan": ("vitalstudy.estimate", "jobs per stage and estimated device-hours of a config's workflow"),
    "forms": ("vitalstudy.study.cli", "build a study's blinded forms, answer key and codebook (stage 4)"),
    "serve": ("vitalstudy.study.cli", "host a study's forms and collect submissions into SQLite"),
    "metrics": ("vitalstudy.metrics.cli", "automated metrics of FVs and the paper's tables (stage 3)"),
    "responses": ("vitalstudy.study.cli", "ingest, score or simulate study responses (stage 5)"),
    "figures": ("vitalstudy.figures.cli", "draw one figure of the paper with its statistics table (stage 6)"),
    "accentuations": ("vitalstudy.metrics.cli", "metrics and figure of a run's feature accentuations"),
    "fooling": ("vitalstudy.fooling.cli", "the fooling-circuit test: which FV methods a manipulated model tricks"),
    "layers": ("vitalstudy.models.cli", "list a model's hookable layers with output shapes and VITAL's defaults"),
    "audit": ("vitalstudy.audit", "verify a run's provenance, config and outputs; re-run a stage on a sample"),
}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitalstudy", description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, metavar="K", dest="claim_gpus",
                        help="claim K of this host's GPUs for the command (CUDA_VISIBLE_DEVICES, one job per device; "
                             "0 hides every GPU); the workflow passes its jobs' `gpu` resource here")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == load:
            add_arguments, _ = command(name)
            add_arguments(p)
    return parser


def command(name: str):
    """The (add_arguments, run) pair of a subcommand, from the module that holds it."""
    return importlib.import_module(SUBCOMMANDS[name][0]).COMMANDS[name]


def _register_models(args: argparse.Namespace) -> None:
    """A job's stage config (or --models) carries the config's resolved model declarations
    (models.declare): make them known before the stage asks for a model by name."""
    import json

    from vitalstudy.models.registry import register_declared  # torch-free; a declaration imports torch itself

    if getattr(args, "stage_config", None):
        register_declared(json.loads(args.stage_config).get("models"))
    if isinstance(getattr(args, "models", None), str):  # stages that read the config's models section alone
        # (`bench --models` is a list of names, not a section)
        section = json.loads(args.models)
        register_declared(section if isinstance(section, dict) else None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    args = build_parser(load=chosen).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    if os.environ.get("SLURM_JOB_ID"):  # where a cluster job ran, at the top of its log
        print(f"vitalstudy {args.command}: SLURM job {os.environ['SLURM_JOB_ID']}, partition "
              f"{os.environ.get('SLURM_JOB_PARTITION', '?')}, node {os.environ.get('SLURMD_NODENAME', '?')}",
              file=sys.stderr)
    if args.claim_gpus is not None:  # before the stage module imports torch
        from vitalstudy.gpu_slots import assign

        assign(args.claim_gpus)
    _, run = command(args.command)
    try:
        _register_models(args)
        return int(run(args) or 0)
    except VitalStudyError as exc:
        print(f"vitalstudy {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
