"""Property-based fuzzing (hypothesis) of the submission validator, every export reader and the CSV
writers: arbitrary bytes and unicode never raise, counts add up (rows in = accepted + quarantined +
excluded), raw files are never modified. Examples are few and small so the suite stays quick."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses_fixtures import MANIFEST_VERSION, build_study, google_rows, good_answers, submission

from vitalstudy.study.ingest import QUARANTINE_COLUMNS, ingest, write_csv
from vitalstudy.study.safetext import csv_cell, text_problem, unneutralise
from vitalstudy.study.server import export_csv
from vitalstudy.study.submission import InvalidSubmission, validate

# VITALSTUDY_FUZZ_EXAMPLES=2000 for a deeper run than the suite's
FUZZ = settings(max_examples=int(os.environ.get("VITALSTUDY_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# every code point, lone surrogates included: what a JSON \u escape can carry
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12)

STUDY_DIR = Path(tempfile.mkdtemp(prefix="vitalstudy-fuzz-"))
STUDY = build_study(STUDY_DIR / "forms")
MANIFEST = json.loads(STUDY["manifest"].read_text())
FIELDS = ["format", "submission_id", "study_id", "manifest_version", "subset", "participant_id", "prolific",
          "started_at", "submitted_at", "answers", "timings_ms"]


def valid_payload() -> dict:
    return {**submission("p1"), "submission_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}


# --------------------------------------------------------------------------- submission validator

def test_the_fuzzed_payload_is_valid_to_start_with():
    """Guards the field fuzzing below: without a change the payload is accepted."""
    assert validate(valid_payload(), MANIFEST)["participant_id"] == "p1"


@FUZZ
@given(JSON_VALUES)
def test_validator_never_raises_on_arbitrary_json(value):
    try:
        validate(value, MANIFEST)
    except InvalidSubmission:
        pass


@FUZZ
@given(st.sampled_from(FIELDS), JSON_VALUES)
def test_validator_judges_any_value_in_any_field(name, value):
    payload = valid_payload()
    payload[name] = value
    try:
        out = validate(payload, MANIFEST)
    except InvalidSubmission as exc:
        assert str(exc)  # a reason, naming the field
        return
    for text in _strings(out):
        assert text_problem(text) is None  # nothing accepted that the pipeline's text rule refuses


@FUZZ
@given(st.sampled_from(sorted(good_answers("1"))), JSON_VALUES)
def test_validator_judges_any_answer(qid, value):
    payload = valid_payload()
    payload["answers"][qid] = value
    try:
        out = validate(payload, MANIFEST)
    except InvalidSubmission:
        return
    assert all(text_problem(t) is None for t in _strings(out))


@FUZZ
@given(st.binary(max_size=300))
def test_server_body_decoding_never_raises(body):
    try:
        validate(json.loads(body.decode("utf-8")), MANIFEST)
    except (InvalidSubmission, ValueError, RecursionError):  # what the server answers 400 to
        pass


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# --------------------------------------------------------------------------- export readers

def _ingest_files(files: dict[str, bytes]) -> tuple[dict, Path]:
    root = Path(tempfile.mkdtemp(prefix="fuzz-", dir=STUDY_DIR))
    raw = root / "raw"
    raw.mkdir()
    for name, data in files.items():
        (raw / name).write_bytes(data)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    report = ingest([raw], [], STUDY["manifest"], STUDY["codebook"], STUDY["answer_key"], root / "out")
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()} == before
    rows = report["rows"]
    assert report["balanced"] and rows["read"] == rows["accepted"] + rows["quarantined"] + rows["excluded"]
    with open(root / "out" / "quarantine.csv", encoding="utf-8", newline="") as fh:
        quarantine = list(csv.DictReader(fh))
    assert rows["quarantined"] == sum(r["level"] == "row" for r in quarantine)
    assert all(r["source_file"] and r["source_row"] != "" and r["field"] for r in quarantine)
    for name in ("responses.csv", "quarantine.csv", "exclusions.csv"):
        text = (root / "out" / name).read_text(encoding="utf-8")
        assert "\x00" not in text
    return report, root


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(["a.csv", "a.json", "a.sqlite", "a.db", "a.txt"]))
def test_any_bytes_in_any_export_file(data, name):
    _ingest_files({name: data})


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 20), ANY_TEXT), min_size=1, max_size=6),
       st.sampled_from(["utf-8", "utf-16", "cp1252"]))
def test_any_text_in_the_cells_of_a_google_export(edits, encoding):
    headers, rows = google_rows(MANIFEST, [("p1", "1", good_answers("1")), ("p2", "2", good_answers("2"))])
    for column, text in edits:
        rows[column % 2][column % len(headers)] = text
    out = io.StringIO()
    csv.writer(out).writerows([headers, *rows])
    _ingest_files({"export.csv": out.getvalue().encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")})


@FUZZ
@given(st.sampled_from(FIELDS), JSON_VALUES, st.sampled_from(["file", "list", "sqlite"]))
def test_any_value_in_json_exports_and_the_database(name, value, container):
    item = submission("p1")
    item[name] = value
    text = json.dumps(item if container == "file" else [item, submission("p2", subset="2",
                                                                         answers=good_answers("2"))])
    if container != "sqlite":
        _ingest_files({"export.json": text.encode()})
        return
    buffer = Path(tempfile.mkdtemp(dir=STUDY_DIR)) / "db.sqlite"
    db = sqlite3.connect(buffer)
    db.execute("CREATE TABLE submissions (submission_id TEXT PRIMARY KEY, participant_id TEXT UNIQUE, "
               "study_id TEXT, manifest_version TEXT, subset TEXT, received_at TEXT, payload TEXT)")
    db.execute("INSERT INTO submissions VALUES ('a', 'b', 'demo', ?, '1', '2026-03-01T10:00:00Z', ?)",
               (MANIFEST_VERSION, json.dumps(item)))
    db.commit()
    db.close()
    _ingest_files({"server.sqlite": buffer.read_bytes()})


# --------------------------------------------------------------------------- CSV writers

@FUZZ
@given(st.lists(st.lists(JSON_SCALARS, min_size=len(QUARANTINE_COLUMNS), max_size=len(QUARANTINE_COLUMNS)),
                max_size=5))
def test_stage5_csv_writer_round_trips_any_value(rows):
    path = Path(tempfile.mkdtemp(dir=STUDY_DIR)) / "quarantine.csv"
    dicts = [dict(zip(QUARANTINE_COLUMNS, row)) for row in rows]
    write_csv(path, QUARANTINE_COLUMNS, dicts, Counter())
    with open(path, encoding="utf-8", newline="") as fh:
        back = list(csv.DictReader(fh))
    assert len(back) == len(rows)
    for written, row in zip(back, dicts):
        for column in QUARANTINE_COLUMNS:
            value = row[column]
            if not isinstance(value, str):
                continue
            assert written[column] == csv_cell(value) and not harmful(written[column])
            if text_problem(value) is None:
                assert unneutralise(written[column]) == value


def harmful(cell: str) -> bool:
    """A cell a spreadsheet would run as a formula (a plain number such as -5 is not one)."""
    if not cell.startswith(("=", "+", "-", "@", "\t", "\r")):
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False


@FUZZ
@given(st.lists(st.dictionaries(ANY_TEXT | st.sampled_from(FIELDS), JSON_VALUES, max_size=6), max_size=4))
def test_server_csv_export_never_breaks_on_stored_payloads(stored):
    with open(STUDY["codebook"], newline="", encoding="utf-8") as fh:
        codebook = list(csv.DictReader(fh))
    text = export_csv(stored, codebook)
    text.encode("utf-8")  # what the server sends; raises on a lone surrogate
    lines = list(csv.reader(io.StringIO(text)))
    assert len(lines) == 1 + len(stored)
    assert not any(harmful(cell) for line in lines for cell in line)


# --------------------------------------------------------------------------- the HTTP layer

HTTP_REQUESTS = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda method, path, version, headers, body: b"%s %s %s\r\n%s\r\n%s" % (
        method, path, version, b"".join(b"%s: %s\r\n" % kv for kv in headers), body),
        st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"X"]) | st.binary(max_size=8),
        st.sampled_from([b"/", b"/api/submit", b"/stimuli/s-000000000000.png", b"/admin/export.csv"])
        | st.binary(max_size=30),
        st.sampled_from([b"HTTP/1.0", b"HTTP/1.1", b"HTTP/9.9"]) | st.binary(max_size=10),
        st.lists(st.tuples(st.sampled_from([b"Content-Length", b"Content-Type", b"Host", b"Origin",
                                            b"Transfer-Encoding"]) | st.binary(max_size=10),
                           st.binary(max_size=30)), max_size=5),
        st.binary(max_size=100)),
)


@FUZZ
@given(HTTP_REQUESTS)
def test_any_request_bytes_get_a_status_line_and_never_a_5xx(request):
    from test_server import exchange

    reply = exchange(_fuzz_server().server_address[1], request)
    if not request.strip(b"\r\n") and not reply:
        return  # nothing was asked (a bare EOF)
    status = reply.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.0 ") and status[9:10] in (b"2", b"3", b"4"), (request[:80], reply[:120])


_SERVER = []


def _fuzz_server():
    """One loopback server for the HTTP fuzzing, on the fixtures' study (no stimuli needed)."""
    if not _SERVER:
        import threading

        from vitalstudy.study.server import make_server

        forms = STUDY_DIR / "forms"
        srv = make_server(forms, STUDY_DIR / "fuzz.sqlite", port=0, admin_token="t")
        srv.connection_deadline = 5.0
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        _SERVER.append(srv)
    return _SERVER[0]
