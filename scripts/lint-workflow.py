"""`make lint`, workflow half: run `snakemake --lint` on each shipped config and fail on any lint
that is not explained below. This is the one place where the lints we keep are explained."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = ("config/config.yaml", "config/demo-full.yaml", "config/sample.yaml", "config/paper.yaml")

# Lints we keep, by title, and why.
EXPLAINED = {
    "Specify a conda environment or container for each rule.":
        "every rule runs the `vitalstudy` command of this package; the package is the environment, installed "
        "once from the hashed lock (requirements.lock, `make lock`). A per-rule conda env would install torch "
        "and its CUDA libraries once per rule.",
    "Shell command directly uses variable VITALSTUDY from outside of the rule":
        "VITALSTUDY is the one command every rule runs (the interpreter running Snakemake, `-m vitalstudy`: "
        "the README's commands work without the venv on PATH), set once in common.smk. As a param of each rule "
        "it would enter every job's parameters, so moving the venv would re-run the whole workflow.",
    "Param run_dir is a prefix of input or output file but hardcoded":
        "--run-dir of generate and of references select is the run folder (results/<run>) the job writes its "
        "per-target files into where the layout puts them (generate also reads references there), not an output "
        "folder of the job: the declared output is the job record; directory() would make Snakemake delete the run.",
    "Param run is a prefix of input or output file but hardcoded":
        "the forms command reads the whole run folder (FVs, references, index) given as --run; it writes only "
        "the declared files under 04_study/<study>.",
    "Param out_dir is a prefix of input or output file but hardcoded":
        "metrics tables writes several declared files (table<k>.csv/.md/.tex) into this folder; declaring the "
        "folder as directory() would lose the per-file outputs that figures and `rule all` depend on.",
}


def lints(config: str) -> list[tuple[str, str]]:
    """(where, title) of every lint snakemake reports for this config."""
    with tempfile.TemporaryDirectory() as imagenet:  # the paper config checks that an ImageNet root exists
        (Path(imagenet) / "train").mkdir()
        result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--configfile", config, "--config",
                                 "run=lint"], capture_output=True, text=True, env={**os.environ, "IMAGENET_ROOT": imagenet,
                                                                  "VITALSTUDY_PREFLIGHT": "0"})  # lint runs no job
    found, where = [], "?"
    for line in (result.stdout + result.stderr).splitlines():
        header = re.match(r"Lints for (.*?)(?: \(line \d+, .*\))?:$", line)
        if header:
            where = header.group(1)
        item = re.match(r"\s+\* (.*?):$", line)
        if item:
            found.append((where, item.group(1)))
    if result.returncode not in (0, 1) or (result.returncode == 1 and not found):
        sys.exit(f"snakemake --lint failed on {config}:\n{result.stderr[-2000:]}")
    return found


def main() -> int:
    unexplained = 0
    for config in CONFIGS:
        found = lints(config)
        print(f"snakemake --lint {config}: {len(found)} lints")
        for where, title in found:
            known = title in EXPLAINED
            unexplained += not known
            print(f"  {'explained' if known else 'NEW      '}  {where}: {title}")
    for title, why in EXPLAINED.items():
        print(f"kept: {title}\n      {why}")
    if unexplained:
        print(f"{unexplained} unexplained lints: fix them, or explain them in scripts/lint-workflow.py", file=sys.stderr)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
