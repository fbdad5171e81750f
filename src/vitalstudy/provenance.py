"""Provenance records: what a stage read (with hashes), how it was configured, which code and
packages ran, on which device, for how long. `vitalstudy audit` verifies chains of these."""

from __future__ import annotations

import platform
import subprocess
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from vitalstudy import __version__
from vitalstudy.io import sha256_file, write_json

PACKAGES = ("torch", "torchvision", "zennit", "open_clip_torch", "numpy", "pillow", "pandas",
            "scikit-learn", "scikit-image", "snakemake", "efficientnet-lite-pytorch")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """vitalstudy's version plus the git commit (and whether the tree had changes), when in a checkout."""
    version = {"vitalstudy": __version__}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        version.update(git_commit=commit, git_dirty=str(bool(dirty)).lower())
    except (OSError, subprocess.SubprocessError):
        pass
    return version


class Provenance:
    """Collects a stage's record; `write()` stores it with the wall time since creation."""

    def __init__(self, stage: str, parameters: dict, seed: int | None = None, device: str = "cpu"):
        self._start = time.perf_counter()
        self.record = {"stage": stage, "parameters": parameters, "seed": seed, "device": device,
                       "inputs": {}, "outputs": {}, "code": code_version(), "packages": package_versions()}

    def add_input(self, path: str | Path, sha256: str | None = None) -> str:
        digest = sha256 or sha256_file(path)
        self.record["inputs"][str(path)] = digest
        return digest

    def add_output(self, path: str | Path) -> None:
        self.record["outputs"][str(path)] = sha256_file(path)

    def write(self, path: str | Path) -> None:
        self.record["wall_seconds"] = round(time.perf_counter() - self._start, 3)
        write_json(path, self.record)
