"""Benchmark: the collection server under load, on loopback (`vitalstudy serve` as a subprocess).

Clients post 1,000 submissions concurrently; a share are re-sent (the same submission id: must be
acknowledged and stored once) and a share reuse another participant's id with a new submission id
(must be refused, 409). With --kills N, a killer SIGKILLs the server N times mid-load and restarts it
on the same port and database; clients retry a submission until it is answered, as the page does.
Clients send back to back (closed loop: the server saturated, latency = clients / throughput), or
with --think-ms pause a random time (exponential, that mean) between submissions, as people do.
Reported: acknowledged submissions lost (acknowledged but not in the database), duplicated (stored
more than once, or a refused one stored), and p50 / p99 latency of answered requests. Run from the
repository root:

    PYTHONPATH=src python benchmarks/bench_server.py [--submissions 1000] [--clients 20] [--kills 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
from bench_ingest import write_study


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`vitalstudy serve` on a fixed loopback port, restartable after a SIGKILL."""

    def __init__(self, forms: Path, db: Path, port: int, log: Path):
        self.args = [sys.executable, "-m", "vitalstudy.cli", "serve", "--forms", str(forms), "--db", str(db),
                     "--port", str(port)]
        self.port, self.log = port, open(log, "ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def payload(manifest: dict, participant: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    answers = {q["question_id"]: f"a {participant} answer" for q in manifest["questions"]}
    return {"format": "vitalstudy.response/1", "submission_id": str(uuid.uuid4()), "study_id": manifest["study_id"],
            "manifest_version": manifest["manifest_version"], "subset": None, "participant_id": participant,
            "started_at": now, "submitted_at": now, "answers": answers}


def post(port: int, body: dict) -> tuple[int, float]:
    """(status, seconds) of one POST; status 0 when the server could not be reached."""
    data = json.dumps(body).encode()
    start = time.perf_counter()
    try:
        conn = HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/submit", data, {"Content-Type": "application/json",
                                                   "Origin": f"http://127.0.0.1:{port}"})
        status = conn.getresponse().status
        conn.close()
    except OSError:
        return 0, time.perf_counter() - start
    return status, time.perf_counter() - start


def run(submissions: int, clients: int, kills: int, resend: float, reuse: float, think_ms: float = 0.0,
        seed: int = 0) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest, _, _ = write_study(root, questions=9)
        manifest["manifest_version"] = json.loads((root / "manifest.json").read_text())["manifest_version"]
        db = root / "db.sqlite"
        server = Server(root, db, free_port(), root / "server.log")
        server.start()
        # the workload: each submission once, some re-sent, some reusing an earlier participant's id
        originals = [payload(manifest, f"p{i:05d}") for i in range(submissions)]
        work = [(b, "new") for b in originals]
        work += [(b, "resend") for b in rng.sample(originals, int(resend * submissions))]
        rng.shuffle(work)
        # reused ids (another case, same person) come last and name participants of the first half,
        # whose own submission was answered long before
        early = [b for b, kind in work[: len(work) // 2] if kind == "new"]
        work += [(payload(manifest, b["participant_id"].upper()), "reuse")
                 for b in rng.sample(early, int(reuse * submissions))]
        acknowledged, refused, latencies, lock = set(), set(), [], threading.Lock()
        down = threading.Event()

        def client(item):
            body, kind = item
            if think_ms:
                time.sleep(random.expovariate(1000 / think_ms))
            while True:
                status, seconds = post(server.port, body)
                if status == 0:  # server down (being restarted): retry, as the page does
                    time.sleep(0.05)
                    continue
                with lock:
                    if not down.is_set():
                        latencies.append(seconds)
                    if status == 200:
                        acknowledged.add(body["submission_id"])
                    elif status == 409:
                        refused.add((kind, body["submission_id"]))
                    else:
                        raise RuntimeError(f"unexpected status {status} for a {kind} submission")
                return

        def killer():
            for _ in range(kills):
                time.sleep(rng.uniform(0.3, 0.8))
                down.set()
                server.kill()
                server.start()
                down.clear()

        start = time.perf_counter()
        thread = threading.Thread(target=killer)
        thread.start()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(client, work))
        thread.join()
        wall = time.perf_counter() - start
        server.kill()
        with sqlite3.connect(db) as conn:
            stored = [r[0] for r in conn.execute("SELECT submission_id FROM submissions")]
            participants = [r[0] for r in conn.execute("SELECT participant_id FROM submissions")]
        reuse_ids = {b["submission_id"] for b, kind in work if kind == "reuse"}
        lat = np.array(latencies) * 1000
        return {
            "submissions": len(work), "clients": clients, "kills": kills, "wall_s": wall,
            "acknowledged": len(acknowledged), "stored": len(stored),
            "lost": len(acknowledged - set(stored)),
            "duplicated": (len(stored) - len(set(stored))) + (len(participants) - len(set(participants)))
                          + len(reuse_ids & set(stored)),
            "reused_refused": sum(kind == "reuse" for kind, _ in refused), "reused": len(reuse_ids),
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(lat.max()), "answered": len(lat),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[20])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--resend", type=float, default=0.1, help="share of submissions re-sent")
    parser.add_argument("--reuse", type=float, default=0.05, help="share re-submitted under a reused participant id")
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause of a client between submissions")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "src"))
    for clients in args.clients:
        r = run(args.submissions, clients, args.kills, args.resend, args.reuse, args.think_ms)
        print(f"{r['submissions']} requests ({args.submissions} submissions, {args.resend:.0%} re-sent, "
              f"{args.reuse:.0%} reused ids), {clients} clients, think {args.think_ms:.0f} ms, {r['kills']} kill -9 "
              f"restarts, {r['wall_s']:.1f} s ({r['submissions'] / r['wall_s']:.0f} requests/s): "
              f"acknowledged {r['acknowledged']}, stored {r['stored']}, lost {r['lost']}, duplicated "
              f"{r['duplicated']}, reused ids refused {r['reused_refused']}/{r['reused']}; latency of "
              f"{r['answered']} answered requests p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
              f"max {r['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
