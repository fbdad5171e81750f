"""The README's commands as a new user runs them: the venv's bin need not be on PATH (jobs call
the CLI through Snakemake's interpreter), a real run checks every asset before any job starts,
and the report command works without a profile."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from vitalstudy.data.classes import imagenet_classes


def _without_venv_on_path() -> dict:
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)}


def _workdir(repo, tmp_path) -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for item in ("Snakefile", "workflow", "config", "study"):
        (workdir / item).symlink_to(repo / item)
    return workdir


def test_jobs_run_without_the_venv_on_path(repo, tmp_path):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["run"] = "pytest-path"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = _workdir(repo, tmp_path)
    done = subprocess.run([sys.executable, "-m", "snakemake", "results/pytest-path/00_index/images.csv", "--cores", "1",
                           "--configfile", str(path)], cwd=workdir, capture_output=True, text=True,
                          env=_without_venv_on_path(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (workdir / "results/pytest-path/00_index/images.csv").stat().st_size > 0


def test_paper_run_with_a_fake_imagenet_and_no_weights_stops_before_any_job(repo, tmp_path):
    root = tmp_path / "imagenet"
    for wnid in imagenet_classes().ids:
        for split in ("train", "val"):
            (root / split / wnid).mkdir(parents=True)
    workdir = _workdir(repo, tmp_path)
    env = {**_without_venv_on_path(), "IMAGENET_ROOT": str(root), "TORCH_HOME": str(tmp_path / "torch")}
    done = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/default",
                           "--configfile", "config/paper.yaml"], cwd=workdir, capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    for filename in ("resnet50-0676ba61.pth", "densenet121-a639ec97.pth", "convnext_base-6075fbad.pth",
                     "vit_l_16-852ce7e3.pth", "vit_l_32-c7638314.pth"):
        assert str(tmp_path / "torch" / "hub" / "checkpoints" / filename) in out
    assert "preflight: " in out and "ImageNet train/" not in out and "image source" not in out
    assert not (workdir / "results" / "paper").exists()  # no job started


def test_report_command_without_a_profile(repo, tmp_path):
    """`snakemake --report` parses the workflow without --cores (it used to ask for them)."""
    workdir = _workdir(repo, tmp_path)
    done = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", "config/config.yaml", "--report",
                           str(tmp_path / "report.html")], cwd=workdir, capture_output=True, text=True,
                          env=_without_venv_on_path(), timeout=600)
    assert "requires a total number of cores" not in done.stderr, done.stderr[-2000:]
