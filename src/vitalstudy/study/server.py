"""``vitalstudy serve``: host a form bundle and collect submissions into SQLite.

Standard library only (``http.server`` + ``sqlite3``), so a study can be run from any machine with
Python: a threading server with a deep listen backlog and a bound on concurrent connections meets
the load a study sees (benchmarks/bench_server.py: 20-50 concurrent clients, p99 well under 50 ms).
Collected data is precious: rows are only ever inserted (never updated or replaced), every insert
is committed with ``synchronous=FULL`` in WAL mode before the browser hears "stored", and a re-sent
submission (same ``submission_id``) is acknowledged without being stored twice. Only the
participant-facing files of the bundle are served (never ``private/``, the codebook or the script),
only as regular files inside the bundle (no symlinks, nothing resolving outside it). Every request,
however malformed, gets a response (4xx for the client's mistakes) and exactly one log line, never
a traceback; submissions must be JSON (Content-Type) from the study's own origin.
"""

from __future__ import annotations

import csv
import hmac
import io
import ipaddress
import json
import os
import re
import socket
import sqlite3
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from vitalstudy.errors import VitalStudyError
from vitalstudy.study.assignment import Assigner, hold_seconds, study_key
from vitalstudy.study.forms_html import completion_page, message_page
from vitalstudy.study.safetext import CSV_LINE_END, csv_cell, normalise_participant_id
from vitalstudy.study.submission import PARTICIPANT, InvalidSubmission, validate

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
  submission_id TEXT PRIMARY KEY, participant_id TEXT UNIQUE, study_id TEXT,
  manifest_version TEXT, subset TEXT, received_at TEXT, payload TEXT
)"""
PAGE = re.compile(r"/(index\.html|subset-[A-Za-z0-9]+\.html)")
STIMULUS = re.compile(r"/stimuli/s-[0-9a-f]{12}\.png")
CONTENT_LENGTH = re.compile(r"\d{1,12}")
DRAIN_LIMIT = 8 * 1024 * 1024  # read at most this much of an oversized body before answering 413
MAX_CONNECTIONS = 256  # handled at once; more are answered 503 at once rather than queued unboundedly
CONNECTION_DEADLINE = 60.0  # seconds a connection may stay open in all (slow-loris clients are cut)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Conflict(Exception):
    """The submission clashes with a stored one of another participant or submission id."""


class StoreError(Exception):
    """The database could not take the write (disk full, locked too long): nothing was stored."""


@dataclass
class _Pending:
    payload: dict
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str | BaseException = ""


class Store:
    """The submissions table, with group commit: one writer thread takes every submission waiting,
    checks and inserts them in one transaction and commits it (one fsync, synchronous=FULL) before
    any of them is acknowledged. Concurrent clients then share a commit instead of queueing behind
    one fsync each (about 7 ms on this machine's disk: 20 clients queued 140 ms). Reads use their own
    connection, so they see committed rows only."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(SCHEMA)
        self.reader = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.read_lock = threading.Lock()
        self.pending: list[_Pending] = []
        self.wake = threading.Condition()
        self.closed = False
        self.writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self.writer.start()

    def insert(self, payload: dict) -> str:
        """'stored', or 'duplicate' for a re-sent submission, once committed; Conflict when the
        participant id already has another submission, or the submission id belongs to another
        participant; StoreError when the database failed (nothing of that batch is stored)."""
        item = _Pending(payload)
        with self.wake:
            if self.closed:
                raise StoreError("the store is closed")
            self.pending.append(item)
            self.wake.notify()
        item.done.wait()
        if isinstance(item.outcome, BaseException):
            raise item.outcome
        return item.outcome

    def _write_loop(self) -> None:
        while True:
            with self.wake:
                while not self.pending and not self.closed:
                    self.wake.wait()
                if not self.pending:
                    return
                batch, self.pending = self.pending, []
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                outcomes = [self._insert_one(item.payload) for item in batch]
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                outcomes = [StoreError(f"database error: {exc}")] * len(batch)
            for item, outcome in zip(batch, outcomes):
                item.outcome = outcome
                item.done.set()

    def _insert_one(self, payload: dict) -> str | Conflict:
        earlier = self.conn.execute(
            "SELECT participant_id FROM submissions WHERE submission_id = ?", (payload["submission_id"],)
        ).fetchone()
        if earlier:
            return "duplicate" if earlier[0] == payload["participant_id"] else Conflict(payload["participant_id"])
        received = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            self.conn.execute(
                "INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (payload["submission_id"], payload["participant_id"], payload["study_id"],
                 payload["manifest_version"], payload["subset"], received, json.dumps(payload, sort_keys=True)),
            )
        except sqlite3.IntegrityError:  # this participant id is taken (the statement alone is undone)
            return Conflict(payload["participant_id"])
        return "stored"

    def exists(self, submission_id: str) -> bool:
        with self.read_lock:
            row = self.reader.execute("SELECT 1 FROM submissions WHERE submission_id = ?", (submission_id,))
            return row.fetchone() is not None

    def export(self) -> list[dict]:
        with self.read_lock:
            rows = self.reader.execute("SELECT payload, received_at FROM submissions ORDER BY received_at").fetchall()
        return [{**stored_payload(p), "received_at": r} for p, r in rows]

    def close(self) -> None:
        """Commit what is waiting, then close both connections."""
        with self.wake:
            self.closed = True
            self.wake.notify()
        self.writer.join(timeout=30)
        self.conn.close()
        self.reader.close()


def stored_payload(text) -> dict:
    """A stored row's payload; a row no longer readable as an object (written by hand or an older
    version) is exported as such, for ingestion to quarantine, instead of failing the export."""
    try:
        item = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        item = None
    return item if isinstance(item, dict) else {"unreadable_payload": str(text)[:10_000]}


def export_csv(submissions: list[dict], codebook: list[dict]) -> str:
    """One row per submission, columns as in the codebook (2AFC answers split into their fields);
    every cell through `safetext.csv_cell` (formulas neutralised as ingestion does, text that cannot
    be encoded shown as U+FFFD), so no stored value can break the export."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=CSV_LINE_END)
    writer.writerow([csv_cell(c["column_header"]) for c in codebook])
    for s in submissions:
        answers = s.get("answers") if isinstance(s.get("answers"), dict) else {}
        row = []
        for c in codebook:
            if not c["question_id"]:
                row.append(csv_cell(s.get(c["field"])))
                continue
            value = answers.get(c["question_id"], "")
            row.append(csv_cell(value.get(c["field"], "") if isinstance(value, dict) else value))
        writer.writerow(row)
    return out.getvalue()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog: bursts of connections wait in the kernel, not overflow
    connection_deadline = CONNECTION_DEADLINE

    def __init__(self, address, forms_dir: Path, store: Store, admin_token: str | None,
                 completion_code: str, completion_url: str | None, max_bytes: int, origins: tuple[str, ...] = ()):
        super().__init__(address, Handler)
        self.forms_dir = forms_dir
        self.bundle_root = forms_dir.resolve()
        self.manifest = json.loads((forms_dir / "manifest.json").read_text(encoding="utf-8"))
        with (forms_dir / "codebook.csv").open(newline="", encoding="utf-8") as f:
            self.codebook = list(csv.DictReader(f))
        self.store = store
        self.admin_token = admin_token
        self.completion_code = completion_code
        self.completion_url = completion_url
        self.max_bytes = max_bytes
        self.assigner: Assigner | None = None  # set by make_server when the study has subsets
        self.origins = {o.rstrip("/").lower() for o in origins}
        port = self.server_address[1]
        # Bound to loopback, only loopback names may appear in Host (DNS rebinding); otherwise any.
        self.hosts = ({f"{name}:{port}" for name in LOOPBACK_NAMES} | set(LOOPBACK_NAMES)
                      | {urlsplit(o).netloc for o in self.origins}
                      if is_loopback(self.server_address[0]) else None)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.open_since: dict[socket.socket, float] = {}
        self.open_lock = threading.Lock()
        self.closing = threading.Event()
        threading.Thread(target=self._reap, name="reaper", daemon=True).start()

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            log_line(f"{client_address[0]} - busy: {MAX_CONNECTIONS} connections open, answered 503")
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self.open_lock:
            self.open_since[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request) -> None:
        with self.open_lock:
            if self.open_since.pop(request, None) is not None:
                self.slots.release()

    def _reap(self) -> None:
        """Cut connections open longer than `connection_deadline` (a client trickling bytes would
        otherwise hold a thread for ever, however short the per-read timeout)."""
        while not self.closing.wait(min(1.0, self.connection_deadline / 4)):
            now = time.monotonic()
            with self.open_lock:
                stale = [r for r, since in self.open_since.items() if now - since > self.connection_deadline]
            for request in stale:
                try:
                    request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request, client_address) -> None:
        """One log line instead of socketserver's traceback."""
        exc = sys.exc_info()[1]
        log_line(f"{client_address[0] if client_address else '-'} - connection error: {type(exc).__name__}: "
                 f"{printable_log(str(exc))}")

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()
        self.store.close()
        if self.assigner:
            self.assigner.close()


def printable_log(text: str, limit: int = 200) -> str:
    """Client-controlled text for a log line: ASCII, no control characters, bounded."""
    text = ascii(text[:limit])[1:-1]
    return text + ("..." if len(text) >= limit else "")


def log_line(line: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {line}", flush=True)


class Handler(BaseHTTPRequestHandler):
    server: StudyServer
    timeout = 15  # seconds a client may stall mid-request
    server_version = "vitalstudy"
    sys_version = ""
    default_request_version = "HTTP/1.0"  # so that even a garbled request line gets a status line
    # Errors http.server answers with a 5xx although the client is at fault.
    CLIENT_FAULTS = {501: (405, "method not allowed"), 505: (400, "unsupported HTTP version")}

    def handle_one_request(self):
        """http.server's loop, with one log line and a response for whatever goes wrong."""
        self.command, self.path, self.requestline, self.request_version = "", "", "", "HTTP/1.0"
        self._responded, self._note = False, ""
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, OSError) as exc:
            self.close_connection = True
            self._log(f"connection lost: {type(exc).__name__}")
        except Exception as exc:  # a bug: answer 500 and log it in one line, keep serving
            self.close_connection = True
            self._note = f" internal error: {type(exc).__name__}: {printable_log(str(exc))}"
            if self._responded:
                return self._log(self._note.strip())
            try:
                self._json(500, {"error": "internal error"})
            except OSError:
                pass

    def parse_request(self) -> bool:
        if not self.raw_requestline.strip():
            self.send_error(400, "empty request line")
            return False
        if not super().parse_request():
            if not self._responded:  # e.g. a line of only \x1c-\x1f, which str.split() drops
                self.send_error(400, "bad request line")
            return False
        if len(self.requestline.split()) == 2:  # `GET /` with no version (HTTP/0.9)
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return False
        return True

    def send_error(self, code, message=None, explain=None):
        """http.server's error page; logged once, by log_request, with the message."""
        code, message = self.CLIENT_FAULTS.get(code, (code, message))
        self._note = f" {printable_log(str(message or ''), 100)}"
        self._responded = True  # so that log_error, called first, stays silent
        super().send_error(code, message, explain)

    def send_response(self, code, message=None):
        self._responded = True
        super().send_response(code, message)

    def log_request(self, code="-", size="-"):
        self._log(f"{getattr(code, 'value', code)}{self._note}")

    def log_error(self, format, *args):  # noqa: A002 - signature of the base class
        """Errors are logged with their response by log_request. A client that stalled mid-request
        (http.server only logs that) is answered 408, logged once with it."""
        if self._responded:
            return
        if format.startswith("Request timed out"):
            try:
                return self.send_error(408, "request timed out")
            except OSError:
                pass
        self._log(printable_log(format % args))

    def log_message(self, format, *args):  # noqa: A002
        self._log(printable_log(format % args))

    def _log(self, outcome: str) -> None:
        """One line per request, without the query string (it carries participant ids and the admin
        token) and with client-controlled text escaped."""
        if self.path:
            target = f"{self.command} {printable_log(urlsplit(self.path).path)}"
        else:
            target = printable_log(self.requestline, 80) or "-"
        log_line(f"{self.client_address[0]} {target} {outcome}")

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        # same-origin: the page's own POST carries its Origin (no-referrer would send "Origin: null"),
        # links out (the completion URL) carry no referrer
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _html(self, status: int, title: str, text: str, page: str | None = None) -> None:
        self._send(status, (page or message_page(title, text)).encode(), "text/html; charset=utf-8")

    def _bundle_file(self, path: str) -> bytes | None:
        """A participant-facing file's bytes, or None: only a regular file (not a symlink, nor a hard
        link to something else) whose real path lies in the bundle, opened without following links."""
        file = self.server.forms_dir / path.lstrip("/")
        try:
            if file.resolve().parent != (self.server.bundle_root / path.lstrip("/")).parent:
                return None
            fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                return None
            return fh.read()

    def _host_ok(self) -> bool:
        hosts = self.server.hosts
        return hosts is None or (self.headers.get("Host") or "").lower() in hosts

    def do_GET(self):  # noqa: N802 - http.server naming
        if not self._host_ok():
            return self._html(400, "Bad request", "<p>Unknown Host.</p>")
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = "/index.html" if url.path == "/" else url.path
        if PAGE.fullmatch(path) or STIMULUS.fullmatch(path):
            data = self._bundle_file(path)
            if data is not None:
                kind = "image/png" if path.endswith(".png") else "text/html; charset=utf-8"
                return self._send(200, data, kind, cache=kind == "image/png")
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
        body = export_csv(submissions, self.server.codebook).encode("utf-8", "replace")
        self._send(200, body, "text/csv; charset=utf-8")

    def _post_problem(self) -> tuple[int, str] | None:
        """Why this POST is refused before its body is read: (status, message), or None."""
        if not self._host_ok():
            return 400, "unknown Host"
        origin = self.headers.get("Origin")
        if origin is None and self.headers.get("Referer"):
            parts = urlsplit(self.headers["Referer"])
            origin = f"{parts.scheme}://{parts.netloc}"
        if origin is not None:  # a browser: it must be the study's own page
            own = {f"http://{(self.headers.get('Host') or '').lower()}"} | self.server.origins
            if origin.rstrip("/").lower() not in own:
                return 403, f"cross-origin submission from {printable_log(origin, 100)} refused"
        media, _, params = (self.headers.get("Content-Type") or "").partition(";")
        charset = params.strip().lower().removeprefix("charset=").strip('"') if params.strip() else "utf-8"
        if media.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
            return 415, "Content-Type must be application/json (UTF-8)"
        if self.headers.get("Transfer-Encoding"):
            return 411, "Transfer-Encoding is not supported; send Content-Length"
        if len(self.headers.get_all("Content-Length") or []) != 1 or not CONTENT_LENGTH.fullmatch(
                self.headers["Content-Length"].strip()):
            return 411, "one numeric Content-Length required"
        return None

    def _assignment(self, path: str, length: int) -> None:
        """POST /api/assign {participant_id}: the participant's subset (the server decides, stably);
        POST /api/decline {participant_id}: forget the assignment of someone who declined consent."""
        if not self.server.assigner:
            return self._json(404, {"error": "this study has no subsets"})
        if length > 4096:
            self.close_connection = True
            self.rfile.read(min(length, DRAIN_LIMIT))
            return self._json(413, {"error": "payload larger than 4096 bytes"})
        try:
            pid = json.loads(self.rfile.read(length).decode("utf-8")).get("participant_id")
        except (ValueError, AttributeError, RecursionError):
            return self._json(400, {"error": "expected a JSON object {participant_id}"})
        if not isinstance(pid, str) or not PARTICIPANT.fullmatch(normalise_participant_id(pid)):
            return self._json(400, {"error": "participant_id: expected 1-128 letters, digits or _.@+-"})
        if path == "/api/decline":
            self.server.assigner.release(pid)
            return self._json(200, {"status": "forgotten"})
        subset = self.server.assigner.assign(pid)
        self._json(200, {"subset": subset, "page": f"subset-{subset}.html"})

    def do_POST(self):  # noqa: N802 - http.server naming
        path = urlsplit(self.path).path
        if path not in ("/api/submit", "/api/assign", "/api/decline"):
            return self._json(404, {"error": "not found"})
        problem = self._post_problem()
        if problem:
            self.close_connection = True
            return self._json(problem[0], {"error": problem[1]})
        length = int(self.headers["Content-Length"].strip())
        if path != "/api/submit":
            return self._assignment(path, length)
        if length > self.server.max_bytes:
            self.close_connection = True
            self.rfile.read(min(length, DRAIN_LIMIT))
            return self._json(413, {"error": f"payload larger than {self.server.max_bytes} bytes"})
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return self._json(400, {"error": "body shorter than Content-Length"})
        try:
            payload = validate(json.loads(body.decode("utf-8")), self.server.manifest)
        except InvalidSubmission as exc:
            return self._json(400, {"error": str(exc)})
        except (ValueError, RecursionError):  # undecodable bytes, bad JSON, absurd nesting
            return self._json(400, {"error": "not valid JSON"})
        assigned = self.server.assigner.assigned(payload["participant_id"]) if self.server.assigner else None
        if assigned not in (None, payload["subset"]):
            return self._json(409, {"error": f"this participant id was assigned part {assigned}, not {payload['subset']}"})
        try:
            outcome = self.server.store.insert(payload)
        except StoreError as exc:
            self._note = f" {exc}"
            return self._json(503, {"error": "the answers could not be stored just now; please try again"})
        except Conflict:
            return self._json(409, {"error": "this participant id has already submitted (or the submission id is taken)"})
        self._note = f" submission {payload['submission_id']} {outcome}"
        self._json(200, {"status": outcome, "submission_id": payload["submission_id"],
                         "completion": f"complete?submission={payload['submission_id']}"})

    def do_HEAD(self):  # noqa: N802
        self._json(405, {"error": "method not allowed"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD


def make_server(forms_dir: Path, db: Path, host: str = "127.0.0.1", port: int = 8000, *,
                admin_token: str | None = None, completion_code: str | None = None,
                completion_url: str | None = None, max_bytes: int = 256 * 1024,
                origins: tuple[str, ...] = ()) -> StudyServer:
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
                         completion_url or completion.get("url"), max_bytes, origins)
    if server.manifest["subsets"]:
        server.assigner = Assigner(db, server.manifest["subsets"], study_key(private), hold_seconds(server.manifest))
    return server
