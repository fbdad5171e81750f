"""One GPU per concurrent job: Snakemake's `gpu` resource mapped to CUDA_VISIBLE_DEVICES.

Snakemake's `--resources gpu=N` bounds how many GPU jobs run at once but does not say which device
a job gets, so every job would use device 0. A job started as `vitalstudy --gpus K <stage> ...`
claims K of the host's devices before torch is imported: each device is a lock file under
`.snakemake/gpu-slots/<host>/` held (flock) for the life of the process, so two jobs never hold the
same device and a killed job frees its device at once. The job then sees only its devices, as
cuda:0.. . `--gpus 0` hides every GPU (a CPU job does not take GPU memory beside a GPU job).

The host's devices: CUDA_VISIBLE_DEVICES when set (SLURM sets it per allocation), else the GPUs
the NVIDIA driver lists, else none (the job runs where its `device` setting says, e.g. on the CPU).
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from pathlib import Path

LOCK_DIR_ENV = "VITALSTUDY_GPU_LOCKS"
_held: list = []  # open lock files of this process (released when it exits)


def host_devices() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    driver = Path("/proc/driver/nvidia/gpus")
    return [str(i) for i in range(len(list(driver.iterdir())))] if driver.is_dir() else []


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(".snakemake") / "gpu-slots" / socket.gethostname())


def claim(count: int, devices: list[str] | None = None, directory: Path | None = None, poll: float = 1.0,
          log=None) -> list[str]:
    """Hold `count` free devices of `devices` (default: the host's) and return their ids; waits while
    all are held by other jobs. Fewer devices than `count` on the host: all of them."""
    devices = host_devices() if devices is None else devices
    directory = directory or lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    count = min(count, len(devices))
    waited = False
    while True:
        got = []
        for device in devices:
            handle = open(directory / f"{device}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            got.append((device, handle))
            if len(got) == count:
                _held.extend(h for _, h in got)
                return [d for d, _ in got]
        for _, handle in got:
            handle.close()
        if not waited and log:
            log(f"gpu: all {len(devices)} devices are held by other jobs; waiting")
        waited = True
        time.sleep(poll)


def assign(count: int, log=None) -> str:
    """Claim `count` devices for this process and expose only them; returns CUDA_VISIBLE_DEVICES."""
    log = log or (lambda message: print(message, file=sys.stderr))
    devices = host_devices()
    if count > 0 and not devices:
        log("gpu: this job declares a GPU but none is visible on this host; it runs on its configured device")
        return os.environ.get("CUDA_VISIBLE_DEVICES", "")
    claimed = claim(count, devices, log=log) if count > 0 else []
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(claimed)
    if count > 0:
        log(f"gpu: {socket.gethostname()} device {','.join(claimed)} (CUDA_VISIBLE_DEVICES) for this job")
    return os.environ["CUDA_VISIBLE_DEVICES"]
