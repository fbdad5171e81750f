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
        return
    parser.add_argument("--forms", required=True, type=Path, help="a built forms/ directory")
    parser.add_argument("--db", required=True, type=Path, help="SQLite database (created when absent)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--admin-token-env", default="VITALSTUDY_ADMIN_TOKEN",
                        help="environment variable holding the admin export token (unset: export disabled)")
    parser.add_argument("--completion-code", help="code shown after submitting (default: the spec's completion.code, else COMPLETED)")
    parser.add_argument("--completion-url", help="where to send participants after submitting; {code} is replaced (default: the spec's completion.url)")
    parser.add_argument("--max-bytes", type=int, default=256 * 1024, help="largest accepted submission")


def _forms(args) -> int:
    from vitalstudy.study.forms import write_forms
    from vitalstudy.study.spec import load_spec

    spec = load_spec(args.spec)
    out = args.out or args.run / "04_study" / spec.study_id
    scorer = None
    if any(s.type == "two_afc" for s in spec.sections):
        from vitalstudy.study.forms_queries import model_scorer

        scorer = model_scorer(spec.model, json.loads(args.model_weights).get(spec.model))
    manifest = write_forms(spec, args.run, out, scorer)
    print(f"{out / 'forms'}: {len(manifest['questions'])} questions, subsets {manifest['subsets'] or 'none'}, "
          f"manifest {manifest['manifest_version']}")
    return 0


def _serve(args) -> int:
    from vitalstudy.study.server import make_server

    server = make_server(
        args.forms, args.db, args.host, args.port,
        admin_token=os.environ.get(args.admin_token_env) or None,
        completion_code=args.completion_code, completion_url=args.completion_url, max_bytes=args.max_bytes,
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
