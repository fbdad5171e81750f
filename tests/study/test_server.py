"""Collection server on loopback: validation, idempotency, concurrency, crash safety, export."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from http.client import HTTPConnection
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from forms_fixtures import answer_all, build

from vitalstudy.study.server import make_server

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    _, study_dir, manifest = build(tmp_path_factory.mktemp("server"))
    return study_dir, manifest


@contextmanager
def running(forms, db, **options):
    """A server on a free loopback port, in a thread: yields (server, base URL)."""
    srv = make_server(forms, db, port=0, **options)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server(bundle, tmp_path):
    study_dir, _ = bundle
    with running(study_dir / "forms", tmp_path / "db.sqlite", admin_token="s3cret", completion_code="CODE42",
                 completion_url="https://example.org/done?cc={code}", max_bytes=64 * 1024) as (srv, base):
        yield srv, base, tmp_path / "db.sqlite"


def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes to a loopback server, close our side, return all it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reply = b""
        try:
            while chunk := conn.recv(65536):
                reply += chunk
        except ConnectionResetError:  # the server answered before reading all of a huge request
            pass
        return reply


def qid(manifest, section, number, subset=None, position=None):
    """The (keyed, opaque) id of the question a participant sees as Q<number> (<position>) of a section."""
    return next(q["question_id"] for q in manifest["questions"] if q["section_id"] == section
                and q["number"] == number and q["subset"] == subset and q["position"] == position)


def payload(manifest, participant="p1", subset="2", **changes):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "format": "vitalstudy.response/1", "submission_id": str(uuid.uuid4()),
        "study_id": manifest["study_id"], "manifest_version": manifest["manifest_version"],
        "subset": subset, "participant_id": participant,
        "prolific": {"PROLIFIC_PID": participant, "STUDY_ID": "st", "SESSION_ID": "se"},
        "started_at": now, "submitted_at": now, "answers": answer_all(manifest, subset),
        "timings_ms": {qid(manifest, "likert_word", 1, position="a"): 1200},
    }
    data.update(changes)
    return data


def post(base, body, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = Request(base + "/api/submit", data=data, headers={"Content-Type": "application/json"})
    try:
        with urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except HTTPError as e:
        return e.code, json.loads(e.read())


def get(url):
    try:
        with urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except HTTPError as e:
        return e.code, e.read()


def count(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]


def test_accepts_stores_and_completes(server, bundle):
    _, base, db = server
    body = payload(bundle[1])
    status, reply = post(base, body)
    assert status == 200 and reply["status"] == "stored"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = conn.execute("SELECT participant_id, subset, payload FROM submissions").fetchone()
    assert row[:2] == ("p1", "2") and json.loads(row[2]) == body
    status, page = get(f"{base}/{reply['completion']}")
    assert status == 200 and b"CODE42" in page and b"https://example.org/done?cc=CODE42" in page
    assert get(f"{base}/complete?submission={uuid.uuid4()}")[0] == 404


def test_resent_submission_stored_once_and_second_entry_refused(server, bundle):
    _, base, db = server
    body = payload(bundle[1])
    assert post(base, body)[1]["status"] == "stored"
    assert post(base, {**body, "timings_ms": {}}) == (200, {  # a re-send differing in content
        "status": "duplicate", "submission_id": body["submission_id"],
        "completion": f"complete?submission={body['submission_id']}"})
    status, reply = post(base, payload(bundle[1]))  # same participant, new submission
    assert status == 409 and "already" in reply["error"]
    status, _ = post(base, payload(bundle[1], "p2", submission_id=body["submission_id"]))  # id of another participant
    assert status == 409
    with sqlite3.connect(db) as conn:
        stored = json.loads(conn.execute("SELECT payload FROM submissions").fetchone()[0])
    assert count(db) == 1 and stored == body, "the first submission is never overwritten"


def ids(manifest):
    return {"word": qid(manifest, "likert_word", 1, position="a"), "free1": qid(manifest, "free_label", 1, "1"),
            "free2": qid(manifest, "free_label", 1, "2"), "afc2": qid(manifest, "two_afc", 1, "2"),
            "refs": qid(manifest, "likert_references", 2, position="c")}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, m: p.update(manifest_version="000000000000"), "manifest_version"),
        (lambda p, m: p.update(subset="9"), "subset"),
        (lambda p, m: p.update(submission_id="not-a-uuid"), "submission_id"),
        (lambda p, m: p.update(participant_id="<script>"), "participant_id"),
        (lambda p, m: p.update(extra=1), "unknown fields"),
        (lambda p, m: p.pop("answers"), "missing fields"),
        (lambda p, m: p["answers"].update({ids(m)["word"]: 6}), "{word}"),
        (lambda p, m: p["answers"].update({ids(m)["word"]: True}), "{word}"),
        (lambda p, m: p["answers"].update({ids(m)["free2"]: "x" * 201}), "{free2}"),
        (lambda p, m: p["answers"].update({ids(m)["free1"]: "other subset"}), "no such question"),
        (lambda p, m: p["answers"].update({ids(m)["afc2"]: {"choice": "C", "confidence": 2}}), "choice"),
        (lambda p, m: p["answers"].update({"demographics.age": "17"}), "demographics.age"),
        (lambda p, m: p["answers"].pop(ids(m)["refs"]), "unanswered"),
        (lambda p, m: p.update(started_at="yesterday"), "started_at"),
        (lambda p, m: p.update(prolific={"PROLIFIC_PID": 5}), "prolific"),
        (lambda p, m: p.update(timings_ms={"nope": 3}), "timings_ms"),
    ],
)
def test_malformed_refused_and_nothing_stored(server, bundle, change, message):
    _, base, db = server
    manifest = bundle[1]
    body = payload(manifest)
    change(body, manifest)
    message = message.format(**ids(manifest))
    status, reply = post(base, body)
    assert status == 400 and message in reply["error"]
    assert count(db) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"\xff\xfe", b"[" * 50000 + b"]" * 50000])
def test_garbage_refused(server, raw):
    _, base, db = server
    status, _ = post(base, raw, raw=True)
    assert status in (400, 413) and count(db) == 0


def test_oversized_and_unsized_refused(server, bundle):
    _, base, db = server
    big = payload(bundle[1], timings_ms={}, answers={**answer_all(bundle[1], "2"), "pad": "x" * 100_000})
    status, reply = post(base, big)
    assert status == 413 and count(db) == 0
    conn = HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=10)
    conn.putrequest("POST", "/api/submit")
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    assert conn.getresponse().status == 411 and count(db) == 0


def test_serves_only_participant_files(server, bundle):
    study_dir, manifest = bundle
    _, base, _ = server
    assert get(base + "/")[0] == 200 and get(base + "/subset-1.html")[0] == 200
    stimulus = manifest["questions"][0]["stimuli"][0]["file"]
    assert get(f"{base}/{stimulus}")[0] == 200
    for path in ("/manifest.json", "/codebook.csv", "/google_form.gs", "/../private/answer_key.json",
                 "/%2e%2e/private/answer_key.json", "/private/answer_key.json", "/stimuli/../manifest.json",
                 "/subset-1.html/../../private/answer_key.json"):
        status, body = get(base + path)
        assert status == 404 and b"correct_choice" not in body, path


def test_admin_export_needs_token(server, bundle):
    _, base, _ = server
    manifest = bundle[1]
    post(base, payload(manifest, "p1", "1"))
    post(base, payload(manifest, "p2", "3"))
    assert get(base + "/admin/export.json")[0] == 403
    assert get(base + "/admin/export.json?token=wrong")[0] == 403
    status, body = get(base + "/admin/export.json?token=s3cret")
    rows = json.loads(body)
    assert status == 200 and [r["participant_id"] for r in rows] == ["p1", "p2"] and all("received_at" in r for r in rows)
    status, body = get(base + "/admin/export.csv?token=s3cret")
    lines = body.decode().splitlines()
    header = lines[0]
    assert status == 200 and header.startswith("participant_id,subset,started_at,submitted_at,") and len(lines) == 3
    assert f"[{qid(manifest, 'two_afc', 1, '3')}:confidence]" in header and lines[2].startswith("p2,3,")


def test_many_concurrent_submissions_none_lost(server, bundle):
    _, base, db = server
    bodies = [payload(bundle[1], f"c{i}", str(i % 3 + 1)) for i in range(60)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda b: post(base, b), bodies + bodies[:20]))  # 20 re-sent concurrently
    assert all(status == 200 for status, _ in results)
    with sqlite3.connect(db) as conn:
        ids = {r[0] for r in conn.execute("SELECT submission_id FROM submissions")}
    assert ids == {b["submission_id"] for b in bodies}


def _start(forms, db):
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitalstudy.cli", "serve", "--forms", str(forms), "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    line = proc.stdout.readline()
    assert "serving" in line, line
    return proc, line.split("http://", 1)[1].split("/", 1)[0]


def test_killed_and_restarted_server_keeps_every_accepted_submission(bundle, tmp_path):
    study_dir, manifest = bundle
    db = tmp_path / "crash.sqlite"
    accepted = []
    for round_ in range(2):
        proc, address = _start(study_dir / "forms", db)
        try:
            bodies = [payload(manifest, f"r{round_}-{i}", "1") for i in range(15)]
            with ThreadPoolExecutor(max_workers=5) as pool:
                results = list(pool.map(lambda b: post(f"http://{address}", b), bodies))  # noqa: B023 (used in this iteration)
            accepted += [b["submission_id"] for b, (status, _) in zip(bodies, results) if status == 200]
        finally:
            proc.send_signal(signal.SIGKILL)  # no clean shutdown
            proc.wait(timeout=10)
            proc.stdout.close()
    assert len(accepted) == 30
    with sqlite3.connect(db) as conn:
        assert {r[0] for r in conn.execute("SELECT submission_id FROM submissions")} == set(accepted)


def test_binds_to_localhost_by_default(bundle, tmp_path):
    srv = make_server(bundle[0] / "forms", tmp_path / "db.sqlite", port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()
