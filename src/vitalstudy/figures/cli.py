"""`vitalstudy figures KIND`: stage 6, one figure (PNG + PDF) with its table per call.

Every call writes under one prefix: `PREFIX.png`, `PREFIX.pdf`, `PREFIX_stats.csv` (study figures
and t-SNE) or `PREFIX_data.csv` (image grids: which file fills which cell), for the per-question
study figures `PREFIX_questions.{png,pdf}`, and a provenance record `_provenance/<name>.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from vitalstudy.errors import VitalStudyError
from vitalstudy.provenance import Provenance

STUDY_KINDS = ("likert", "similarity", "two-afc", "demographics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stage-config", required=True, help="JSON with the config keys this stage reads: seed, figures")
    common.add_argument("--out", required=True, help="output prefix, e.g. results/<run>/06_figures/<study>/likert_word")
    study = argparse.ArgumentParser(add_help=False, parents=[common])
    study.add_argument("--manifest", required=True, help="04_study/<study>/forms/manifest.json")
    study.add_argument("--answer-key", required=True, help="04_study/<study>/private/answer_key.json")
    study.add_argument("--responses", required=True, help="05_responses/<study>/responses.csv")
    likert = sub.add_parser("likert", parents=[study], help="Likert ratings per method and per question (Fig. 6a/b, 37, 38)")
    likert.add_argument("--section", required=True, help="section id of a likert_word or likert_references section")
    similarity = sub.add_parser("similarity", parents=[study], help="free-label similarity violins (Fig. 6c, 39)")
    similarity.add_argument("--scores", required=True, help="05_responses/<study>/text_similarity.csv")
    sub.add_parser("two-afc", parents=[study], help="2AFC accuracy and confidence per method")
    sub.add_parser("demographics", parents=[study], help="participants' age and gender (Fig. 13)")
    tsne = sub.add_parser("tsne", parents=[common], help="t-SNE of natural images and FVs (Fig. 5)")
    tsne.add_argument("--coordinates", required=True, help="03_metrics/<model>/tsne.csv")
    tsne.add_argument("--model", required=True)
    images = argparse.ArgumentParser(add_help=False, parents=[common])
    images.add_argument("--fv-root", required=True, help="results/<run>/02_fv")
    images.add_argument("--model", required=True)
    images.add_argument("--methods", nargs="+", required=True)
    images.add_argument("--seed", type=int, required=True, help="the FV seed shown")
    grid = sub.add_parser("grid", parents=[images], help="methods x targets grid of FVs (Fig. 3)")
    grid.add_argument("--targets", nargs="+", required=True)
    circuits = sub.add_parser("circuits", parents=[images], help="classes -> most relevant channels -> FVs (Fig. 4)")
    circuits.add_argument("--circuits", nargs="+", required=True, help="01_references/<model>/_circuits/<wnid>.json files")


def _study_figure(args, cfg: dict, prov: Provenance, out: Path) -> list[Path]:
    from vitalstudy.figures import demographics, likert, similarity, stats, studydata, two_afc
    from vitalstudy.figures.style import save, save_table

    study = studydata.StudyFiles(args.manifest, args.answer_key, args.responses)
    for path in (args.manifest, args.answer_key, args.responses):
        prov.add_input(path)
    boot, seed = cfg["figures"]["bootstrap"], cfg["seed"]
    figures: list = []
    if args.kind == "likert":
        frame = study.likert(args.section)
        if frame.empty:
            raise VitalStudyError(f"{args.responses}: no answers in section {args.section!r}")
        scale = study.scale(args.section)
        title = study.section(args.section).get("title") or args.section
        table = stats.figure_statistics(frame, "value", "mean rating", stats.mean, boot, seed, args.section)
        who = study.who(frame["participant"])
        figures = [likert.plot_methods(frame, scale, title, who), likert.plot_questions(frame, scale, title, who)]
    elif args.kind == "similarity":
        prov.add_input(args.scores)
        frame = studydata.text_similarity(args.scores, study)
        if frame.empty:
            raise VitalStudyError(f"{args.scores}: no scored answers")
        encoder = ", ".join(sorted(frame["encoder"].unique()))
        table = stats.figure_statistics(frame, "similarity", "median similarity", stats.median, boot, seed,
                                        "free_label")
        table = table.merge(similarity.quantiles(frame, ["method"]), on="method", how="left").assign(encoder=encoder)
        who = study.who(frame["participant"])
        figures = [similarity.plot_methods(frame, encoder, who), similarity.plot_questions(frame, encoder, who)]
    elif args.kind == "two-afc":
        trials = study.two_afc()
        if trials.empty:
            raise VitalStudyError(f"{args.responses}: no 2AFC answers")
        table = two_afc.statistics(trials, boot, seed, paper=two_afc.paper_comparable(study.models))
        frame = trials
        figures = [two_afc.plot(table, study.who(trials["participant"]))]
    else:
        answers, participants = study.demographics()
        questions = [q for q in study.manifest["questions"] if q["type"] == "demographics"]
        table = demographics.counts(answers, participants,
                                    {q["question_id"]: q["fields"][0]["options"] for q in questions})
        frame = study.responses
        figures = [demographics.plot(table, {q["question_id"]: q["prompt"] for q in questions},
                                     study.who(frame["participant"]))]
    written = [out.with_name(out.name + "_stats.csv")]
    save_table(study.mark_simulated(table, frame["participant"]), written[0])
    for fig, suffix in zip(figures, ("", "_questions")):
        paths = [out.with_name(f"{out.name}{suffix}.{ext}") for ext in ("png", "pdf")]
        save(fig, *paths)
        written += paths
    return written


def _image_figure(args, prov: Provenance, out: Path) -> list[Path]:
    from vitalstudy.figures import grids, tsne
    from vitalstudy.figures.style import save, save_table

    if args.kind == "tsne":
        prov.add_input(args.coordinates)
        frame = tsne.read(args.coordinates)
        fig, data, table = tsne.plot(frame, args.model), tsne.neighbour_agreement(frame), "stats"
    else:
        if args.kind == "grid":
            targets = args.targets
            fig = grids.plot_grid(args.fv_root, args.model, args.methods, targets, args.seed)
        else:
            circuits = [grids.read_circuit(p) for p in args.circuits]
            for path in args.circuits:
                prov.add_input(path)
            targets = [ch["target"] for c in circuits for ch in c["channels"]]
            fig = grids.plot_circuits(args.fv_root, args.model, args.methods, circuits, args.seed)
        cells = [(m, t, grids.fv_path(args.fv_root, args.model, m, t, args.seed)) for t in targets for m in args.methods]
        for *_, path in cells:
            if path.is_file():
                prov.add_input(path)
        data = pd.DataFrame([{"method": m, "target": t, "seed": args.seed, "image": str(p), "present": p.is_file()}
                             for m, t, p in cells])
        table = "data"
    written = [out.with_name(out.name + ".png"), out.with_name(out.name + ".pdf"), out.with_name(f"{out.name}_{table}.csv")]
    save(fig, *written[:2])
    save_table(data, written[2])
    return written


def run(args: argparse.Namespace) -> int:
    from vitalstudy.figures.style import apply_theme

    cfg = json.loads(args.stage_config)
    out = Path(args.out)
    prov = Provenance("figures", {"kind": args.kind, "config": cfg, "out": str(out)}, seed=cfg.get("seed"))
    apply_theme()
    written = (_study_figure(args, cfg, prov, out) if args.kind in STUDY_KINDS else _image_figure(args, prov, out))
    for path in written:
        prov.add_output(path)
    prov.write(out.parent / "_provenance" / f"{out.name}.json")
    print(f"figures {args.kind}: " + ", ".join(str(p) for p in written))
    return 0


COMMANDS = {"figures": (add_arguments, run)}
