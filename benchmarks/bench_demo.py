"""Run the offline demo end to end under a fresh run name and report wall time and peak memory.

    python benchmarks/bench_demo.py [--cores 2] [--run bench-demo-<time>] [--clean]

The workflow runs as `snakemake --profile workflow/profiles/default --config run=<name>` from the
repository root, so nothing of an earlier run is reused. Peak RSS is the largest resident set of
any process the workflow started (getrusage RUSAGE_CHILDREN counts every reaped descendant).
Targets (issue 8): at most 10 minutes on 2 cores and 4 GB peak RSS; the exit status says whether
both were met.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_SECONDS = 600
LIMIT_RSS_GB = 4.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--run", default=time.strftime("bench-demo-%Y%m%d-%H%M%S"), help="run name (results/<run>)")
    parser.add_argument("--clean", action="store_true", help="delete results/<run> afterwards")
    args = parser.parse_args()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    command = ["snakemake", "--profile", "workflow/profiles/default", "--cores", str(args.cores),
               "--config", f"run={args.run}"]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    code = subprocess.run(command, cwd=REPO, env=env).returncode
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # Linux: kilobytes
    if args.clean:
        shutil.rmtree(REPO / "results" / args.run, ignore_errors=True)
    met = code == 0 and seconds <= LIMIT_SECONDS and peak_gb <= LIMIT_RSS_GB
    print(f"demo workflow ({args.cores} cores, run {args.run}): exit {code}, wall {seconds:.1f} s "
          f"(target <= {LIMIT_SECONDS} s), peak RSS {peak_gb:.2f} GB (target <= {LIMIT_RSS_GB} GB): "
          f"{'targets met' if met else 'TARGETS MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
