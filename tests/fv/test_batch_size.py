"""`generate.batch_size: auto`: the batch size a run uses is decided once, recorded in the run and
reused by its later jobs, so the bytes of a run do not depend on timing noise."""

import itertools
import json
import os
import subprocess
import sys

import pytest
import torch

from vitalstudy.fv.bench import RUN_RECORD, cache_path, record_key, run_batch_size
from vitalstudy.models import get_spec

CPU = torch.device("cpu")
SPEC = get_spec("efficientnet_lite0")


def _noisy_timer():
    """A measurement whose winner changes from call to call, as real timings on a busy machine do."""
    calls = itertools.count()

    def measure_now():
        n = next(calls)
        return [{"batch": b, "image_steps_per_second": 10.0 if b == 2 ** (n % 3) else 1.0} for b in (1, 2, 4)]
    measure_now.calls = calls
    return measure_now


def test_a_run_measures_once_and_its_later_jobs_reuse_the_record(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_CACHE", str(tmp_path / "home"))
    timer = _noisy_timer()
    first = run_batch_size(tmp_path / "run", SPEC, "vital", CPU, "auto", timer, log=lambda *_: None)
    later = [run_batch_size(tmp_path / "run", SPEC, "vital", CPU, "auto", timer, log=lambda *_: None) for _ in range(3)]
    assert later == [first] * 3 and next(timer.calls) == 1  # measured once
    record = json.loads((tmp_path / "run" / RUN_RECORD).read_text())
    entry = record[record_key(SPEC, "vital", CPU)]
    assert entry["batch"] == first and entry["measurements"] and "first vital job of run" in entry["source"]
    # another method is decided by its own measurement, under its own key
    run_batch_size(tmp_path / "run", SPEC, "fourier", CPU, "auto", timer, log=lambda *_: None)
    assert set(json.loads((tmp_path / "run" / RUN_RECORD).read_text())) == {record_key(SPEC, m, CPU) for m in ("vital", "fourier")}


def test_a_fresh_run_takes_the_home_cache_before_timing_again(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_CACHE", str(tmp_path / "home"))
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text(json.dumps({record_key(SPEC, "vital", CPU): {"batch": 4, "source": "vitalstudy bench"}}))
    timer = _noisy_timer()
    assert run_batch_size(tmp_path / "run", SPEC, "vital", CPU, "auto", timer, log=lambda *_: None) == 4
    assert next(timer.calls) == 0
    assert run_batch_size(tmp_path / "run", SPEC, "vital", CPU, 3, timer) == 3  # a configured size wins


def _generate(run, targets, home, method="fourier"):
    config = {"seed": 0, "device": "cpu", "models": {"weights": {}},
              "generate": {"batch_size": "auto", method: {"steps": 4, "lr": 0.05}}}
    args = [sys.executable, "-m", "vitalstudy.cli", "generate", "--stage-config", json.dumps(config), "--run-dir",
            str(run), "--model", "efficientnet_lite0", "--method", method, "--seed", "0", "--targets", *targets,
            "--marker", str(run / f"marker-{targets[0]}.json")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "VITALSTUDY_CACHE": str(home), "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_two_fresh_runs_give_identical_bytes(tmp_path):
    """The demo generation twice, each in a fresh run folder, `batch_size: auto`, one machine."""
    home = tmp_path / "home"
    targets = ["n07920052", "n02123159"]
    first_log = _generate(tmp_path / "a", targets, home)
    assert "measuring with fourier's objective" in first_log
    second_log = _generate(tmp_path / "b", targets, home)
    assert "measuring" not in second_log and "from " + str(home) in second_log
    for target in targets:
        png = f"02_fv/efficientnet_lite0/fourier/{target}/seed0.png"
        assert (tmp_path / "a" / png).read_bytes() == (tmp_path / "b" / png).read_bytes()
    records = [json.loads((tmp_path / r / RUN_RECORD).read_text()) for r in "ab"]
    assert [list(r.values())[0]["batch"] for r in records] == [list(records[0].values())[0]["batch"]] * 2
    # a later job of run a, with the home cache gone, reuses the run's record rather than timing again
    (home / "batch_size.json").unlink()
    later = _generate(tmp_path / "a", ["n03773504"], home)
    assert "measuring" not in later
