"""Shared fixtures. The real 1000-image ImageNet sample is read from VITALSTUDY_SAMPLE_DIR
(default: ../shared/data/imagenet-sample beside the repository); tests that need it skip when it
is absent, except under CI=true, where its absence is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def sample_dir() -> Path:
    return Path(os.environ.get("VITALSTUDY_SAMPLE_DIR", REPO.parent / "shared" / "data" / "imagenet-sample"))


@pytest.fixture(scope="session")
def imagenet_sample() -> Path:
    path = sample_dir()
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the ImageNet sample is missing at {path} (set VITALSTUDY_SAMPLE_DIR)")
        pytest.skip(f"ImageNet sample not found at {path}; set VITALSTUDY_SAMPLE_DIR")
    return path


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def workflow_workdir(repo: Path, tmp_path: Path) -> Path:
    """A scratch working directory that runs the repository's Snakefile and rules (its results stay
    out of the repository)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    for item in ("Snakefile", "workflow"):
        (workdir / item).symlink_to(repo / item)
    return workdir


@pytest.fixture(scope="session", autouse=True)
def _batch_size_cache_of_the_session(tmp_path_factory):
    """Generation's batch-size cache (`generate.batch_size: auto`) in a folder of this test session,
    for the tests and the workflows they start: a test's toy model never lands in the user's
    ~/.cache/vitalstudy, and the user's timings never decide a test's batch size."""
    before = os.environ.get("VITALSTUDY_CACHE")
    os.environ["VITALSTUDY_CACHE"] = str(tmp_path_factory.mktemp("vitalstudy-cache"))
    yield
    if before is None:
        os.environ.pop("VITALSTUDY_CACHE")
    else:
        os.environ["VITALSTUDY_CACHE"] = before


@pytest.fixture(autouse=True)
def _process_state_restored():
    """Per-process state a stage keeps for its own run does not leak from one test into the next:
    models a test declares (models.declare) and assets read but not yet written into a provenance
    record (a later test's record would list another test's labels or weight file)."""
    from vitalstudy import provenance
    from vitalstudy.models import registry

    saved = dict(registry._DECLARED)
    provenance._ASSETS.clear()
    yield
    registry._DECLARED.clear()
    registry._DECLARED.update(saved)
    provenance._ASSETS.clear()
