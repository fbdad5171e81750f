"""Provenance records: what a stage read (with hashes), how it was configured, which code and
packages ran, on which device, for how long. `vitalstudy audit` verifies chains of these.

Files read from outside the run (weight files, label files, checkpoints) are recorded where they
are read (`record_asset`), so no stage can forget one: the next record written in the process lists
them among its inputs with their sha256, and the audit reports a swapped file."""

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
            "scikit-learn", "scikit-image", "snakemake", "efficientnet-lite-pytorch", "timm")


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


_ASSETS: dict[str, str] = {}  # assets read since the last record was written, path -> sha256


def asset_digest(path: str | Path) -> str:
    """sha256 of a file, computed once per (path, size, modification time) in a process."""
    stat = Path(path).stat()
    return _cached_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _cached_digest(path: str, _size: int, _mtime_ns: int) -> str:
    return sha256_file(path)


def record_asset(path: str | Path) -> None:
    """Note that this process read `path` (a weight file, a label list...) for the next record."""
    _ASSETS[str(path)] = asset_digest(path)


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

    def add_output(self, path: str | Path, sha256: str | None = None) -> None:
        self.record["outputs"][str(path)] = sha256 or sha256_file(path)

    def write(self, path: str | Path) -> None:
        """Store the record, with every asset the process read since the last record among its inputs."""
        self.record["inputs"].update(_ASSETS)
        _ASSETS.clear()
        self.record["wall_seconds"] = round(time.perf_counter() - self._start, 3)
        write_json(path, self.record)
