"""`vitalstudy audit results/<run>`: is every file of a run what its stage wrote, from the inputs,
settings and code the run claims, and what would have to be re-run?

Every stage leaves provenance records (vitalstudy.provenance): `00_index/provenance.json`,
`**/_provenance/*.json` and the generation job records `02_fv/<model>/<method>/_jobs/*.json`. The
audit reads them all and reports, one line per problem:
- an input that is missing or changed since the stage read it (the outputs are stale);
- an output that is missing or whose bytes differ from what the stage wrote (tampered);
- a recorded setting that differs from the current config (dotted key, old -> new);
- the outputs Snakemake would (re)make and the rules it would run (`snakemake --summary`);
- with `--rerun STAGE`, a stage re-run on a sample into a temporary folder whose outputs are not
  byte-identical to the recorded ones.
Code versions are notes, not problems: another commit need not change an output, and the re-run
check is how to find out. Exit status 1 when there is any problem.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from vitalstudy.io import read_json, sha256_file
from vitalstudy.provenance import code_version
from vitalstudy.seeding import rng

RECORD_GLOBS = ("00_index/provenance.json", "**/_provenance/*.json", "02_fv/*/*/_jobs/*.json")
RECORD_KEYS = {"stage", "parameters", "inputs", "outputs", "code"}
# Stages whose record `seed` is the config seed (generation records the FV seed instead).
CONFIG_SEED_STAGES = {"index", "references"}
RERUN_STAGES = ("index", "references", "generate")


@dataclass(frozen=True)
class Finding:
    problem: bool
    text: str

    def line(self) -> str:
        return f"{'PROBLEM' if self.problem else 'note'}: {self.text}"


def find_records(run_dir: Path) -> list[Path]:
    return sorted({p for pattern in RECORD_GLOBS for p in run_dir.glob(pattern) if p.is_file()})


def _resolve(root: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else root / path


def check_files(name: str, record: dict, root: Path, digests: dict[Path, str] | None = None) -> list[Finding]:
    """Re-hash every input and output the record lists. `digests` ({resolved path: sha256}) caches
    the hashes across the records of one audit: a file several records list is read once."""
    digests = {} if digests is None else digests
    found = []
    for kind, entries in (("input", record["inputs"]), ("output", record["outputs"])):
        for path, digest in entries.items():
            actual = _resolve(root, path)
            if not actual.is_file():
                found.append(Finding(True, f"{name}: {kind} {path} is missing"))
            elif _digest(actual, digests) != digest:
                what = "changed since the stage read it (its outputs are stale)" if kind == "input" else \
                    "differs from what the stage wrote (modified or tampered)"
                found.append(Finding(True, f"{name}: {kind} {path} {what}"))
    return found


def _digest(path: Path, digests: dict[Path, str]) -> str:
    key = path.resolve()
    if key not in digests:
        digests[key] = sha256_file(path)
    return digests[key]


def diff(old, new, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(set(old) | set(new), key=str)
                for line in diff(old.get(key, "<absent>"), new.get(key, "<absent>"), f"{prefix}{key}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {json.dumps(old)} -> {json.dumps(new)}"]


def config_changes(record: dict, config: dict) -> list[str]:
    """Recorded settings that the current config changes. A record's parameters hold config
    sections by name (`generate`, `references`, ...) or all a stage read under `config`. A section
    may be recorded in part (a generation job records its own method's settings only): the keys
    it holds are what the stage read, so only those are compared."""
    params = record.get("parameters") or {}
    recorded = {k: v for k, v in params.items() if k in config and isinstance(v, dict)}
    recorded.update({k: v for k, v in (params.get("config") or {}).items() if k in config})
    if record.get("stage") in CONFIG_SEED_STAGES and record.get("seed") is not None:
        recorded["seed"] = record["seed"]
    return [line for key in sorted(recorded) for line in diff(recorded[key], _part_read(recorded[key], config[key]), f"{key}.")]


def _part_read(recorded, current):
    if isinstance(recorded, dict) and isinstance(current, dict):
        return {k: current.get(k, "<absent>") for k in recorded}
    return current


def code_notes(records: dict[str, dict]) -> list[Finding]:
    """One note per (stage, code version) that differs from the current checkout."""
    current = code_version()
    groups: dict[tuple, int] = Counter()
    for record in records.values():
        code = record.get("code") or {}
        if code.get("git_commit") != current.get("git_commit") or code.get("git_dirty") == "true":
            groups[(record["stage"], code.get("git_commit", "unknown")[:12], code.get("git_dirty"))] += 1
    here = current.get("git_commit", "unknown")[:12] + (" (uncommitted changes)" if current.get("git_dirty") == "true" else "")
    return [Finding(False, f"stage {stage}: {n} record(s) made by commit {commit}"
                           f"{' with uncommitted changes' if dirty == 'true' else ''}; current checkout {here}")
            for (stage, commit, dirty), n in sorted(groups.items())]


def snakemake_plan(root: Path, run_name: str, configfiles: list[str]) -> list[Finding]:
    """Outputs Snakemake would make or remake for this run, and the rules it would run."""
    command = [sys.executable, "-m", "snakemake", "--summary", "--cores", "1", "--configfile", *configfiles,
               "--config", f"run={run_name}"]  # the Snakemake installed beside this Python, PATH or not
    try:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Finding(True, f"could not ask Snakemake for the plan ({' '.join(command)}): {exc}")]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return [Finding(True, f"Snakemake could not plan the run ({' '.join(command)}): {last}")]
    found, rules = [], Counter()
    for line in done.stdout.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 6 and fields[5] == "update pending":
            path, rule, status = fields[0], fields[2], fields[4]
            rules[rule] += 1
            why = {"missing": "missing output", "ok": "output to remake after its inputs"}.get(status, f"stale output ({status})")
            found.append(Finding(True, f"{why} {path}: rule {rule} would run"))
    if rules:
        found.append(Finding(True, "Snakemake would run: " + ", ".join(f"{r} x{n}" for r, n in sorted(rules.items()))))
    return found


# --------------------------------------------------------------------------- re-running a stage

def _compare(name: str, produced: Path, recorded_path: str, digest: str) -> Finding:
    if not produced.is_file():
        return Finding(True, f"re-run {name}: {recorded_path} was not produced")
    same = sha256_file(produced) == digest
    verdict = "reproduced byte for byte" if same else "DIFFERS from the recorded output"
    return Finding(not same, f"re-run {name}: {recorded_path} {verdict}")


def _run_cli(argv: list[str], name: str) -> Finding | None:
    from vitalstudy.cli import main

    code = main(argv)
    return None if code == 0 else Finding(True, f"re-run {name}: `vitalstudy {argv[0]}` exited with {code}")


def _rerun_index(name, record, tmp, root, config) -> list[Finding]:
    outs = {Path(p).name: (p, d) for p, d in record["outputs"].items()}
    failed = _run_cli(["index", "--images", json.dumps(record["parameters"]["images"]), "--seed", str(record["seed"]),
                       "--out", str(tmp / "images.csv"), "--skipped", str(tmp / "skipped.csv"),
                       "--provenance", str(tmp / "provenance.json")], name)
    return [failed] if failed else [_compare(name, tmp / n, p, d) for n, (p, d) in outs.items()]


def _rerun_references(name, record, tmp, root, config) -> list[Finding]:
    from vitalstudy.data.classes import classes_for
    from vitalstudy.layout import RunLayout
    from vitalstudy.references.targets import parse_target

    params = record["parameters"]
    inputs = [str(_resolve(root, p)) for p in record["inputs"]]
    index = next(p for p in inputs if p.endswith("00_index/images.csv"))
    scores = [p for p in inputs if p.endswith(".npz")]
    stage = {"seed": record["seed"], "device": "cpu", "references": params["references"], "models": config["models"]}
    target = parse_target(params["target"], config["targets"].get("concepts"), classes=classes_for(params["model"]))
    layer_scores = [f"{target.layer}={scores[0]}"] if scores else []
    failed = _run_cli(["references", "select", "--stage-config", json.dumps(stage), "--index", index,
                       "--model", params["model"], "--targets", params["target"], "--patch-scores", *layer_scores,
                       "--run-dir", str(tmp), "--record", str(tmp / "record.json")], name)
    produced = RunLayout(tmp).references.model_dir(params["model"])
    return [failed] if failed else [_compare(name, produced / Path(p).name, p, d) for p, d in record["outputs"].items()]


def _rerun_generate(name, record, tmp, root, config) -> list[Finding]:
    """A whole generation job with its recorded settings, on the recorded device. The whole job,
    because targets optimised in one batch share the batched arithmetic: a target re-run alone is
    the same optimisation but not the same bytes. The files the job read inside the run (the
    references, a method's assets) are copied to the same places in a temporary run. The PNGs must
    match byte for byte; the sidecars (which hold timings and dates) must carry the same fingerprint."""
    params, work = record["parameters"], tmp / "run"
    run_dir = Path(name).parents[4]  # <run>/02_fv/<model>/<method>/_jobs/<record>
    for path in record["inputs"]:
        if Path(path).is_relative_to(run_dir):
            copy = work / Path(path).relative_to(run_dir)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_resolve(root, path), copy)
    stage = {"seed": config["seed"], "device": record.get("device", "cpu"), "models": config["models"],
             "concepts": config["targets"].get("concepts", []),
             "generate": {**params["generate"], "batch_size": record.get("batch_size", 1)}}
    failed = _run_cli(["generate", "--stage-config", json.dumps(stage), "--run-dir", str(work), "--model",
                       params["model"], "--method", params["method"], "--seed", str(record["seed"]),
                       "--targets", *params["targets"], "--marker", str(tmp / "marker.json")], name)
    if failed:
        return [failed]
    found = []
    for path, digest in record["outputs"].items():
        produced = work / Path(path).relative_to(run_dir)
        if path.endswith(".png"):
            found.append(_compare(name, produced, path, digest))
        else:
            same = produced.is_file() and \
                read_json(produced).get("fingerprint") == read_json(_resolve(root, path)).get("fingerprint")
            found.append(Finding(not same, f"re-run {name}: sidecar {path} fingerprint {'matches' if same else 'DIFFERS'}"))
    return found


def rerun(stage: str, sample: int, records: dict[str, dict], root: Path, config: dict, seed: int) -> list[Finding]:
    """Re-run `sample` seeded-random records of a stage (a target's references, a generation job)
    in a temporary folder and compare their outputs with the recorded ones."""
    mine = sorted(n for n, r in records.items() if r.get("stage") == stage)
    if not mine:
        return [Finding(True, f"re-run {stage}: the run has no records of this stage")]
    chosen = sorted(rng(seed, "audit", stage).choice(len(mine), size=min(sample, len(mine)), replace=False))
    rerun_one = {"index": _rerun_index, "references": _rerun_references, "generate": _rerun_generate}[stage]
    found = []
    for i in chosen:
        with tempfile.TemporaryDirectory(prefix="vitalstudy-audit-") as tmp:
            found += rerun_one(mine[i], records[mine[i]], Path(tmp), root, config)
    return found


# --------------------------------------------------------------------------- the whole audit

def audit(run_dir: Path, config: dict, root: Path, configfiles: list[str], plan: bool = True,
          rerun_stage: str | None = None, sample: int = 1) -> list[Finding]:
    if not run_dir.is_dir():
        return [Finding(True, f"{run_dir} is not a folder")]
    found: list[Finding] = []
    records: dict[str, dict] = {}
    digests: dict[Path, str] = {}  # file hashes shared by the records' checks
    for path in find_records(run_dir):
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        try:
            record = read_json(path)
        except (OSError, ValueError) as exc:
            found.append(Finding(True, f"{name}: unreadable provenance record ({exc})"))
            continue
        if not isinstance(record, dict) or not RECORD_KEYS <= set(record):
            found.append(Finding(True, f"{name}: not a provenance record (keys {', '.join(sorted(RECORD_KEYS))} expected)"))
            continue
        records[name] = record
        found += check_files(name, record, root, digests)
        found += [Finding(True, f"{name}: setting changed since the stage ran: {c}") for c in config_changes(record, config)]
    if not records:
        found.append(Finding(True, f"{run_dir}: no provenance records found"))
    found += code_notes(records)
    if plan:
        found += snakemake_plan(root, run_dir.name, configfiles)
    if rerun_stage:
        found += rerun(rerun_stage, sample, records, root, config, config["seed"])
    by_stage = defaultdict(int)
    for record in records.values():
        by_stage[record["stage"]] += 1
    found.append(Finding(False, f"{len(records)} provenance records checked ("
                                + ", ".join(f"{s}: {n}" for s, n in sorted(by_stage.items())) + ")"))
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="the run's folder, results/<run>")
    parser.add_argument("--configfile", nargs="+", default=["config/config.yaml"],
                        help="config file(s) to compare with (later ones override earlier ones)")
    parser.add_argument("--root", type=Path, default=None,
                        help="folder the records' relative paths start from (default: two levels above RUN_DIR)")
    parser.add_argument("--no-plan", action="store_true", help="do not ask Snakemake what would re-run")
    parser.add_argument("--rerun", choices=RERUN_STAGES, default=None,
                        help="re-run this stage on a sample into a temporary folder and compare the outputs")
    parser.add_argument("--sample", type=int, default=1,
                        help="--rerun: how many records (a target's references, a generation job)")


def run(args: argparse.Namespace) -> int:
    from vitalstudy.config import load

    run_dir = args.run_dir.resolve()
    root = (args.root or run_dir.parent.parent).resolve()
    config = load([root / f if not Path(f).is_absolute() else f for f in args.configfile], {"run": run_dir.name})
    findings = audit(run_dir, config, root, args.configfile, not args.no_plan, args.rerun, args.sample)
    for finding in findings:
        print(finding.line())
    problems = sum(f.problem for f in findings)
    print(f"audit {args.run_dir}: {problems} problem(s)", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0
