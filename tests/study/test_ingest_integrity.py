"""Ingestion that cannot crash or half-write: undecodable and hostile text, files that cannot be read,
outputs swapped in atomically, every quarantine row naming file, row and field."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest
from responses_fixtures import build_study, google_rows, good_answers, submission

from vitalstudy.io import StagedOutputs
from vitalstudy.study import ingest as ingest_module
from vitalstudy.study.ingest import ingest

OUTPUTS = ("responses.csv", "quarantine.csv", "exclusions.csv", "validation_report.json", "_provenance/ingest.json")


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    paths = build_study(tmp_path / "forms")
    return paths, json.loads(paths["manifest"].read_text())


def run(study, inputs, out):
    paths, _ = study
    return ingest(inputs, [], paths["manifest"], paths["codebook"], paths["answer_key"], out)


def table(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def export_bytes(manifest, people, extra_header=None, extra_cells=None, encoding="utf-8") -> bytes:
    headers, rows = google_rows(manifest, people)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers + ([extra_header] if extra_header else []))
    for i, row in enumerate(rows):
        writer.writerow(row + ([extra_cells[i]] if extra_cells else []))
    return out.getvalue().encode(encoding, "surrogateescape")


def assert_accounted(report, out: Path):
    rows = report["rows"]
    assert report["balanced"] and rows["read"] == rows["accepted"] + rows["quarantined"] + rows["excluded"]
    quarantine = table(out / "quarantine.csv")
    assert rows["quarantined"] == sum(r["level"] == "row" for r in quarantine)
    for r in quarantine:
        assert r["source_file"] and r["source_row"] != "" and r["field"], r
    return quarantine


def test_column_added_in_cp1252_to_a_utf8_export(study, tmp_path):
    """Excel adds a column in Windows-1252 to a UTF-8 export: the study's answers are kept, the
    foreign column's undecodable cells are quarantined by file, line and field."""
    paths, manifest = study
    people = [("p1", "1", good_answers("1", label="café")), ("p2", "2", good_answers("2"))]
    data = export_bytes(manifest, people, "Kommentar \udc93neu\udc94", ["gr\udce4\udcdfer", "ok"])
    raw = tmp_path / "raw" / "excel.csv"
    raw.parent.mkdir()
    raw.write_bytes(data)
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert report["rows"]["accepted"] == 2
    assert {(r["source_row"], r["level"], r["reason"]) for r in quarantine} == {
        ("2", "answer", "unknown_question"), ("3", "answer", "unknown_question")}
    assert all("\ufffd" in r["field"] for r in quarantine)  # the undecodable header, shown, not crashing
    assert "café" in {r["value"] for r in table(tmp_path / "out" / "responses.csv")}


def test_undecodable_bytes_in_a_study_column_quarantine_that_answer(study, tmp_path):
    paths, manifest = study
    data = export_bytes(manifest, [("p1", "1", good_answers("1", label="café \udcff x"))])  # UTF-8, one bad byte
    raw = tmp_path / "broken.csv"
    raw.write_bytes(data)
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert [(r["source_row"], r["reason"], r["field"].endswith("[free_label.q01@1]")) for r in quarantine] == [
        ("2", "encoding_error", True)]


@pytest.mark.parametrize("bad", ["cup \x00 x", "a\x1b[31mred", "cup \u202etxt", "x\x7f"])
def test_nul_and_control_characters_never_reach_responses(study, tmp_path, bad):
    paths, manifest = study
    raw = tmp_path / "ctrl.csv"
    raw.write_bytes(export_bytes(manifest, [("p1", "1", good_answers("1", label=bad))]))
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert [r["reason"] for r in quarantine] == ["bad_text"]
    assert not any(bad in r["value"] for r in table(tmp_path / "out" / "responses.csv"))
    for name in ("responses.csv", "quarantine.csv"):
        assert "\x00" not in (tmp_path / "out" / name).read_text(encoding="utf-8")


def test_lone_surrogates_in_json_exports_and_the_database(study, tmp_path):
    """The server once stored `"cup \\ud800 x"`; its JSON export and database then crashed ingestion."""
    raw = tmp_path / "raw"
    raw.mkdir()
    text = submission("j1", answers={**good_answers("1"), "free_label.q01@1": "cup \ud800 x"})
    key = submission("j2", answers={**good_answers("1"), "\ud800": 1})
    pid = submission("\udc80x")
    (raw / "export.json").write_text(json.dumps([text, key, pid]))  # \u escapes: valid JSON
    db = sqlite3.connect(raw / "server.sqlite")
    db.execute("CREATE TABLE submissions (submission_id TEXT PRIMARY KEY, participant_id TEXT UNIQUE, study_id TEXT,"
               " manifest_version TEXT, subset TEXT, received_at TEXT, payload TEXT)")
    stored = submission("d1", answers={**good_answers("1"), "free_label.q01@1": "cup \ud800 x"})
    db.execute("INSERT INTO submissions VALUES ('d1', 'd1', 'demo', 'v', '1', '2026-03-01T10:00:00Z', ?)",
               (json.dumps(stored),))
    db.execute("INSERT INTO submissions VALUES ('d2', 'd2', 'demo', 'v', '1', '2026-03-01T10:00:00Z', ?)",
               ("[" * 100_000,))
    db.commit()
    db.close()
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    reasons = {(Path(r["source_file"]).name, r["source_row"], r["reason"]) for r in quarantine}
    assert {("export.json", "1", "bad_text"), ("export.json", "2", "unknown_question"),
            ("export.json", "3", "encoding_error"), ("server.sqlite", "1", "bad_text"),
            ("server.sqlite", "2", "malformed_row")} <= reasons, reasons
    assert report["rows"]["accepted"] == 3  # j1, j2 and d1 keep their other answers


def test_deeply_nested_json_is_a_quarantined_file(study, tmp_path):
    raw = tmp_path / "deep.json"
    raw.write_text("[" * 200_000 + "]" * 200_000)
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert [(r["reason"], r["field"]) for r in quarantine] == [("malformed_row", "(file)")]


def test_a_file_that_cannot_be_read_is_quarantined_and_the_others_ingested(study, tmp_path, monkeypatch):
    paths, manifest = study
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "good.json").write_text(json.dumps(submission("g1")))
    (raw / "locked.csv").write_bytes(export_bytes(manifest, [("p1", "1", good_answers("1"))]))
    (raw / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    os.mkfifo(raw / "pipe.csv")  # reading it would block for ever
    (raw / "binary.csv").write_bytes(bytes(range(256)) * 40)
    real_read = ingest_module.InputFile.read_bytes

    def read_bytes(self):
        if self.path.name == "locked.csv":
            raise PermissionError(13, "Permission denied", str(self.path))
        return real_read(self)

    monkeypatch.setattr(ingest_module.InputFile, "read_bytes", read_bytes)
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    files = {Path(r["source_file"]).name: (r["source_row"], r["reason"], r["field"], r["detail"]) for r in quarantine}
    assert files["locked.csv"][:3] == ("0", "unreadable_file", "(file)") and "Permission denied" in files["locked.csv"][3]
    assert files["dangling.json"][:3] == ("0", "unreadable_file", "(file)")
    assert files["pipe.csv"][:3] == ("0", "unreadable_file", "(file)")
    assert files["binary.csv"][:3] == ("0", "unreadable_file", "(file)")
    assert report["rows"]["accepted"] == 1


def test_every_quarantine_row_names_file_row_and_field(study, tmp_path):
    paths, manifest = study
    raw = tmp_path / "raw"
    raw.mkdir()
    headers, rows = google_rows(manifest, [("p1", "1", good_answers("1")), ("p2", "2", good_answers("2"))])
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerows([headers, rows[0][:3], rows[1] + ["extra"], rows[0]])
    text.write('"unterminated,p9\r\n')
    (raw / "malformed.csv").write_text(text.getvalue())
    (raw / "notes.txt").write_text("x")
    (raw / "format.json").write_text(json.dumps({"format": "x"}))
    (raw / "empty.csv").write_bytes(b"")
    report = run(study, [raw], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert len(quarantine) >= 6


def _snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_a_failed_run_leaves_the_previous_outputs_exactly_as_they_were(study, tmp_path, monkeypatch):
    paths, manifest = study
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.json").write_text(json.dumps(submission("a1")))
    out = tmp_path / "out"
    first = run(study, [raw], out)
    before = _snapshot(out)
    (raw / "b.json").write_text(json.dumps(submission("b1", subset="2", answers=good_answers("2"))))

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ingest_module, "write_json", fail)  # responses.csv etc. already written by now
    with pytest.raises(OSError):
        run(study, [raw], out)
    assert _snapshot(out) == before and not (out / ".staging").exists()
    monkeypatch.undo()
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    second = run(study, [raw], out)
    assert (first["rows"]["accepted"], second["rows"]["accepted"]) == (1, 2)
    report = json.loads((out / "validation_report.json").read_text())
    assert report["rows"]["accepted"] == len({r["participant"] for r in table(out / "responses.csv")}) == 2


def test_staged_outputs_commit_together_and_recover_after_a_kill(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "b.txt").write_text("old b")
    with StagedOutputs(out) as staged:
        staged.path(out / "a.txt").write_text("new a")
        staged.path(out / "b.txt").write_text("new b")
    assert (out / "a.txt").read_text() == "new a" and (out / "b.txt").read_text() == "new b"
    assert not (out / ".staging").exists()
    # killed after the commit, with one file moved: the next run's start finishes the set
    staging = out / ".staging"
    staging.mkdir()
    (staging / "1-b.txt").write_text("newer b")
    (staging / "COMMIT").write_text(json.dumps({"0-a.txt": str(out / "a.txt"), "1-b.txt": str(out / "b.txt")}))
    (out / "a.txt").write_text("newer a")
    StagedOutputs(out).recover()
    assert (out / "a.txt").read_text() == "newer a" and (out / "b.txt").read_text() == "newer b"
    # killed before the commit: the half-written set is discarded, the outputs stay as they were
    staging.mkdir()
    (staging / "0-a.txt").write_text("half")
    StagedOutputs(out).recover()
    assert (out / "a.txt").read_text() == "newer a" and not staging.exists()


def test_raw_files_are_never_modified(study, tmp_path):
    paths, manifest = study
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.json").write_text(json.dumps(submission("a1", answers={**good_answers("1"), "x\ud800": 1})))
    (raw / "b.csv").write_bytes(export_bytes(manifest, [("p1", "1", good_answers("1", label="\x00"))]))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    run(study, [raw], tmp_path / "out")
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()} == before


@pytest.mark.parametrize(("change", "reason", "field"), [
    ({"started_at": "2026-03-01T11:00:00Z"}, "bad_timestamp", "started_at"),  # after submitted_at 10:12
    ({"started_at": "0001-01-01T00:00:00Z"}, "bad_timestamp", "started_at"),
    ({"submitted_at": "0001-01-01T00:00:00"}, "bad_timestamp", "submitted_at"),
])
def test_implausible_timestamps_are_quarantined(tmp_path, monkeypatch, change, reason, field):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    paths = build_study(tmp_path / "forms", window=False)
    (tmp_path / "a.json").write_text(json.dumps(submission("a1", **change)))
    report = ingest([tmp_path / "a.json"], [], paths["manifest"], paths["codebook"], paths["answer_key"],
                    tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert [(r["reason"], r["field"]) for r in quarantine] == [(reason, field)]


@pytest.mark.parametrize(("value", "expected"), [
    ("\u200b", ("answer", "empty_free_text", "free_label.q01@1")),
    ("\u3164\u3164", ("answer", "empty_free_text", "free_label.q01@1")),
    (["espresso"], ("answer", "invalid_type", "free_label.q01@1")),
    ({"a": 1}, ("row", "incomplete", "free_label.q01@1:value")),  # an object is read as fields: none is `value`
])
def test_invisible_or_structured_answers_are_quarantined(study, tmp_path, value, expected):
    (tmp_path / "a.json").write_text(json.dumps(submission("a1", answers={**good_answers("1"),
                                                                          "free_label.q01@1": value})))
    report = run(study, [tmp_path / "a.json"], tmp_path / "out")
    quarantine = assert_accounted(report, tmp_path / "out")
    assert [(r["level"], r["reason"], r["field"]) for r in quarantine] == [expected]
