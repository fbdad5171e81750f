"""The Snakemake workflow: every shipped config plans (dry run), and a tiny run produces the
stage-1 outputs with their provenance."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import workflow_workdir

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(repo: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    """A Snakemake run; the limit only stops a hung run (the tiny run takes ~3 min on 2 quiet cores,
    over 10 min on a loaded machine)."""
    env = {**os.environ, **(env or {}), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=repo, capture_output=True, text=True, env=env, timeout=1800)


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/demo-full.yaml", "config/sample.yaml",
                                        "config/paper.yaml"])
def test_dry_run_lists_jobs(repo, configfile, imagenet_sample, tmp_path):
    result = _snakemake(repo, "-n", "--forceall", "--configfile", configfile, "--directory", str(repo),
                        env={"VITALSTUDY_SAMPLE_DIR": str(imagenet_sample), "IMAGENET_ROOT": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    assert "select_references" in out and "index_images" in out


def test_bad_config_stops_with_one_line(repo, tmp_path):
    bad = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    bad["models"]["targets"] = ["resnet51"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = _snakemake(repo, "-n", "--configfile", str(path))
    assert result.returncode != 0
    assert "config error: models.targets[0]: unknown model 'resnet51'" in result.stderr


@pytest.mark.slow
def test_tiny_run_writes_references_and_provenance(repo, tmp_path):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config.update(run="pytest-tiny")
    config["targets"] = {"classes": ["n07920052", "n02123159"], "neurons": [{"layer": "blocks.4", "channels": [3]}]}
    config["references"].update(class_count=3, neuron_count=2, neuron_candidates=6, patch={"size": 112, "stride": 112})
    config.pop("study", None)
    for section in config["generate"].values():  # the demo's methods at a few steps: this test is about stages 0-1
        if isinstance(section, dict) and "steps" in section:
            section.update(steps=4, **({"warmup": 1} if "warmup" in section else {}))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = workflow_workdir(repo, tmp_path)
    result = _snakemake(workdir, "--cores", "2", "--configfile", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    ref_dir = workdir / "results" / "pytest-tiny" / "01_references" / "efficientnet_lite0"
    espresso = json.loads((ref_dir / "n07920052.json").read_text())
    assert espresso["target"]["label"] == "espresso" and len(espresso["references"]) == 3
    assert espresso["disjoint_from_metrics"] is False  # one bundled photo per class
    neuron = json.loads((ref_dir / "blocks.4_c3.json").read_text())
    assert len({r["image_id"] for r in neuron["references"]}) == 2
    provenance = json.loads((ref_dir / "_provenance" / "n07920052.json").read_text())
    assert provenance["outputs"][str(Path("results/pytest-tiny/01_references/efficientnet_lite0/n07920052.json"))]
    assert all(len(h) == 64 for h in provenance["inputs"].values())
    assert (ref_dir / "n07920052.png").stat().st_size > 0
