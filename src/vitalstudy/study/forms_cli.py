"""CLI glue for ``vitalstudy forms`` (stage 4) and ``vitalstudy serve`` (collection server).

Both subcommands share this module: ``run`` dispatches on ``args.command``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    command = parser.prog.split()[-1]
    if command == "forms":
        parser.add_argument("--spec", required=True, type=Path, help="study/<id>/study.yaml (or its directory)")
        parser.add_argument("--run", required=True, type=Path, help="the run directory, results/<run>")
        parser.add_argument("--out", type=Path, help="study output directory (default: <run>/04_study/<study_id>)")
        parser.add_argument("--model-weights", default="{}",
                            help="JSON model name -> local state-dict file (the config's models.weights)")
        parser.add_argument("--models", default=None,
                            help="JSON of the config's models section (declared models, their weight files)")
        return
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


def _forms(args) -> int:
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


def _serve(args) -> int:
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


def run(args) -> int:
    return _forms(args) if args.command == "forms" else _serve(args)
