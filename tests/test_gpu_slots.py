"""Per-job GPU assignment without CUDA: concurrent jobs get distinct CUDA_VISIBLE_DEVICES, a
finished or killed job frees its device, `--gpus 0` hides every GPU."""

import os
import subprocess
import sys
import time

from vitalstudy.gpu_slots import claim, host_devices

# A job that reports the devices it was given and then holds them for a while.
JOB = [sys.executable, "-c",
       "import os, sys, time; import vitalstudy.gpu_slots as g; g.assign(int(sys.argv[1]), log=lambda m: None);"
       "print(os.environ['CUDA_VISIBLE_DEVICES'], flush=True); time.sleep(float(sys.argv[2]))"]


def _env(tmp_path, visible="0,1,2"):
    return {**os.environ, "CUDA_VISIBLE_DEVICES": visible, "VITALSTUDY_GPU_LOCKS": str(tmp_path / "locks")}


def test_concurrent_jobs_get_distinct_devices(tmp_path):
    jobs = [subprocess.Popen([*JOB, "1", "3"], env=_env(tmp_path), stdout=subprocess.PIPE, text=True) for _ in range(3)]
    seen = sorted(job.stdout.readline().strip() for job in jobs)
    for job in jobs:
        job.wait(timeout=30)
    assert seen == ["0", "1", "2"]


def test_a_job_waits_for_a_free_device_and_a_finished_job_frees_it(tmp_path):
    env = _env(tmp_path, "5")
    first = subprocess.Popen([*JOB, "1", "3"], env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "5"
    began = time.monotonic()
    second = subprocess.run([*JOB, "1", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert second.stdout.strip() == "5" and time.monotonic() - began > 1.0  # it waited for the first
    first.wait(timeout=30)


def test_a_killed_job_frees_its_device(tmp_path):
    env = _env(tmp_path, "3")
    holder = subprocess.Popen([*JOB, "1", "60"], env=env, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "3"
    holder.kill()
    holder.wait()
    assert subprocess.run([*JOB, "1", "0"], env=env, capture_output=True, text=True, timeout=30).stdout.strip() == "3"


def test_zero_gpus_hides_every_device_and_two_gpus_are_claimed_together(tmp_path):
    assert subprocess.run([*JOB, "0", "0"], env=_env(tmp_path), capture_output=True, text=True).stdout.strip() == ""
    assert subprocess.run([*JOB, "2", "0"], env=_env(tmp_path), capture_output=True, text=True).stdout.strip() == "0,1"


def test_the_cli_option_sets_the_variable_before_the_stage_runs(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("run: x\nseed: 0\nimages: {source: bundled}\nmodels: {targets: [efficientnet_lite0]}\n"
                      "targets: {classes: [n07920052]}\nreferences: {}\n")
    done = subprocess.run([sys.executable, "-m", "vitalstudy.cli", "--gpus", "1", "check-config", str(config)],
                          env=_env(tmp_path, "7"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "device 7 (CUDA_VISIBLE_DEVICES)" in done.stderr


def test_host_devices_and_claim_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 4")
    assert host_devices() == ["2", "4"]
    assert claim(1, directory=tmp_path) == ["2"]
    assert claim(1, directory=tmp_path) == ["4"]  # this process holds 2 already
