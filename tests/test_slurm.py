"""The workflow through a real SLURM (snakemake-executor-plugin-slurm): CPU rules go to the CPU
partition, GPU rules to the GPU partition (names from config), and the jobs call the CLI through
the interpreter that runs Snakemake (no venv on PATH). Needs a running cluster: CI starts a
single-node one with scripts/start-slurm.sh (as root); elsewhere the test is skipped."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import workflow_workdir


def _cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    state = subprocess.run(["sinfo", "-h", "-o", "%a %T"], capture_output=True, text=True)
    return state.returncode == 0 and "up" in state.stdout


@pytest.mark.slow
@pytest.mark.skipif(not _cluster_up(), reason="no SLURM cluster here: start one with `sudo bash scripts/start-slurm.sh`")
def test_tiny_workflow_runs_through_slurm_with_a_partition_per_kind_of_rule(repo, tmp_path):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config.update(run="pytest-slurm", device="auto")
    config["targets"] = {"classes": ["n07920052"], "circuits": []}
    config["references"].update(class_count=2)
    config["generate"].update(methods=["fourier"], fourier={"steps": 3})
    config["cluster"] = {"cpu_partition": "cpu", "gpu_partition": "gpu"}
    config.pop("study", None)
    path = tmp_path / "slurm.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = workflow_workdir(repo, tmp_path)
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)}
    record = "results/pytest-slurm/02_fv/efficientnet_lite0/fourier/_jobs/seed0-b000.json"
    references = "results/pytest-slurm/01_references/efficientnet_lite0/_jobs/b000.json"  # CPU jobs
    command = [sys.executable, "-m", "snakemake", record, references,
               "--profile", str(repo / "workflow" / "profiles" / "slurm"),
               "--configfile", str(path), "--slurm-status-command", "squeue",
               "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5",
               "--set-threads", "generate=1"]  # a 2-core node: srun grants a GPU job one core here
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    run = workdir / "results" / "pytest-slurm"
    assert (run / "02_fv" / "efficientnet_lite0" / "fourier" / "n07920052" / "seed0.png").stat().st_size > 0
    logs = run / "logs"
    assert "partition cpu" in (logs / "index_images.log").read_text()
    assert "partition cpu" in (logs / "select_references" / "efficientnet_lite0" / "b000.log").read_text()
    generation = (logs / "generate" / "efficientnet_lite0" / "fourier" / "seed0-b000.log").read_text()
    assert "partition gpu" in generation and "gpu: " in generation
    assert json.loads((workdir / record).read_text())["outputs"]
