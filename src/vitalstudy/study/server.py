"""``vitalstudy serve``: host a form bundle and collect submissions into SQLite.

Standard library only (``http.server`` + ``sqlite3``), so a study can be run from any machine with
Python. Collected data is precious: rows are only ever inserted (never updated or replaced), every
insert is committed with ``synchronous=FULL`` in WAL mode before the browser hears "stored", and a
re-sent submission (same ``submission_id``) is acknowledged without being stored twice. Only the
participant-facing files of the bundle are served (never ``private/``, the codebook or the script).
"""

from __future__ import annotations

import csv
import hmac
import html
import io
import json
import re
import sqlite3
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from vitalstudy.errors import VitalStudyError
from vitalstudy.study.assignment import Assigner, study_key
from vitalstudy.study.forms_html import completion_page, message_page
from vitalstudy.study.submission import PARTICIPANT, InvalidSubmission, validate

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
  submission_id TEXT PRIMARY KEY, participant_id TEXT UNIQUE, study_id TEXT,
  manifest_version TEXT, subset TEXT, received_at TEXT, payload TEXT
)"""
PAGE = re.compile(r"^/(index\.html|subset-[A-Za-z0-9]+\.html)$")
STIMULUS = re.compile(r"^/stimuli/s-[0-9a-f]{12}\.png$")
DRAIN_LIMIT = 8 * 1024 * 1024  # read at most this much of an oversized body before answering 413


class Conflict(Exception):
    """The submission clashes with a stored one of another participant or submission id."""


class Store:
    """The submissions table; one connection, writes serialised by a lock."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(SCHEMA)
        self.lock = threading.Lock()

    def insert(self, payload: dict) -> str:
        """'stored', or 'duplicate' for a re-sent submission; Conflict when the participant id already
        has another submission, or the submission id belongs to another participant."""
        received = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.lock:
            earlier = self.conn.execute(
                "SELECT participant_id FROM submissions WHERE submission_id = ?", (payload["submission_id"],)
            ).fetchone()
            if earlier:
                if earlier[0] != payload["participant_id"]:
                    raise Conflict(payload["participant_id"])
                return "duplicate"
            try:
                self.conn.execute(
                    "INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (payload["submission_id"], payload["participant_id"], payload["study_id"],
                     payload["manifest_version"], payload["subset"], received,
                     json.dumps(payload, sort_keys=True)),
                )
            except sqlite3.IntegrityError:
                raise Conflict(payload["participant_id"]) from None
        return "stored"

    def exists(self, submission_id: str) -> bool:
        with self.lock:
            row = self.conn.execute("SELECT 1 FROM submissions WHERE submission_id = ?", (submission_id,))
            return row.fetchone() is not None

    def export(self) -> list[dict]:
        with self.lock:
            rows = self.conn.execute("SELECT payload, received_at FROM submissions ORDER BY received_at").fetchall()
        return [{**json.loads(p), "received_at": r} for p, r in rows]


def export_csv(submissions: list[dict], codebook: list[dict]) -> str:
    """One row per submission, columns as in the codebook (2AFC answers split into their fields)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c["column_header"] for c in codebook])
    for s in submissions:
        row = []
        for c in codebook:
            if not c["question_id"]:
                row.append(s.get(c["field"]) or "")
                continue
            value = s["answers"].get(c["question_id"], "")
            row.append(value.get(c["field"], "") if isinstance(value, dict) else value)
        writer.writerow(row)
    return out.getvalue()


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, forms_dir: Path, store: Store, admin_token: str | None,
                 completion_code: str, completion_url: str | None, max_bytes: int):
        super().__init__(address, Handler)
        self.forms_dir = forms_dir
        self.manifest = json.loads((forms_dir / "manifest.json").read_text())
        with (forms_dir / "codebook.csv").open(newline="") as f:
            self.codebook = list(csv.DictReader(f))
        self.store = store
        self.admin_token = admin_token
        self.completion_code = completion_code
        self.completion_url = completion_url
        self.max_bytes = max_bytes
        self.assigner: Assigner | None = None  # set by make_server when the study has subsets

    def server_close(self) -> None:
        super().server_close()
        self.store.conn.close()
        if self.assigner:
            self.assigner.close()


class Handler(BaseHTTPRequestHandler):
    server: StudyServer
    timeout = 15  # seconds a client may stall mid-request
    server_version = "vitalstudy"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        """Log without the query string: it carries participant ids and the admin token."""
        self.server_log(f"{self.command} {urlsplit(self.path).path} {args[1] if len(args) > 1 else ''}")

    def server_log(self, line: str) -> None:
        print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {line}", flush=True)

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _html(self, status: int, title: str, text: str, page: str | None = None) -> None:
        self._send(status, (page or message_page(title, text)).encode(), "text/html; charset=utf-8")

    def do_GET(self):  # noqa: N802 - http.server naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = "/index.html" if url.path == "/" else url.path
        if PAGE.match(path) or STIMULUS.match(path):
            file = self.server.forms_dir / path.lstrip("/")
            if file.is_file():
                kind = "image/png" if path.endswith(".png") else "text/html; charset=utf-8"
                return self._send(200, file.read_bytes(), kind, cache=kind == "image/png")
        if path == "/complete":
            return self._complete(query.get("submission", [""])[0])
        if path in ("/admin/export.json", "/admin/export.csv"):
            return self._export(path, query)
        self._html(404, "Not found", "<p>Not found.</p>")

    def _complete(self, submission_id: str) -> None:
        if not self.server.store.exists(submission_id):
            return self._html(404, "Unknown submission", "<p>No submission with this id was received.</p>")
        url = self.server.completion_url
        url = url.replace("{code}", self.server.completion_code) if url else None
        self._html(200, "Thank you", "", completion_page(self.server.manifest["title"], self.server.completion_code, url))

    def _export(self, path: str, query: dict) -> None:
        expected = self.server.admin_token
        given = query.get("token", [""])[0] or self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not expected:
            return self._json(403, {"error": "admin export is disabled (no admin token configured)"})
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return self._json(403, {"error": "wrong or missing token"})
        submissions = self.server.store.export()
        if path.endswith(".json"):
            return self._json(200, submissions)
        self._send(200, export_csv(submissions, self.server.codebook).encode(), "text/csv; charset=utf-8")

    def _assign(self, path: str) -> None:
        """POST /api/assign {participant_id}: the participant's subset (the server decides, stably);
        POST /api/decline {participant_id}: forget the assignment of someone who declined consent."""
        if not self.server.assigner:
            return self._json(404, {"error": "this study has no subsets"})
        try:
            length = int(self.headers.get("Content-Length", ""))
            if not 0 <= length <= 4096:
                raise ValueError
            pid = json.loads(self.rfile.read(length)).get("participant_id")
        except (ValueError, AttributeError, RecursionError):
            self.close_connection = True
            return self._json(400, {"error": "expected a small JSON object {participant_id}"})
        if not isinstance(pid, str) or not PARTICIPANT.match(pid):
            return self._json(400, {"error": "participant_id: expected 1-128 letters, digits or _.@+-"})
        if path == "/api/decline":
            self.server.assigner.release(pid)
            return self._json(200, {"status": "forgotten"})
        subset = self.server.assigner.assign(pid)
        self._json(200, {"subset": subset, "page": f"subset-{subset}.html"})

    def do_POST(self):  # noqa: N802 - http.server naming
        if urlsplit(self.path).path in ("/api/assign", "/api/decline"):
            return self._assign(urlsplit(self.path).path)
        if urlsplit(self.path).path != "/api/submit":
            return self._json(404, {"error": "not found"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._json(411, {"error": "Content-Length required"})
        if length > self.server.max_bytes or length < 0:
            self.close_connection = True
            self.rfile.read(min(max(length, 0), DRAIN_LIMIT))
            return self._json(413, {"error": f"payload larger than {self.server.max_bytes} bytes"})
        try:
            payload = validate(json.loads(self.rfile.read(length)), self.server.manifest)
        except InvalidSubmission as exc:
            return self._json(400, {"error": str(exc)})
        except (ValueError, RecursionError):  # undecodable bytes, bad JSON, absurd nesting
            return self._json(400, {"error": "not valid JSON"})
        assigned = self.server.assigner.assigned(payload["participant_id"]) if self.server.assigner else None
        if assigned not in (None, payload["subset"]):
            return self._json(409, {"error": f"this participant id was assigned part {assigned}, not {payload['subset']}"})
        try:
            outcome = self.server.store.insert(payload)
        except Conflict:
            return self._json(409, {"error": "this participant id has already submitted (or the submission id is taken)"})
        self.server_log(f"submission {payload['submission_id']} {outcome}")
        self._json(200, {"status": outcome, "submission_id": payload["submission_id"],
                         "completion": f"complete?submission={payload['submission_id']}"})


def make_server(forms_dir: Path, db: Path, host: str = "127.0.0.1", port: int = 8000, *,
                admin_token: str | None = None, completion_code: str | None = None,
                completion_url: str | None = None, max_bytes: int = 256 * 1024) -> StudyServer:
    """A ready server (call ``serve_forever``); fails clearly when the bundle is incomplete.

    The completion code and URL default to the spec's ``completion`` (``private/completion.json``).
    """
    for name in ("manifest.json", "codebook.csv"):
        if not (forms_dir / name).is_file():
            raise VitalStudyError(f"{forms_dir / name}: missing; point --forms at a built forms/ directory")
    private = forms_dir.parent / "private"
    completion = json.loads((private / "completion.json").read_text()) if (private / "completion.json").is_file() else {}
    server = StudyServer((host, port), forms_dir, Store(db), admin_token,
                         completion_code or completion.get("code") or "COMPLETED",
                         completion_url or completion.get("url"), max_bytes)
    if server.manifest["subsets"]:
        server.assigner = Assigner(db, server.manifest["subsets"], study_key(private))
    return server
